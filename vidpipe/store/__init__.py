"""The database: SQLAlchemy models (`models`), migrations (`migrations`) and the one class
every other module goes through (`db.Store`); `lite.LiteStore` reads the same tables with
the standard library for the commands that only look.

The names below load on first use (PEP 562): importing `vidpipe.store.lite` must not pull
in SQLAlchemy through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidpipe.store.db import Store
    from vidpipe.store.models import (
        BatchItem,
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


def __getattr__(name: str) -> Any:
    if name == "Store":
        from vidpipe.store.db import Store

        return Store
    if name in ("new_id", "owner_gone", "runner_id", "utcnow"):
        from vidpipe.store import ids

        return getattr(ids, name)
    if name in __all__:
        from vidpipe.store import models

        return getattr(models, name)
    raise AttributeError(f"module 'vidpipe.store' has no attribute {name!r}")


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
    from vidpipe.store.db import Store

    return Store(url)


__all__ = [
    "BatchItem",
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
