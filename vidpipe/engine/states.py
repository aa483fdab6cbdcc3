"""The states of projects, scenes, clips and keyframes, and the statuses of jobs in a run.

They are ``StrEnum``s, so a state compares equal to its string (what the database, the
manifest and the JSON reports hold) and prints as it.
"""

from __future__ import annotations

from enum import StrEnum


class ProjectState(StrEnum):
    """A project moves pending → storyboarding → keyframing → generating_video → stitching →
    complete, or ends failed (with an error message) or stopped (interrupted or ``--until``)."""

    PENDING = "pending"
    STORYBOARDING = "storyboarding"
    KEYFRAMING = "keyframing"
    GENERATING_VIDEO = "generating_video"
    STITCHING = "stitching"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"


class SceneState(StrEnum):
    PENDING = "pending"
    KEYFRAMES_GENERATING = "keyframes_generating"
    KEYFRAMES_DONE = "keyframes_done"
    VIDEO_GENERATING = "video_generating"
    VIDEO_DONE = "video_done"
    FAILED = "failed"


class ClipState(StrEnum):
    """A clip's operation. ``rai_filtered`` and ``timed_out`` are gaps, not failures: the
    film is stitched from the other clips and the manifest lists them."""

    SUBMITTED = "submitted"
    POLLING = "polling"
    COMPLETE = "complete"
    RAI_FILTERED = "rai_filtered"
    FAILED = "failed"
    TIMED_OUT = "timed_out"

    @property
    def is_gap(self) -> bool:
        return self in (ClipState.RAI_FILTERED, ClipState.TIMED_OUT)


class FrameSource(StrEnum):
    """Where a keyframe (or clip) file came from."""

    GENERATED = "generated"
    CACHED = "cached"
    INHERITED = "inherited"  # scene N+1's start frame is scene N's end frame
    OVERRIDE = "override"  # the job's start_image / end_image
    KEPT = "kept"  # a frame edited by hand and adopted with `vidpipe keep` (an override)


class JobStatus(StrEnum):
    """A job's status in one run (the report's ``status``)."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PLANNED = "planned"
    SKIPPED_BUDGET = "skipped_budget"
    STOPPED = "stopped"
