"""The database: SQLAlchemy models (`models`), migrations (`migrations`) and the one class
every other module goes through (`db.Store`)."""

from vidpipe.store.db import Store
from vidpipe.store.models import (
    BatchRecord,
    CallRecord,
    Generation,
    Keyframe,
    PipelineRun,
    Project,
    Scene,
    VideoClip,
    new_id,
    owner_gone,
    runner_id,
    utcnow,
)


def existing(url: str) -> Store | None:
    """The database at `url`, or None when it is a SQLite file not created yet.

    Read-only commands (`plan`, `run --dry-run`, `list`) use this so they never create
    a database as a side effect.
    """
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        from pathlib import Path

        path = Path(url[len(prefix) :].split("?", 1)[0])
        # An empty file holds nothing to read; only `run` initialises it (after asking).
        if not path.is_file() or path.stat().st_size == 0:
            return None
    return Store(url)


__all__ = [
    "BatchRecord",
    "CallRecord",
    "Generation",
    "Keyframe",
    "PipelineRun",
    "Project",
    "Scene",
    "Store",
    "VideoClip",
    "existing",
    "new_id",
    "owner_gone",
    "runner_id",
    "utcnow",
]
