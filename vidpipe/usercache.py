"""Results vidpipe may remember between processes, under the user's cache folder.

Only results that are a pure function of their key are kept here (a schema check of some
data, a template check of a job, a parsed YAML text, a compiled batch, a file's sha256 by
its identity): a missing or unreadable entry only costs the work again.
The folder is `$XDG_CACHE_HOME/vidpipe`, else `~/.cache/vidpipe`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from pathlib import Path

#: How long a file must have stood still before its sha256 is remembered by its identity.
SETTLED_S = 2.0


def entry(kind: str, *parts: str) -> Path:
    """The cache file of a result: `kind` names the folder, `parts` make the key (the
    vidpipe version is always part of it)."""
    from vidpipe import __version__

    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256("\0".join((__version__, kind, *parts)).encode("utf-8")).hexdigest()
    return Path(root) / "vidpipe" / kind / key[:2] / key


def remember(path: Path, data: bytes = b"") -> None:
    """Write a cache entry (whole or not at all); a cache that cannot be written is no error."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, remembered by the file's identity: its path, device,
    inode, size and modification and change times (ns), as git's index does.

    Writing a file changes its change time, which no one can set back (`touch` sets the
    modification time only), so a remembered digest is one of the bytes that are there.
    A file changed within the clock's granularity of the moment it was hashed could keep
    its times: a digest is only remembered once the file has stood still for SETTLED_S.
    """
    st = os.stat(path)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    marker = entry("sha256", str(Path(path).absolute()), *map(str, identity))
    with contextlib.suppress(OSError, UnicodeDecodeError):
        known = marker.read_text("ascii")
        if len(known) == 64:
            return known
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > SETTLED_S * 1e9:
        remember(marker, digest.hexdigest().encode("ascii"))
    return digest.hexdigest()
