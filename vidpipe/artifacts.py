"""Where artifacts live, and writing them so a crash never leaves a truncated file that counts.

Layout (SPEC §5)::

    <artifacts_dir>/<job>/<project-id>/keyframes/scene_00_start.png
                                      /clips/scene_00.mp4
                                      /output/final.mp4, manifest.json, storyboard.png

Generation results (keyframes and clips a provider made) also live once each in a
content-addressed store, ``<artifacts_dir>/objects/<sha256[:2]>/<sha256>``; the cache
points there and projects hold hard links (or copies), so deleting a project folder never
loses a cached generation. `vidpipe gc` frees objects nothing refers to.

Every file is written to a hidden temporary name in the same folder, flushed to disk and
renamed over the final name (atomic on POSIX). A file is only trusted when its sha256
matches the database record.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TMP_MARK = ".part-"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temp_name(path: Path) -> Path:
    """A hidden temporary sibling of `path`; same suffix so muxers pick the right format."""
    return path.with_name(f".{path.stem}{TMP_MARK}{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, else it is removed.

    `durable=False` skips flushing it to disk first: for scratch files nothing records
    (a preview), where waiting for the disk costs more than losing one to a power cut.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        if durable:
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: Path, data: bytes) -> str:
    """Write `data` to `path` atomically; return its sha256."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return sha256_bytes(data)


def copy_atomic(src: Path, dst: Path, *, link: bool = True) -> str:
    """Copy `src` to `dst` atomically; return the sha256.

    With `link` the temporary is a hard link when possible (artifacts inside the artifacts
    folder share their bytes). Without it the bytes are copied: a file handed to the user
    (`output:`) must not share an inode with an artifact, or editing one edits the other.
    """
    if src.resolve() == dst.resolve():
        return sha256_file(dst)
    with atomic_path(dst) as tmp:
        try:
            if not link:
                raise OSError("copy requested")
            tmp.unlink(missing_ok=True)
            os.link(src, tmp)
        except OSError:
            import shutil  # here: most commands never copy, and shutil imports bz2 and lzma

            shutil.copyfile(src, tmp)
    return sha256_file(dst)


OBJECTS = "objects"


def object_path(artifacts_dir: Path, sha256: str) -> Path:
    """Where the object with this content lives (two hex digits of fan-out per folder)."""
    return artifacts_dir / OBJECTS / sha256[:2] / sha256


def put_object(artifacts_dir: Path, src: Path, sha256: str) -> Path:
    """Keep `src` (whose content has `sha256`) in the object store; return the object's path.

    A hard link when the file system allows it (no second copy on disk), else a copy.
    An object already there and intact is kept as it is.
    """
    target = object_path(artifacts_dir, sha256)
    if verified(target, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # A hard link at the final name is atomic by itself: the object appears whole or
        # not at all, and a killed run leaves no temporary behind.
        os.link(src, target)
    except FileExistsError:
        copy_atomic(src, target)  # a damaged object: replace it
    except OSError:
        copy_atomic(src, target)  # no hard links here (another file system): a copy
    return target


def verified(path: Path, sha256: str | None) -> bool:
    """True if `path` exists and its content matches `sha256` (a digest remembered by the
    file's identity counts: see :func:`vidpipe.usercache.file_sha256`)."""
    from vidpipe.usercache import file_sha256

    return bool(sha256) and path.is_file() and file_sha256(path) == sha256


def sweep_temporaries(folder: Path) -> int:
    """Remove temporary files a crashed writer left behind; return how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(f".*{TMP_MARK}*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


@dataclass(frozen=True)
class Layout:
    """The artifact paths of one project."""

    artifacts_dir: Path
    job: str
    project_id: str

    @property
    def folder(self) -> Path:
        return self.artifacts_dir / self.job / self.project_id

    def keyframe(self, index: int, kind: str) -> Path:
        return self.folder / "keyframes" / f"scene_{index:02d}_{kind}.png"

    def clip(self, index: int) -> Path:
        return self.folder / "clips" / f"scene_{index:02d}.mp4"

    @property
    def output(self) -> Path:
        return self.folder / "output" / "final.mp4"

    def preview(self, crossfade: float) -> Path:
        """Where `vidpipe stitch --crossfade S` writes a trial stitch (never final.mp4)."""
        return self.folder / "output" / f"preview-crossfade-{crossfade:g}.mp4"

    @property
    def manifest(self) -> Path:
        return self.folder / "output" / "manifest.json"

    @property
    def contact_sheet(self) -> Path:
        return self.folder / "output" / "storyboard.png"

    def stored(self, path: Path) -> str:
        """How a path is recorded in the database: relative to artifacts_dir."""
        return path.resolve().relative_to(self.artifacts_dir.resolve()).as_posix()

    def load(self, stored: str) -> Path:
        return self.artifacts_dir / stored
