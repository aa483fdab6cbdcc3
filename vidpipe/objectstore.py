"""Artifacts in a bucket (``gs://``, ``s3://``) through fsspec, and the local copies they cache.

With ``artifacts_dir: gs://bucket/prefix`` (or ``s3://…``) the bucket is where artifacts
live for every machine sharing the database, and ``config.artifacts_dir`` is a local
*scratch* folder holding working copies (stitching reads clips from a local disk)::

    <url>/objects/<sha256[:2]>/<sha256>           every keyframe, clip and reference sheet,
                                                  uploaded once (content-addressed)
    <url>/<job>/<project-id>/output/final.mp4     the outputs (and manifest.json,
                                                  storyboard.png, captions)
    <url>/report.html                             the gallery

:class:`ObjectStore` owns the objects of one artifacts root: the local folder, and in
bucket mode the bucket behind it. An object is uploaded once (skipped when the bucket
holds it with the same size: its name is its sha256, and an upload appears whole or not
at all) and fetched into the local objects folder on demand, its sha256 checked before it
is used. The scratch folder is bounded (`scratch_max_bytes`): the least recently used
files that are safely in the bucket are evicted first.

Credentials and endpoints come only from each library's own settings: ADC or
``STORAGE_EMULATOR_HOST`` for gcsfs, ``AWS_ENDPOINT_URL`` and ``AWS_*`` for s3fs
(botocore). fsspec and its backends are imported when a bucket is first used.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vidpipe.artifacts import (
    OBJECTS,
    TMP_MARK,
    copy_atomic,
    object_path,
    put_object,
    sha256_file,
    temp_name,
    verified,
)
from vidpipe.errors import ConfigError, StorageError
from vidpipe.redact import redact

#: Supported schemes: the fsspec backend each needs, and the extra that installs it.
SCHEMES = {"gs": ("gcsfs", "gcs"), "s3": ("s3fs", "s3")}
#: Output files of a project that are published to the bucket (in its output/ folder).
PUBLISHED = ("final.mp4", "manifest.json", "storyboard.png", "final.vtt", "final.srt")

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")


def is_url(text: str) -> bool:
    """Whether a setting names a URL (``scheme://…``) rather than a local path."""
    return _URL.match(text) is not None


def url_problem(url: str, what: str) -> str | None:
    """Why `url` cannot be used as `what` ('' scheme, no bucket, library missing), or None."""
    match = _URL.match(url)
    if match is None:
        return f"{what} {url!r} is not a URL"
    scheme = match["scheme"].lower()
    if scheme not in SCHEMES:
        return (
            f"{what} {url!r}: {scheme}:// is not supported; use gs://BUCKET/PREFIX (Google "
            "Cloud Storage), s3://BUCKET/PREFIX (S3 and S3-compatible stores) or a local folder"
        )
    bucket = match["rest"].split("/", 1)[0]
    if not bucket or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,221}[A-Za-z0-9]", bucket):
        return f"{what} {url!r} names no valid bucket; write {scheme}://BUCKET/PREFIX"
    from importlib.util import find_spec

    module, extra = SCHEMES[scheme]
    missing = [name for name in ("fsspec", module) if find_spec(name) is None]
    if missing:
        return (
            f"{what} {url!r} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; run "
            f"pip install 'vidpipe[{extra}]'"
        )
    return None


def _gcs_emulator() -> str | None:
    """The GCS emulator gcsfs talks to (`STORAGE_EMULATOR_HOST`), as a URL; None if none."""
    host = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if not host or host == "default":
        return None
    return host if "://" in host else f"http://{host}"


def _proxied(endpoint: str) -> bool:
    """Whether requests to `endpoint` go through a proxy (then a direct connection proves
    nothing, and the library's own request says what is wrong)."""
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(endpoint)
    proxies = getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not proxy_bypass(parts.hostname or "")


def _errors() -> tuple[type[BaseException], ...]:
    """The exceptions a storage backend raises for a failed request (those installed)."""
    found: list[type[BaseException]] = [OSError, ValueError, TimeoutError]
    with contextlib.suppress(ImportError):
        from botocore.exceptions import BotoCoreError, ClientError

        found += [BotoCoreError, ClientError]
    with contextlib.suppress(ImportError):
        from gcsfs.retry import HttpError

        found.append(HttpError)
    with contextlib.suppress(ImportError):
        from google.auth.exceptions import GoogleAuthError

        found.append(GoogleAuthError)
    return tuple(found)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(text[:300])


class Bucket:
    """A prefix in an object store, through fsspec: keys are paths relative to the prefix."""

    def __init__(self, url: str):
        from fsspec.core import url_to_fs

        self.url = url.rstrip("/")
        self.scheme = self.url.split("://", 1)[0].lower()
        # Our own instance (the environment decides endpoints and credentials, and may
        # change), and no listings cache: another machine adds objects at any time.
        options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
        if self.scheme == "gs":
            from gcsfs.core import GCSFileSystem

            # The plain object API is all vidpipe uses (the extended class probes each
            # bucket's layout over gRPC first). An emulator takes no credentials, as with
            # Google's own client library: none are looked for.
            if _gcs_emulator():
                options["token"] = "anon"
            self.fs = GCSFileSystem(**options)
            root = GCSFileSystem._strip_protocol(self.url)
        else:
            self.fs, root = url_to_fs(self.url, **options)
        self.root = root.rstrip("/")
        self.name = self.root.split("/", 1)[0]

    def key(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def address(self, rel: str) -> str:
        """The URL of `rel` in the bucket (what users see)."""
        return f"{self.url}/{rel}"

    def endpoint(self) -> str:
        """Where requests go, as the library's settings say (for messages)."""
        if self.scheme == "gs":
            return _gcs_emulator() or "https://storage.googleapis.com"
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
            "AWS_ENDPOINT_URL", "the AWS S3 endpoint"
        )

    def _fail(self, action: str, rel: str, exc: BaseException) -> StorageError:
        return StorageError(
            f"could not {action} {self.address(rel)} ({self.endpoint()}): {_reason(exc)}"
        )

    def size(self, rel: str) -> int | None:
        """The size of the object `rel`, or None when the bucket does not hold it."""
        try:
            info = self.fs.info(self.key(rel))
        except FileNotFoundError:
            return None
        except _errors() as exc:
            raise self._fail("look up", rel, exc) from None
        if info.get("type") != "file":
            return None
        return int(info.get("size") or 0)

    def put(self, local: Path, rel: str) -> None:
        """Upload `local` as `rel` (an upload appears whole or not at all)."""
        try:
            self.fs.put_file(str(local), self.key(rel))
        except _errors() as exc:
            raise self._fail("upload", rel, exc) from None

    def get(self, rel: str, local: Path) -> bool:
        """Download `rel` to `local` (a temporary name; the caller checks and renames).

        False when the bucket does not hold it."""
        try:
            self.fs.get_file(self.key(rel), str(local))
        except FileNotFoundError:
            return False
        except _errors() as exc:
            raise self._fail("download", rel, exc) from None
        return True

    def get_url(self, url: str, local: Path) -> None:
        """Download the object at `url` (in this bucket, outside the prefix too)."""
        try:
            self.fs.get_file(self._url_key(url), str(local))
        except _errors() as exc:
            raise StorageError(f"could not download {url}: {_reason(exc)}") from None

    def copy_url(self, url: str, rel: str) -> None:
        """Copy the object at `url` to `rel` inside the store (no bytes pass through us)."""
        try:
            self.fs.copy(self._url_key(url), self.key(rel))
        except _errors() as exc:
            raise self._fail(f"copy {url} to", rel, exc) from None

    def _url_key(self, url: str) -> str:
        scheme, _, rest = url.partition("://")
        if scheme.lower() != self.scheme or rest.split("/", 1)[0] != self.name:
            raise StorageError(f"{url} is not in the bucket of {self.url}")
        return rest

    def sizes(self, rel_prefix: str) -> dict[str, int]:
        """Every object under `rel_prefix` with its size, keyed relative to the prefix."""
        try:
            found = self.fs.find(self.key(rel_prefix), detail=True)
        except FileNotFoundError:
            return {}
        except _errors() as exc:
            raise self._fail("list", rel_prefix, exc) from None
        start = len(self.root) + 1
        return {
            name[start:]: int(info.get("size") or 0)
            for name, info in found.items()
            if info.get("type") == "file"
        }

    def check(self) -> None:
        """Refuse (exit 2) an endpoint that cannot be reached or a bucket that is not there.

        gcsfs retries a refused connection for minutes; a plain connection to the endpoint
        first says in a second what is wrong.
        """
        endpoint = self.endpoint()
        if "://" in endpoint and not _proxied(endpoint):
            import socket  # here: local projects (and `stitch`, `list`) never connect

            parts = urlsplit(endpoint)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                with socket.create_connection((host, port), timeout=5):
                    pass
            except OSError as exc:
                raise ConfigError(
                    f"cannot reach the storage endpoint {redact(endpoint)} for {self.url}: "
                    f"{_reason(exc)}; start it, or fix {self._endpoint_setting()}"
                ) from None
        try:
            self.fs.info(self.name)
        except FileNotFoundError:
            raise ConfigError(
                f"bucket {self.name!r} of {self.url} does not exist at {redact(endpoint)}; "
                f"create it ({self._create_hint()}) or fix artifacts_dir"
            ) from None
        except PermissionError as exc:
            raise ConfigError(
                f"{redact(endpoint)} refused access to bucket {self.name!r}: {_reason(exc)}; "
                f"check the credentials ({self._credentials_hint()})"
            ) from None
        except _errors() as exc:
            raise ConfigError(
                f"cannot use bucket {self.name!r} at {redact(endpoint)}: {_reason(exc)}; "
                f"check {self._endpoint_setting()} and the credentials "
                f"({self._credentials_hint()})"
            ) from None

    def _endpoint_setting(self) -> str:
        return "STORAGE_EMULATOR_HOST" if self.scheme == "gs" else "AWS_ENDPOINT_URL"

    def _credentials_hint(self) -> str:
        if self.scheme == "gs":
            return "Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS or gcloud auth application-default login"
        return "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile"

    def _create_hint(self) -> str:
        if self.scheme == "gs":
            return f"gcloud storage buckets create gs://{self.name}"
        return f"aws s3 mb s3://{self.name}"


def _split(url: str) -> tuple[Bucket, str]:
    """A bucket for the folder of `url`, and the file's name in it."""
    folder, _, name = url.rstrip("/").rpartition("/")
    return Bucket(folder), name


def put_url(local: Path, url: str) -> None:
    """Upload `local` to `url` (an `output:` in a bucket)."""
    bucket, name = _split(url)
    bucket.put(local, name)


def url_size(url: str) -> int | None:
    """The size of the object at `url`, or None when there is none."""
    bucket, name = _split(url)
    return bucket.size(name)


@dataclass
class Eviction:
    """What a trim of the scratch folder removed."""

    files: list[Path] = field(default_factory=list)
    bytes_freed: int = 0
    #: Bytes of the scratch folder left afterwards, and its files (by content) kept.
    remaining: int = 0
    kept: int = 0


class ObjectStore:
    """The objects of one artifacts root: a local folder, and in bucket mode its bucket.

    Without a URL every method works on the local folder alone, as vidpipe always did.
    """

    def __init__(self, root: Path, url: str | None = None, max_bytes: int | None = None):
        self.root = root
        self.url = url.rstrip("/") if url else None
        self.max_bytes = max_bytes
        self._bucket: Bucket | None = None
        self._lock = threading.Lock()
        #: Keys this process saw in the bucket (objects never change under their name).
        self._present: set[str] = set()

    @property
    def remote(self) -> bool:
        return self.url is not None

    @property
    def bucket(self) -> Bucket:
        assert self.url is not None, "no bucket in local mode"
        with self._lock:
            if self._bucket is None:
                self._bucket = Bucket(self.url)
            return self._bucket

    def check(self) -> None:
        """In bucket mode, refuse (exit 2) a bucket that cannot be used; else nothing."""
        if self.remote:
            self.bucket.check()

    def rel(self, path: Path) -> str:
        """`path` (under the root) as a key relative to the root."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def address(self, path: Path) -> str:
        """Where a file under the root lives for users: its bucket URL in bucket mode."""
        if self.url is None:
            return str(path)
        return f"{self.url}/{self.rel(path)}"

    # -- objects --------------------------------------------------------------------------

    def object_address(self, sha256: str) -> str:
        return f"{self.url or self.root}/{OBJECTS}/{sha256[:2]}/{sha256}"

    def keep(self, src: Path, sha256: str) -> Path:
        """Keep `src` (content `sha256`) as an object, locally and in the bucket; its path."""
        target = put_object(self.root, src, sha256)
        if self.remote:
            self._upload(target, self._object_rel(sha256))
        return target

    def local(self, sha256: str | None) -> Path | None:
        """The local object with this content, fetched from the bucket when it is missing
        here (its sha256 checked); None when neither holds it intact."""
        if not sha256:
            return None
        path = object_path(self.root, sha256)
        if verified(path, sha256):
            _touch(path)
            return path
        if not self.remote or not self._fetch(self._object_rel(sha256), path, sha256):
            return None
        return path

    def has(self, sha256: str | None) -> bool:
        """Whether the object is available (here intact, or in the bucket), without
        fetching it."""
        if not sha256:
            return False
        if verified(object_path(self.root, sha256), sha256):
            return True
        return self.remote and self._in_bucket(self._object_rel(sha256))

    def restore(self, path: Path, sha256: str | None) -> bool:
        """Whether the project file `path` holds `sha256`: as it is, or put back from the
        object with that content (fetched from the bucket if need be).

        A file that exists with other content is left alone (it may be an edit).
        """
        if not sha256:
            return False
        if verified(path, sha256):
            return True
        if path.exists():
            return False
        source = self.local(sha256)
        if source is None:
            return False
        copy_atomic(source, path)
        return verified(path, sha256)

    def adopt(self, url: str, target: Path) -> str:
        """Keep a file a provider wrote into the bucket (Veo's `output_gcs_uri`) as an
        object: downloaded once to `target` (stitching needs it here), its sha256 taken
        there, and copied inside the bucket to its object name (no upload). Its sha256.
        """
        bucket = self.bucket
        tmp = temp_name(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            bucket.get_url(url, tmp)
            sha256 = sha256_file(tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        rel = self._object_rel(sha256)
        if not self._in_bucket(rel, target.stat().st_size):
            bucket.copy_url(url, rel)
            self._present.add(rel)
        put_object(self.root, target, sha256)
        return sha256

    # -- outputs --------------------------------------------------------------------------

    def publish(self, path: Path) -> None:
        """Upload an output file to the same place under the bucket (bucket mode only)."""
        if self.remote:
            rel = self.rel(path)
            self.bucket.put(path, rel)
            self._present.add(rel)

    def published_size(self, path: Path) -> int | None:
        """The size of the bucket's copy of an output file (None: not there)."""
        return self.bucket.size(self.rel(path))

    def pull(self, path: Path, sha256: str | None) -> bool:
        """Whether the output file `path` holds `sha256` here, downloading the bucket's copy
        when the local one is missing (bucket mode)."""
        if not sha256:
            return False
        if verified(path, sha256):
            return True
        return self.remote and self._fetch(self.rel(path), path, sha256)

    # -- the bucket -----------------------------------------------------------------------

    @staticmethod
    def _object_rel(sha256: str) -> str:
        return f"{OBJECTS}/{sha256[:2]}/{sha256}"

    def _in_bucket(self, rel: str, size: int | None = None) -> bool:
        if rel in self._present and size is None:
            return True
        found = self.bucket.size(rel)
        if found is None or (size is not None and found != size):
            return False
        self._present.add(rel)
        return True

    def _upload(self, path: Path, rel: str) -> None:
        """Upload once: skipped when the bucket holds an object of this name and size."""
        size = path.stat().st_size
        if self._in_bucket(rel, size):
            return
        self.bucket.put(path, rel)
        self._present.add(rel)

    def _fetch(self, rel: str, target: Path, sha256: str) -> bool:
        """Download `rel` to `target` through a temporary name, kept only if its sha256
        matches (a damaged object in the bucket counts as missing)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(target)
        try:
            if not self.bucket.get(rel, tmp) or sha256_file(tmp) != sha256:
                return False
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._present.add(rel)
        return True

    # -- the scratch bound ----------------------------------------------------------------

    def trim(self, limit: int | None = None, *, dry_run: bool = False) -> Eviction:
        """Evict the least recently used local files that are safely in the bucket until
        the scratch folder holds at most `limit` bytes (default: `scratch_max_bytes`).

        Only objects (with the project files that share their bytes) and published outputs
        are evicted, each after the bucket was seen holding it with the same size; a later
        run fetches what it needs again. Local mode: nothing is evicted.
        """
        limit = self.max_bytes if limit is None else limit
        out = Eviction()
        if not self.remote or not self.root.is_dir():
            return out
        inodes = _inodes(self.root)
        total = sum(entry.size for entry in inodes.values())
        out.remaining, out.kept = total, len(inodes)
        if limit is None or total <= limit:
            return out
        candidates = []
        for entry in inodes.values():
            rel = self._evictable(entry.paths)
            if rel is not None:
                candidates.append((entry.mtime, rel, entry))
        for _mtime, rel, entry in sorted(candidates, key=lambda c: (c[0], c[1])):
            if total <= limit:
                break
            if not self._in_bucket(rel, entry.size):
                continue
            out.files.extend(sorted(entry.paths))
            out.bytes_freed += entry.size
            out.kept -= 1
            total -= entry.size
            if not dry_run:
                for path in entry.paths:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        out.remaining = total
        return out

    def _evictable(self, paths: list[Path]) -> str | None:
        """The bucket key that holds these (hard-linked) files' bytes, if evictable."""
        for path in paths:
            rel = path.relative_to(self.root).as_posix()
            parts = rel.split("/")
            if parts[0] == OBJECTS and len(parts) == 3:
                return rel
        for path in paths:
            if _scratch_copy(path):
                return path.relative_to(self.root).as_posix()
        return None


def _scratch_copy(path: Path) -> bool:
    """Whether `path` is a project's published output (a copy of the bucket's)."""
    return path.parent.name == "output" and path.name in PUBLISHED


def _touch(path: Path) -> None:
    """Mark a local file used now (the scratch bound evicts the least recently used)."""
    with contextlib.suppress(OSError):
        os.utime(path)


@dataclass
class _Inode:
    size: int
    mtime: float
    paths: list[Path]


def _inodes(root: Path) -> dict[tuple[int, int], _Inode]:
    """Every regular file under `root` by inode (hard links count once)."""
    found: dict[tuple[int, int], _Inode] = {}
    for path in _files(root):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        ident = (info.st_dev, info.st_ino)
        if ident in found:
            found[ident].paths.append(path)
        else:
            found[ident] = _Inode(info.st_size, info.st_mtime, [path])
    return found


def _files(root: Path) -> Iterator[Path]:
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if TMP_MARK not in name:
                yield Path(folder) / name


def parse_size(value: Any) -> int | None:
    """A size setting (`20GB`, `500 MiB`, `1048576`) in bytes; None for no bound.

    Raises ValueError with a readable reason.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    match = re.fullmatch(
        r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]i?b|b)?\s*", str(value), flags=re.IGNORECASE
    )
    if match is None:
        raise ValueError(f"{value!r} is not a size; write bytes or a number with B, KB, MB, GB, TB")
    number, unit = float(match[1]), (match[2] or "b").lower()
    scale = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
    scale.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})
    return int(number * scale[unit])
