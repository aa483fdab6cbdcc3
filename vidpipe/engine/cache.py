"""The generation cache: never pay twice for the same provider call.

Every call has a key: the sha256 of a canonical JSON encoding of the provider, the
capability and every field that determines the result (model, rendered prompt, input
image hashes, parameters) as the provider declares them. A finished generation is reused
wherever its key appears again — a resume, an unchanged re-run, a changed job (only what
lies downstream of the change gets new keys) or another job. Failures are never recorded
as results. A long-running submission is recorded with its operation id before the
first poll, so a crashed run polls it again instead of submitting a second time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.artifacts import OBJECTS, TMP_MARK
from vidpipe.store import runner_id, utcnow

if TYPE_CHECKING:
    from vidpipe.objectstore import ObjectStore
    from vidpipe.store import Generation, Store

KEY_VERSION = 1


def generation_key(provider: str, capability: str, fields: dict[str, Any]) -> str:
    """The cache key of a call: stable across processes, machines and Python versions."""
    payload = {"v": KEY_VERSION, "provider": provider, "capability": capability, **fields}
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "items"):
        return dict(value.items())
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a cache key")


@dataclass(frozen=True)
class Hit:
    """A usable cached generation."""

    key: str
    path: Path | None
    sha256: str | None
    result: dict[str, Any] | None
    #: What made it, for the call log.
    capability: str = ""
    provider: str = ""
    model: str = ""


class Cache:
    """Lookups and records of generations. `force` makes every lookup miss.

    Results live in the object store (`objects`): the local objects folder and, in bucket
    mode, the bucket every machine shares; a result missing here is fetched from there.
    """

    def __init__(self, store: Store, objects: ObjectStore, *, force: bool = False):
        self.store = store
        self.objects = objects
        self.force = force

    def lookup(self, key: str) -> Hit | None:
        """A finished generation whose artifact (if any) is still intact."""
        if self.force:
            return None
        row = self.store.generation(key)
        if row is None or row.status != "complete":
            return None
        if row.result_path is not None:
            path = self.objects.local(row.result_sha256)
            if path is None:
                # Deleted or damaged here and not in the bucket: the record is worthless.
                self.store.drop_generation(key)
                return None
            return Hit(
                key, path, row.result_sha256, row.result, row.capability, row.provider, row.model
            )
        return Hit(key, None, None, row.result, row.capability, row.provider, row.model)

    def pending(self, key: str) -> Generation | None:
        """A submitted, not yet finished long-running generation with this key."""
        if self.force:
            return None
        row = self.store.generation(key)
        if row is not None and row.status == "submitted" and row.operation_id:
            return row
        return None

    def submitted(
        self,
        key: str,
        *,
        capability: str,
        provider: str,
        model: str,
        operation_id: str,
        project_id: str,
    ) -> None:
        """Record a submission before it is polled."""
        self.store.put_generation(
            key,
            capability=capability,
            provider=provider,
            model=model,
            status="submitted",
            operation_id=operation_id,
            project_id=project_id,
            owner=runner_id(),
            created_at=utcnow(),
        )

    def complete(
        self,
        key: str,
        *,
        capability: str,
        provider: str,
        model: str,
        project_id: str,
        path: Path | None = None,
        sha256: str | None = None,
        result: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
        cost_usd: float = 0.0,
        operation_id: str | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Record a finished generation (its artifact already safely on disk).

        The artifact goes into the object store (in bucket mode: uploaded once) and the
        record points there, not into the project folder: the cache outlives any project.
        `then` writes more rows in the same transaction (the call log's): one commit.
        """
        if path is not None and sha256 is not None:
            path = self.objects.keep(path, sha256)  # an upload: never under the write lock
        with self.store.atomic():
            self.store.put_generation(
                key,
                capability=capability,
                provider=provider,
                model=model,
                status="complete",
                operation_id=operation_id,
                result_path=self.objects.rel(path) if path else None,
                result_sha256=sha256,
                result=result,
                usage=usage or {},
                cost_usd=cost_usd,
                project_id=project_id,
                owner=runner_id(),
                completed_at=utcnow(),
            )
            if then is not None:
                then()

    def claim(
        self, key: str, owner: str, seconds: float, *, capability: str, provider: str, model: str
    ) -> bool:
        """Claim the making of `key` (single flight); False while another job makes it."""
        if self.force:
            # --force remakes finished generations: a finished row may be claimed again.
            row = self.store.generation(key)
            if row is not None and row.status == "complete":
                self.store.drop_generation(key)
        return self.store.claim_generation(
            key, owner, seconds, capability=capability, provider=provider, model=model
        )

    def release(self, key: str, owner: str) -> None:
        """Give up an unfinished claim (the call failed): never cached, another may try."""
        self.store.release_generation(key, owner)

    def forget(self, key: str) -> None:
        """A failed or filtered generation: nothing to reuse."""
        self.store.drop_generation(key)


@dataclass
class Garbage:
    """What `vidpipe gc` removed (or, with --dry-run, would remove)."""

    objects: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept: int = 0


def collect_garbage(
    store: Store, artifacts_dir: Path, *, keep_days: float, dry_run: bool = False
) -> Garbage:
    """Remove objects that no project file and no recent generation refers to.

    An object is kept while a project folder still holds a file recorded with its sha256
    (deleting the folder lets the object go), or while a generation made in the last
    `keep_days` days points at it (so a deleted project's recent results stay reusable).
    The cache records of removed objects are dropped with them. Bytes freed count files
    with no other hard link left.
    """
    import os

    root = artifacts_dir / OBJECTS
    garbage = Garbage()
    if not root.is_dir():
        return garbage
    wanted = {sha for path, sha in store.recorded_files() if (artifacts_dir / path).is_file()}
    cutoff = utcnow() - timedelta(days=keep_days)
    records: dict[str, list[str]] = {}
    for row in store.generations_with_files():
        if row.result_sha256 is None:
            continue
        records.setdefault(row.result_path or "", []).append(row.key)
        if (row.completed_at or row.created_at) >= cutoff:
            wanted.add(row.result_sha256)
    for path in sorted(root.glob("*/*")):
        if not path.is_file():
            continue
        leftover = TMP_MARK in path.name  # a crashed writer's temporary file
        if path.name in wanted and not leftover:
            garbage.kept += 1
            continue
        info = path.stat()
        stored = path.relative_to(artifacts_dir).as_posix()
        garbage.objects.append(stored)
        if info.st_nlink == 1:
            garbage.bytes_freed += info.st_size
        if dry_run:
            continue
        for key in records.get(stored, []):
            store.drop_generation(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return garbage
