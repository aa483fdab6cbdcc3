"""A batch in the work queue: `vidpipe submit` compiles and queues it; its report is
assembled from its items' outcomes, wherever each job ran.

Submitting compiles every job exactly as `vidpipe run` does (the same refusals, exit 2,
nothing queued) and records, per job, the job file relative to the project root and the
plan's digest. A worker compiles the job again from its own working copy and refuses to
run it when the digest differs (see :mod:`vidpipe.batch.worker`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.batch.runner import BatchResult, RunOptions, prepare
from vidpipe.engine.runtime import Outcome
from vidpipe.errors import InputError
from vidpipe.plan import Plan
from vidpipe.spec.config import Config

if TYPE_CHECKING:
    from vidpipe.store import BatchItem, BatchRecord


@dataclass
class SubmitOptions:
    """`vidpipe submit` options: what the batch runs (the flags of `run` that choose it)."""

    paths: Sequence[str] = ()
    provider: str | None = None
    select: Sequence[str] = ()
    until: str | None = None


@dataclass
class Submitted:
    """A queued batch: its id and its jobs, in queue order."""

    batch_id: str
    jobs: list[str]
    warnings: list[str]


def source_of(config: Config, plan: Plan) -> str:
    """The job file of `plan` relative to the project root, as every worker finds it."""
    try:
        return plan.job.path.resolve().relative_to(config.root.resolve()).as_posix()
    except ValueError:
        raise InputError(
            f"{plan.job.display} is outside the project folder {config.root}: a worker in "
            "another working copy would not find it; move it under the project (jobs/) "
            "and submit again. Nothing was queued"
        ) from None


def submit_batch(
    config: Config,
    options: SubmitOptions,
    *,
    cwd: Path | None = None,
    on_empty: Callable[[Path], bool] | None = None,
) -> Submitted:
    """`vidpipe submit`: the Python API. Raises InputError for invalid input (nothing queued)."""
    run_options = RunOptions(
        paths=options.paths, provider=options.provider, select=options.select, until=options.until
    )
    prepared = prepare(config, run_options, cwd=cwd)
    if not prepared.plans:
        raise InputError("no job to submit (no job file found); nothing was queued")
    items = [(plan.name, source_of(config, plan), plan.digest) for plan in prepared.plans]
    from vidpipe.store import Store
    from vidpipe.store.queue import WorkQueue

    names = [plan.name for plan in prepared.plans]
    args: dict[str, Any] = {
        "submitted": True,
        "paths": list(options.paths),
        "select": list(options.select),
        "provider": options.provider,
        "until": options.until,
        "jobs": names,
    }
    store = Store(config.database, on_empty=on_empty)
    try:
        batch_id = WorkQueue(store).submit(args, items)
    finally:
        store.close()
    return Submitted(batch_id, names, list(prepared.warnings))


_OUTCOME_FIELDS = {f.name for f in fields(Outcome)}


def outcome_of(entry: dict[str, Any]) -> Outcome:
    """An :class:`Outcome` back from its entry in a report (an item's recorded outcome)."""
    return Outcome(**{k: v for k, v in entry.items() if k in _OUTCOME_FIELDS})


def assemble(batch_id: str | None, items: Sequence[BatchItem]) -> BatchResult:
    """The result of a submitted batch from the outcomes of its finished items.

    Its wall time runs from the first claim to the last finish, whichever workers they
    were: the time the batch took to run, not the time it waited in the queue.
    """
    done = [item for item in items if item.outcome is not None]
    starts = [item.claimed_at for item in done if item.claimed_at is not None]
    ends = [item.finished_at for item in done if item.finished_at is not None]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    return BatchResult(batch_id, [outcome_of(item.outcome or {}) for item in done], wall_s=wall)


def close_batch(batch: BatchRecord, items: list[BatchItem]) -> tuple[str, dict[str, Any]]:
    """How a submitted batch ends once every item is finished: (status, report).

    The same rule and report as `vidpipe run` writes for its batch.
    """
    result = assemble(batch.id, items)
    from vidpipe.store.queue import BatchState

    ok = result.outcomes and result.exit_code == 0
    return (BatchState.COMPLETE if ok else BatchState.FAILED), result.report()
