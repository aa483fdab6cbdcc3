"""A batch whose every job is unchanged and complete, recognised without compiling it.

`vidpipe run` on such a batch does nothing and costs nothing; it should not take longer to
say so than `vidpipe list`. When every input of the batch is as it was at its last compile
(:mod:`vidpipe.memo`), the database is a SQLite file at this vidpipe's schema
version, and each selected job's newest project of its plan digest is complete with its
outputs intact (:func:`vidpipe.plan.up_to_date`, as a full run checks) and no late clip,
the runner answers from here: every job `complete`, the batch recorded like any other,
neither the templates rendered nor SQLAlchemy imported. Anything else (a job to run,
PostgreSQL, another schema version) takes the full path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vidpipe.engine.states import ClipState
from vidpipe.store.ids import runner_id

if TYPE_CHECKING:
    from vidpipe.memo import JobMemo
    from vidpipe.spec.config import Config
    from vidpipe.store.lite import ProjectRow


def complete_projects(config: Config, jobs: Sequence[JobMemo]) -> dict[str, ProjectRow] | None:
    """Each job's complete, intact project of its plan digest; None when one has none."""
    from vidpipe.plan.assess import up_to_date
    from vidpipe.store.lite import LiteStore

    store = LiteStore.open(config.database)
    if store is None:
        return None
    try:
        found = {}
        for job in jobs:
            project = store.newest_project(job.name, job.digest)
            if project is None or not up_to_date(job, project, config):
                return None
            late = any(
                s.clip is not None and s.clip.status == ClipState.TIMED_OUT and s.clip.operation_id
                for s in store.scenes(project.id)
            )
            if late:
                return None  # polled again by the full path: it is billed when it finishes
            found[job.name] = project
        return found
    finally:
        store.close()


def record_batch(
    config: Config, batch_id: str, started: datetime, args: dict[str, Any], report: dict[str, Any]
) -> None:
    """Record the batch (`vidpipe batches`, `vidpipe report`) as a full run would."""
    from vidpipe.store.lite import LiteStore

    store = LiteStore.open(config.database)
    if store is None:  # pragma: no cover - it was open a moment ago
        return
    try:
        store.add_batch(batch_id, runner_id(), args, report, started, "complete")
    finally:
        store.close()
