"""Results vidpipe may remember between processes, under the user's cache folder.

Only results that are a pure function of their key are kept here (a schema check of some
data, a template check of a job): a missing or unreadable entry only costs the work again.
The folder is `$XDG_CACHE_HOME/vidpipe`, else `~/.cache/vidpipe`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


def entry(kind: str, *parts: str) -> Path:
    """The cache file of a result: `kind` names the folder, `parts` make the key (the
    vidpipe version is always part of it)."""
    from vidpipe import __version__

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256("\0".join((__version__, kind, *parts)).encode("utf-8")).hexdigest()
    return Path(root) / "vidpipe" / kind / key[:2] / key


def remember(path: Path, data: bytes = b"") -> None:
    """Write a cache entry; a cache that cannot be written is no error."""
    from vidpipe.artifacts import write_atomic

    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
