"""Free-disk checks before a batch: warn when space is low, refuse when it cannot fit.

A batch that runs out of disk halfway wastes the money already spent on its clips, so
vidpipe estimates what the batch will write (keyframes, clips, the stitched output) and
compares it with the free space where the artifacts go, before the first call.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidpipe.errors import InputError

if TYPE_CHECKING:
    from vidpipe.spec.jobs import Job

#: Below this much free space a batch starts with a warning.
WARN_BELOW = 2 * 1024**3
#: Generous bitrates (bits per second) of clips and outputs by resolution: Veo's 1080p
#: clips run near 16 Mbit/s; the local animatic at 720p is far smaller.
_BITRATE = {"360p": 2_000_000, "720p": 8_000_000, "1080p": 16_000_000, "4k": 40_000_000}
#: A PNG keyframe, by resolution.
_KEYFRAME = {"360p": 400_000, "720p": 1_600_000, "1080p": 3_500_000, "4k": 14_000_000}


def batch_bytes(jobs: Sequence[Job]) -> int:
    """A generous estimate of the bytes a batch writes."""
    total = 0
    for job in jobs:
        resolution = job.resolution or "720p"
        seconds = sum(job.clip_seconds(i) for i in range(job.scenes))
        # Each clip once, the stitched output once, and the output copy if any.
        copies = 3 if job.output or job.output_url else 2
        total += seconds * _BITRATE[resolution] // 8 * copies
        total += (job.scenes + 1) * _KEYFRAME[resolution]
    return total


def free_bytes(folder: Path) -> int:
    """Free space on the filesystem that holds `folder` (or would, once created)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_disk(folder: Path, jobs: Sequence[Job]) -> str | None:
    """Raise InputError if the batch cannot fit; return a warning if space is low."""
    free = free_bytes(folder)
    needed = batch_bytes(jobs)
    if free < needed:
        raise InputError(
            f"not enough free disk for this batch: it may write {_size(needed)} to {folder}, "
            f"and only {_size(free)} is free; free some space, point artifacts_dir elsewhere, "
            "or run fewer jobs (--select, --shard)"
        )
    if free < WARN_BELOW:
        return f"warning: only {_size(free)} free where artifacts are written ({folder})"
    return None


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover
