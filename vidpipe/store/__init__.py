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
    "new_id",
    "owner_gone",
    "runner_id",
    "utcnow",
]
