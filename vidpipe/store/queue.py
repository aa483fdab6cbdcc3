"""The work queue of submitted batches: `vidpipe submit` writes one `batch_items` row per
job, and `vidpipe worker`s on any machine sharing the database claim them.

A claim is a lease, like a project's: the worker renews it with its project leases
(:meth:`vidpipe.store.db.Store.renew`), and a claim whose lease lapsed — its worker was
killed, or lost the database for longer than `lease_seconds` — may be claimed again by
another worker (`attempts` counts the claims). A worker on the same machine need not wait
for the lapse: a claim held by a process that no longer runs is taken at once.

Claims take rows nobody else is taking: on PostgreSQL with ``SELECT … FOR UPDATE SKIP
LOCKED`` (workers claiming together get different rows and none waits for another); on
SQLite the transaction's write lock (``BEGIN IMMEDIATE``) makes a claim atomic across
processes. Finishing an item locks its batch row, so of two workers finishing the last two
items together exactly one sees the batch done and closes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from vidpipe.store.db import Store
from vidpipe.store.models import (
    BatchItem,
    BatchRecord,
    BatchState,
    ItemState,
    new_id,
    owner_gone,
    runner_id,
    utcnow,
)

__all__ = ["MAX_ATTEMPTS", "OPEN", "BatchState", "Claim", "ItemState", "WorkQueue"]


#: Items no worker has finished.
OPEN = (ItemState.QUEUED, ItemState.CLAIMED)

#: Claims of one item after which it is failed rather than run again: a job that kills its
#: worker (memory, say) must not take down every worker of the batch in turn.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """An item a worker claimed, with what its batch was submitted with."""

    id: int
    batch_id: str
    position: int
    job_name: str
    source: str
    plan_digest: str
    attempts: int
    #: The batch's `submit` arguments (paths, select, provider, until).
    args: dict[str, Any]


#: Decides how a batch ends from all its items: (batch status, report).
Closer = Callable[[BatchRecord, list[BatchItem]], tuple[str, dict[str, Any]]]


class WorkQueue:
    """The queries of the work queue, on a :class:`Store`'s connection."""

    def __init__(self, store: Store):
        self.store = store

    def submit(self, args: dict[str, Any], items: Sequence[tuple[str, str, str]]) -> str:
        """Queue a batch of (job name, source, plan digest) items; its id.

        The batch row and its items are written in one transaction: a worker never sees
        half a batch.
        """
        batch_id = new_id()
        with self.store.session() as s:
            s.add(BatchRecord(id=batch_id, args=args, runner=runner_id(), status=BatchState.QUEUED))
            s.flush()
            s.add_all(
                BatchItem(
                    batch_id=batch_id,
                    position=position,
                    job_name=name,
                    source=source,
                    plan_digest=digest,
                    status=ItemState.QUEUED,
                    attempts=0,
                )
                for position, (name, source, digest) in enumerate(items)
            )
        return batch_id

    def claim(
        self, owner: str, count: int, seconds: float, batch_id: str | None = None
    ) -> list[Claim]:
        """Claim up to `count` items (of `batch_id`, else of any batch, oldest first)."""
        if count < 1:
            return []
        now = utcnow()
        with self.store.session() as s:
            claimable = or_(
                BatchItem.status == ItemState.QUEUED,
                and_(
                    BatchItem.status == ItemState.CLAIMED,
                    BatchItem.lease_expires_at < now,
                    BatchItem.worker != owner,
                ),
            )
            rows = list(s.scalars(self._query(claimable, batch_id, count)))
            if len(rows) < count:
                # Live leases of this machine's workers that died: theirs at once.
                host = runner_id().partition(":")[0]
                held_here = and_(
                    BatchItem.status == ItemState.CLAIMED,
                    BatchItem.lease_expires_at >= now,
                    BatchItem.worker.startswith(host + ":"),
                    BatchItem.worker != owner,
                )
                orphans = [
                    r for r in s.scalars(self._query(held_here, batch_id)) if owner_gone(r.worker)
                ]
                rows += orphans[: count - len(rows)]
            for row in rows:
                row.status = ItemState.CLAIMED
                row.worker = owner
                row.lease_expires_at = now + timedelta(seconds=seconds)
                row.attempts = (row.attempts or 0) + 1
                row.claimed_at = now
            batch_ids = sorted({row.batch_id for row in rows})
            if not batch_ids:
                return []
            s.execute(
                update(BatchRecord)
                .where(BatchRecord.id.in_(batch_ids), BatchRecord.status == BatchState.QUEUED)
                .values(status=BatchState.RUNNING)
            )
            args: dict[str, Any] = dict(
                s.execute(
                    select(BatchRecord.id, BatchRecord.args).where(BatchRecord.id.in_(batch_ids))
                ).all()
            )
            return [
                Claim(
                    id=row.id,
                    batch_id=row.batch_id,
                    position=row.position,
                    job_name=row.job_name,
                    source=row.source,
                    plan_digest=row.plan_digest,
                    attempts=row.attempts,
                    args=dict(args.get(row.batch_id) or {}),
                )
                for row in rows
            ]

    def _query(self, condition: Any, batch_id: str | None, limit: int | None = None) -> Any:
        query = select(BatchItem).where(condition)
        if batch_id is not None:
            query = query.where(BatchItem.batch_id == batch_id)
        query = query.order_by(BatchItem.batch_id, BatchItem.position)
        if limit is not None:
            query = query.limit(limit)
        if not self.store.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        return query

    def finish(
        self,
        claim: Claim,
        owner: str,
        state: ItemState,
        outcome: dict[str, Any],
        close: Closer,
    ) -> bool:
        """Record an item's outcome; False if it is no longer `owner`'s (taken over).

        When it was the batch's last open item, the batch is finished in the same
        transaction: `close` turns all its items into the batch's status and report.
        """
        now = utcnow()
        with self.store.session() as s:
            query = select(BatchRecord).where(BatchRecord.id == claim.batch_id)
            if not self.store.is_sqlite:
                query = query.with_for_update()
            batch = s.scalars(query).one()
            item = s.get(BatchItem, claim.id)
            if item is None or item.status != ItemState.CLAIMED or item.worker != owner:
                return False
            item.status = state
            item.outcome = outcome
            item.finished_at = now
            item.lease_expires_at = None
            s.flush()
            left = s.scalar(
                select(func.count())
                .select_from(BatchItem)
                .where(BatchItem.batch_id == claim.batch_id, BatchItem.status.in_(OPEN))
            )
            if not left and batch.finished_at is None:
                items = list(
                    s.scalars(
                        select(BatchItem)
                        .where(BatchItem.batch_id == claim.batch_id)
                        .order_by(BatchItem.position)
                    )
                )
                batch.status, batch.report = close(batch, items)
                batch.finished_at = now
            return True

    def release(self, claim: Claim, owner: str) -> None:
        """Give an unfinished item back to the queue (this worker is stopping).

        The claim does not count as an attempt: nothing went wrong with the job.
        """
        with self.store.session() as s:
            s.execute(
                update(BatchItem)
                .where(
                    BatchItem.id == claim.id,
                    BatchItem.worker == owner,
                    BatchItem.status == ItemState.CLAIMED,
                )
                .values(
                    status=ItemState.QUEUED,
                    worker=None,
                    lease_expires_at=None,
                    attempts=BatchItem.attempts - 1,
                )
            )

    def batch(self, batch_id: str) -> BatchRecord | None:
        """A submitted batch (one with items), or None."""
        with self.store.reading() as s:
            batch = s.get(BatchRecord, batch_id)
            if batch is None:
                return None
            has_items = s.scalar(
                select(func.count()).select_from(BatchItem).where(BatchItem.batch_id == batch_id)
            )
            return batch if has_items else None

    def open_items(self, batch_id: str | None = None) -> dict[str, int]:
        """Items nobody has finished, per batch (of `batch_id` only, if given)."""
        with self.store.reading() as s:
            query = (
                select(BatchItem.batch_id, func.count())
                .where(BatchItem.status.in_(OPEN))
                .group_by(BatchItem.batch_id)
            )
            if batch_id is not None:
                query = query.where(BatchItem.batch_id == batch_id)
            return {str(b): int(n) for b, n in s.execute(query).all()}

    def items(self, batch_ids: Sequence[str]) -> list[BatchItem]:
        """The items of these batches, in batch and queue order."""
        if not batch_ids:
            return []
        with self.store.reading() as s:
            return list(
                s.scalars(
                    select(BatchItem)
                    .where(BatchItem.batch_id.in_(list(batch_ids)))
                    .order_by(BatchItem.batch_id, BatchItem.position)
                )
            )
