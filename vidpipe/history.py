"""What ran and what it cost: `vidpipe batches` and `vidpipe costs`.

Both read what the database recorded — the batches table (each `vidpipe run`, with the
report it ended with) and the call log (one row per generation a project used, made and
paid for, or taken from the cache at no cost) — and return plain data for the CLI to print.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from vidpipe.spec.config import Config
from vidpipe.store import BatchItem, BatchRecord, CallRecord
from vidpipe.store.queue import WorkQueue

#: How `vidpipe costs` can group the call log.
COST_GROUPS = ("day", "job", "model", "batch")


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def selection(args: dict[str, Any]) -> str:
    """The command line's choice of jobs, as the user would type it again."""
    if args.get("resume"):
        return f"resume {args['resume']}"
    parts = ["submit"] if args.get("submitted") else []
    parts += list(args.get("paths") or []) or ["jobs/"]
    parts += [f"--select {pattern}" for pattern in args.get("select") or []]
    if args.get("shard"):
        k, n = args["shard"]
        parts.append(f"--shard {k}/{n}")
    for flag in ("until", "provider"):
        if args.get(flag):
            parts.append(f"--{flag} {args[flag]}")
    if args.get("max_cost") is not None:
        parts.append(f"--max-cost {args['max_cost']:g}")
    if args.get("force"):
        parts.append("--force")
    return " ".join(parts)


def narrowed(args: dict[str, Any]) -> bool:
    """True if the batch ran only part of the project's jobs (`--select`, `--shard`, paths)."""
    return bool(args.get("select") or args.get("shard") or args.get("paths") or args.get("resume"))


def _batch_row(
    batch: BatchRecord, calls: list[CallRecord], items: list[BatchItem] | None = None
) -> dict[str, Any]:
    args = dict(batch.args or {})
    report = batch.report
    if report is None and items:
        # A submitted batch under way: its finished jobs by status, the others by where
        # they are in the queue (queued, or claimed by a worker: running).
        report = {"totals": _queue_totals(items, calls)}
    if report is not None:
        totals = report["totals"]
        by_status = dict(totals.get("by_status") or {})
        new, cached, cost = totals["provider_calls"], totals["cached_calls"], totals["cost_usd"]
        duration = totals.get("duration_s")
        jobs = totals["jobs"]
    else:
        # Still running (or its runner died): what the call log has so far.
        by_status = {"running": len(args.get("jobs") or [])} if args.get("jobs") else {}
        new = sum(1 for c in calls if not c.cached)
        cached = sum(1 for c in calls if c.cached)
        cost = round(sum(c.cost_usd for c in calls), 6)
        duration = None
        jobs = len(args.get("jobs") or [])
    if duration is None and batch.finished_at is not None:
        duration = round((batch.finished_at - batch.started_at).total_seconds(), 3)
    return {
        "batch_id": batch.id,
        "status": batch.status,
        "started_at": _when(batch.started_at),
        "finished_at": _when(batch.finished_at),
        "duration_s": duration,
        "jobs": jobs,
        "by_status": by_status,
        "provider_calls": new,
        "cached_calls": cached,
        "cost_usd": cost,
        "selection": selection(args),
        "args": args,
    }


def _queue_totals(items: list[BatchItem], calls: list[CallRecord]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for item in items:
        status = (item.outcome or {}).get("status") or (
            "running" if item.status == "claimed" else item.status
        )
        by_status[status] = by_status.get(status, 0) + 1
    return {
        "jobs": len(items),
        "by_status": by_status,
        "provider_calls": sum(1 for c in calls if not c.cached),
        "cached_calls": sum(1 for c in calls if c.cached),
        "cost_usd": round(sum(c.cost_usd for c in calls), 6),
        "duration_s": None,
    }


def list_batches(config: Config, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Batches, newest first (`vidpipe batches --json`)."""
    from vidpipe.api import open_store

    store = open_store(config)
    if store is None:
        return []
    try:
        batches = store.batches(limit)
        running = [b.id for b in batches if b.report is None]
        log = store.calls(batch_ids=running) if running else []
        queued = [b.id for b in batches if b.report is None and (b.args or {}).get("submitted")]
        items = WorkQueue(store).items(queued) if queued else []
    finally:
        store.close()
    return [
        _batch_row(
            b,
            [c for c in log if c.batch_id == b.id],
            [i for i in items if i.batch_id == b.id],
        )
        for b in batches
    ]


def _group_key(call: CallRecord, by: str) -> str:
    if by == "day":
        return call.at.date().isoformat()
    if by == "job":
        return call.job_name
    if by == "model":
        return f"{call.provider}/{call.model}"
    return call.batch_id or "(no batch)"


def add_up(calls: Iterable[CallRecord], by: str) -> dict[str, Any]:
    """Spend grouped by day, job, model or batch: calls made (and their cost) and, beside
    them, the calls answered from the cache, which cost nothing."""
    if by not in COST_GROUPS:
        raise ValueError(f"cannot group costs by {by!r}")
    groups: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, datetime] = {}
    for call in calls:
        key = _group_key(call, by)
        group = groups.setdefault(key, {by: key, "calls": 0, "cached_calls": 0, "cost_usd": 0.0})
        first_seen.setdefault(key, call.at)
        if call.cached:
            group["cached_calls"] += 1
        else:
            group["calls"] += 1
            group["cost_usd"] += call.cost_usd
    rows = list(groups.values())
    if by in ("day", "batch"):
        rows.sort(key=lambda r: first_seen[r[by]])  # a ledger: oldest first, total last
    else:
        rows.sort(key=lambda r: (-r["cost_usd"], r[by]))
    for row in rows:
        row["cost_usd"] = round(row["cost_usd"], 6)
    return {
        "by": by,
        "rows": rows,
        "total": {
            "calls": sum(r["calls"] for r in rows),
            "cached_calls": sum(r["cached_calls"] for r in rows),
            "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
        },
    }


def costs(config: Config, *, by: str = "day", since: date | None = None) -> dict[str, Any]:
    """Actual spend from the call log (`vidpipe costs --json`); `since` is a UTC day."""
    from vidpipe.api import open_store

    store = open_store(config)
    if store is None:
        calls: list[CallRecord] = []
    else:
        try:
            start = datetime(since.year, since.month, since.day) if since else None
            calls = store.calls(since=start)
        finally:
            store.close()
    out = add_up(calls, by)
    out["since"] = since.isoformat() if since else None
    return out
