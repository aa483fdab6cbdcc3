"""The database as the read-mostly commands need it, with the standard library's sqlite3.

`vidpipe list`, `status` and `stitch` read a few rows (and `stitch` writes three columns of
one): importing SQLAlchemy for that costs more than everything else they do. This module
reads the same tables into plain records with the attribute names of the ORM models, so
code written against :class:`vidpipe.store.Store` works with a :class:`LiteStore` too.

It is used only for SQLite databases at exactly this vidpipe's schema version; anything
else (another database, an older schema that needs migrating, a newer one to refuse) goes
through :class:`vidpipe.store.Store`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from vidpipe.store.ids import SCHEMA_VERSION


def _when(text: Any) -> Any:
    # SQLAlchemy stores DateTime in SQLite as ISO text without a zone.
    return datetime.fromisoformat(text) if isinstance(text, str) else text


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


class _Row:
    """A row as read, under the attribute names of its ORM model.

    Plain classes, not dataclasses: a dataclass compiles its methods from source text when
    its module is imported, and for these five that cost more than `vidpipe stitch` spends
    reading its rows. Every column is set from the row; the annotations name them.
    """

    _json_columns: ClassVar[tuple[str, ...]] = ()
    _time_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclasses they were

    @classmethod
    def load(cls, row: sqlite3.Row) -> Any:
        names = cls.__annotations__
        values = {k: row[k] for k in row.keys() if k in names}  # noqa: SIM118
        for k in cls._json_columns:
            values[k] = _json(values.get(k))
        for k in cls._time_columns:
            values[k] = _when(values.get(k))
        return cls(**values)


class ProjectRow(_Row):
    id: str
    job_name: str
    source_path: str
    plan_digest: str
    status: str
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any]
    node_inputs: dict[str, Any] | None
    providers: dict[str, Any]
    models: dict[str, Any]
    storyboard: dict[str, Any] | None
    storyboard_prompt: str | None
    output_path: str | None
    output_sha256: str | None
    output_duration: float | None
    manifest_sha256: str | None
    sheet_sha256: str | None
    cost_estimate_usd: float
    cost_actual_usd: float
    batch_id: str | None
    stopped_after: str | None
    timings: dict[str, Any]
    _json_columns = ("settings", "node_inputs", "providers", "models", "storyboard", "timings")
    _time_columns = ("created_at", "updated_at")


class KeyframeRow(_Row):
    kind: str
    path: str
    sha256: str
    source: str
    prompt: str | None
    reference_images: dict[str, Any] | None
    _json_columns = ("reference_images",)


class ClipRow(_Row):
    status: str
    path: str | None
    sha256: str | None
    duration: float | None
    attempts: int
    source: str
    error_message: str | None
    reference_images: dict[str, Any] | None
    operation_id: str | None
    _json_columns = ("reference_images",)


class SceneRow(_Row):
    id: int
    index: int
    status: str
    description: str
    prompts: dict[str, Any]
    duration: int
    error_message: str | None
    fields: dict[str, Any]
    _json_columns = ("prompts", "fields")

    def __init__(self, **values: Any) -> None:
        #: Filled in by :meth:`LiteStore.scenes` from their own tables.
        self.keyframes: list[KeyframeRow] = []
        self.clip: ClipRow | None = None
        super().__init__(**values)


class RunRow(_Row):
    started_at: datetime
    status: str
    provider_calls: int
    cached_calls: int
    cost_usd: float
    batch_id: str | None
    runner: str
    finished_at: datetime | None
    error_message: str | None
    _time_columns = ("started_at", "finished_at")


class LiteStore:
    """Project reads, the output columns `vidpipe stitch` writes and the record of a batch
    that found every job up to date, over sqlite3."""

    def __init__(self, connection: sqlite3.Connection):
        self.db = connection

    @classmethod
    def open(cls, url: str) -> LiteStore | None:
        """A LiteStore for a SQLite file at this vidpipe's schema version, else None."""
        if not url.startswith("sqlite:///"):
            return None
        path = Path(url[len("sqlite:///") :])
        if not path.is_file():
            return None
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            row = db.execute(
                "SELECT value FROM vidpipe_meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] != str(SCHEMA_VERSION):
            db.close()
            return None
        return cls(db)

    def close(self) -> None:
        self.db.close()

    def _projects(self, where: str, args: Sequence[Any], limit: int | None) -> list[ProjectRow]:
        sql = f"SELECT * FROM projects {where} ORDER BY created_at DESC, id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows: list[ProjectRow] = [ProjectRow.load(r) for r in self.db.execute(sql, args)]
        return rows

    def newest_project(self, job_name: str, plan_digest: str) -> ProjectRow | None:
        """The newest project of a job made from this plan digest."""
        found = self._projects("WHERE job_name = ? AND plan_digest = ?", [job_name, plan_digest], 1)
        return found[0] if found else None

    def project(self, project_id: str) -> ProjectRow | None:
        found = self._projects("WHERE id = ?", [project_id], 1)
        return found[0] if found else None

    def find_project(self, job_or_id: str) -> ProjectRow | None:
        """A project by id, or the newest project of a job name."""
        newest = self._projects("WHERE job_name = ?", [job_or_id], 1)
        return self.project(job_or_id) or (newest[0] if newest else None)

    def projects(self, status: str | None = None, limit: int | None = None) -> list[ProjectRow]:
        if status:
            return self._projects("WHERE status = ?", [status], limit)
        return self._projects("", [], limit)

    def scenes(self, project_id: str) -> list[SceneRow]:
        """Scenes of a project with their keyframes and clip, in three queries."""
        scenes: list[SceneRow] = [
            SceneRow.load(r)
            for r in self.db.execute(
                'SELECT * FROM scenes WHERE project_id = ? ORDER BY "index"', [project_id]
            )
        ]
        by_id = {s.id: s for s in scenes}
        ids = ",".join(str(s.id) for s in scenes) or "NULL"
        for r in self.db.execute(
            f"SELECT * FROM keyframes WHERE scene_id IN ({ids}) ORDER BY kind DESC"
        ):
            by_id[r["scene_id"]].keyframes.append(KeyframeRow.load(r))
        for r in self.db.execute(f"SELECT * FROM video_clips WHERE scene_id IN ({ids})"):
            by_id[r["scene_id"]].clip = ClipRow.load(r)
        return scenes

    def runs(self, project_id: str) -> list[RunRow]:
        rows: list[RunRow] = [
            RunRow.load(r)
            for r in self.db.execute(
                "SELECT * FROM pipeline_runs WHERE project_id = ? ORDER BY id", [project_id]
            )
        ]
        return rows

    def project_cost(self, project_id: str) -> dict[str, float]:
        """Actual spend of a project by capability (cache hits cost nothing)."""
        out: dict[str, float] = {}
        for capability, cost in self.db.execute(
            "SELECT capability, cost_usd FROM generations WHERE project_id = ?", [project_id]
        ):
            out[capability] = out.get(capability, 0.0) + (cost or 0.0)
        return out

    # The columns `vidpipe stitch` writes: the output and the digests of what it wrote.
    _OUTPUT_COLUMNS = frozenset(
        {"output_path", "output_sha256", "output_duration", "manifest_sha256", "sheet_sha256"}
    )

    def update_project(self, project_id: str, **values: Any) -> None:
        """Record a project's stitched output (the only write `vidpipe stitch` makes)."""
        unknown = set(values) - self._OUTPUT_COLUMNS
        if unknown:
            raise ValueError(f"LiteStore writes only the output columns, not {sorted(unknown)}")
        values["updated_at"] = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        columns = ", ".join(f"{name} = ?" for name in values)
        self.db.execute(
            f"UPDATE projects SET {columns} WHERE id = ?", [*values.values(), project_id]
        )

    def add_batch(
        self, batch_id: str, runner: str, args: dict[str, Any], report: dict[str, Any],
        started_at: datetime, status: str,
    ) -> None:  # fmt: skip
        """Record a finished batch in one statement, as `Store.start_batch` and
        `finish_batch` together would (a batch that found every job up to date)."""
        self.db.execute(
            "INSERT INTO batches (id, started_at, finished_at, status, runner, args, report) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                started_at.isoformat(sep=" "),
                datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "),
                status,
                runner,
                json.dumps(args),
                json.dumps(report),
            ],
        )
