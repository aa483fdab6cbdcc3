"""Everything vidpipe keeps in the database, behind one class.

Tables: projects (one run-able instance of a job, keyed by its input hash), scenes,
keyframes, video_clips, pipeline_runs (each time a runner works on a project), batches
(each `vidpipe run`), generations (the cache: one row per provider call key) and
vidpipe_meta (the schema version).

SQLite is the default, opened with WAL (readers never block the writer), a busy timeout
(several runners share one file) and foreign keys on. Any SQLAlchemy URL works; nothing
here is SQLite-only except those pragmas.

Paths are stored relative to `artifacts_dir` so a database can move between machines that
mount the artifacts at different places.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from .errors import ConfigError

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    """A sortable, unique project/batch id: UTC time plus random hex."""
    return utcnow().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def runner_id() -> str:
    """Identifies this process among runners sharing a database."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def owner_gone(owner: str | None) -> bool:
    """True if a lease owner is a process on this machine that no longer runs.

    Its lease can be taken over at once instead of waiting for it to expire: the common
    case of a run killed on a laptop or CI runner and started again.
    """
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if owner == runner_id():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return int(pid_text) == os.getpid()  # same pid, other token: an earlier life of this pid


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    __tablename__ = "vidpipe_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Batch(Base):
    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    runner: Mapped[str] = mapped_column(String(200), default="")
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_name: Mapped[str] = mapped_column(String(64), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    input_hash: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    job: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    providers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    storyboard: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    storyboard_prompt: Mapped[str | None] = mapped_column(Text)
    output_path: Mapped[str | None] = mapped_column(Text)
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    output_duration: Mapped[float | None] = mapped_column(Float)
    cost_estimate_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cost_actual_usd: Mapped[float] = mapped_column(Float, default=0.0)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    stopped_after: Mapped[str | None] = mapped_column(String(20))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scenes: Mapped[list[Scene]] = relationship(
        back_populates="project", order_by="Scene.index", cascade="all, delete-orphan"
    )


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("project_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(30), default="pending")
    description: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prompts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration: Mapped[int] = mapped_column(Integer, default=4)
    error_message: Mapped[str | None] = mapped_column(Text)
    project: Mapped[Project] = relationship(back_populates="scenes")
    keyframes: Mapped[list[Keyframe]] = relationship(
        back_populates="scene", cascade="all, delete-orphan", order_by="Keyframe.kind.desc()"
    )
    clip: Mapped[VideoClip | None] = relationship(
        back_populates="scene", cascade="all, delete-orphan", uselist=False
    )


class Keyframe(Base):
    __tablename__ = "keyframes"
    __table_args__ = (UniqueConstraint("scene_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # start | end
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))  # generated | cached | inherited | override
    generation_key: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    scene: Mapped[Scene] = relationship(back_populates="keyframes")


class VideoClip(Base):
    __tablename__ = "video_clips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[int] = mapped_column(
        ForeignKey("scenes.id", ondelete="CASCADE"), unique=True, index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    generation_key: Mapped[str] = mapped_column(String(64))
    operation_id: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    duration: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(20), default="generated")
    error_message: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    scene: Mapped[Scene] = relationship(back_populates="clip")


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    runner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    provider_calls: Mapped[int] = mapped_column(Integer, default=0)
    cached_calls: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    error_message: Mapped[str | None] = mapped_column(Text)


class Generation(Base):
    """One provider call, keyed by the hash of everything that determines its result."""

    __tablename__ = "generations"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    capability: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # submitted | complete | rai_filtered
    operation_id: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(Text)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    project_id: Mapped[str | None] = mapped_column(String(40))
    owner: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


# Migrations: small named functions, applied in order, each recorded with the new version.
# A fresh database gets the current schema from create_all and is stamped with the latest
# version, so a migration only ever runs against a database made by an older vidpipe.
MIGRATIONS: list[tuple[int, Any]] = []


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would BEGIN lazily and
        # deferred); we begin every transaction ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front. A deferred transaction that reads and then
        # writes can fail at once with "database is locked" when another runner wrote in
        # between (WAL snapshot upgrade); an immediate one waits for busy_timeout instead, and
        # it makes claims (read lease, then write it) atomic across processes.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """All database access. One instance per process; sessions are short-lived per call."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        try:
            self.engine = create_engine(url, **kwargs)
        except Exception as exc:
            raise ConfigError(f"cannot use database {_redact(url)!r}: {exc}") from None
        if self.is_sqlite:
            _sqlite_setup(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.migrate()

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema up to date; return the version."""
        try:
            with self.engine.begin() as conn:
                Meta.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
                row = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).first()
                if row is None:
                    Base.metadata.create_all(conn)
                    conn.execute(
                        insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                    )
                    return SCHEMA_VERSION
                version = int(row[0])
                if version > SCHEMA_VERSION:
                    raise ConfigError(
                        f"the database was written by a newer vidpipe (schema {version}, this one "
                        f"knows {SCHEMA_VERSION}); upgrade vidpipe"
                    )
                for target, step in MIGRATIONS:
                    if target > version:
                        step(conn)
                        conn.execute(
                            update(Meta)
                            .where(Meta.key == "schema_version")
                            .values(value=str(target))
                        )
                        version = target
                return version
        except OperationalError as exc:
            raise ConfigError(f"cannot open database {_redact(self.url)!r}: {exc.orig}") from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction, committed on success."""
        with self.Session() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # -- batches --------------------------------------------------------------------------

    def start_batch(self, args: dict[str, Any]) -> str:
        batch = Batch(id=new_id(), args=args, runner=runner_id())
        with self.session() as s:
            s.add(batch)
        return batch.id

    def finish_batch(self, batch_id: str, status: str, report: dict[str, Any]) -> None:
        with self.session() as s:
            s.execute(
                update(Batch)
                .where(Batch.id == batch_id)
                .values(status=status, finished_at=utcnow(), report=report)
            )

    def batch(self, batch_id: str | None = None) -> Batch | None:
        """A batch by id, or the newest finished one."""
        with self.session() as s:
            if batch_id:
                return s.get(Batch, batch_id)
            return s.scalars(
                select(Batch)
                .where(Batch.report.is_not(None))
                .order_by(Batch.started_at.desc(), Batch.id.desc())
                .limit(1)
            ).first()

    # -- projects -------------------------------------------------------------------------

    def newest_project(self, job_name: str, input_hash: str | None = None) -> Project | None:
        with self.session() as s:
            query = select(Project).where(Project.job_name == job_name)
            if input_hash is not None:
                query = query.where(Project.input_hash == input_hash)
            return s.scalars(
                query.order_by(Project.created_at.desc(), Project.id.desc()).limit(1)
            ).first()

    def project(self, project_id: str) -> Project | None:
        with self.session() as s:
            return s.get(Project, project_id)

    def find_project(self, job_or_id: str) -> Project | None:
        """A project by id, or the newest project of a job name."""
        return self.project(job_or_id) or self.newest_project(job_or_id)

    def projects(self, status: str | None = None, limit: int | None = None) -> Sequence[Project]:
        with self.session() as s:
            query = select(Project).order_by(Project.created_at.desc(), Project.id.desc())
            if status:
                query = query.where(Project.status == status)
            if limit:
                query = query.limit(limit)
            return s.scalars(query).all()

    def update_project(self, project_id: str, **values: Any) -> None:
        values.setdefault("updated_at", utcnow())
        with self.session() as s:
            s.execute(update(Project).where(Project.id == project_id).values(**values))

    def claim(self, project_id: str, owner: str, seconds: float) -> bool:
        """Take or renew the lease on a project; False if another runner holds a live lease."""
        now = utcnow()
        with self.session() as s:
            query = select(Project).where(Project.id == project_id)
            if not self.is_sqlite:
                # PostgreSQL: lock the row; a runner that finds it locked skips the job.
                query = query.with_for_update(skip_locked=True)
            project = s.scalars(query).first()
            if project is None:
                return False
            live = project.lease_expires_at is not None and project.lease_expires_at > now
            if (
                project.lease_owner not in (None, owner)
                and live
                and not owner_gone(project.lease_owner)
            ):
                return False
            project.lease_owner = owner
            project.lease_expires_at = now + timedelta(seconds=seconds)
            return True

    def open_project(
        self,
        job_name: str,
        input_hash: str,
        owner: str,
        seconds: float,
        *,
        force: bool,
        values: dict[str, Any],
    ) -> tuple[Project, str]:
        """Find or create the project for a job's inputs and claim it, atomically.

        Returns the project and one of: ``new`` (created and claimed), ``claimed`` (an
        existing project, now ours to continue), ``complete`` (finished; not claimed) or
        ``busy`` (another runner holds a live lease). One transaction holding the write
        lock, so two runners starting together never both create or both claim.
        """
        now = utcnow()
        with self.session() as s:
            project = None
            if not force:
                query = (
                    select(Project)
                    .where(Project.job_name == job_name, Project.input_hash == input_hash)
                    .order_by(Project.created_at.desc(), Project.id.desc())
                    .limit(1)
                )
                if not self.is_sqlite:
                    query = query.with_for_update()
                project = s.scalars(query).first()
            if project is None:
                project = Project(
                    id=new_id(),
                    job_name=job_name,
                    input_hash=input_hash,
                    lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=seconds),
                    **values,
                )
                s.add(project)
                return project, "new"
            if project.status == "complete":
                return project, "complete"
            live = project.lease_expires_at is not None and project.lease_expires_at > now
            if (
                project.lease_owner not in (None, owner)
                and live
                and not owner_gone(project.lease_owner)
            ):
                return project, "busy"
            project.lease_owner = owner
            project.lease_expires_at = now + timedelta(seconds=seconds)
            return project, "claimed"

    def renew(self, project_ids: Sequence[str], owner: str, seconds: float) -> None:
        """Extend this runner's leases (called periodically while it works)."""
        if not project_ids:
            return
        with self.session() as s:
            s.execute(
                update(Project)
                .where(Project.id.in_(list(project_ids)), Project.lease_owner == owner)
                .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
            )

    def release(self, project_id: str, owner: str) -> None:
        with self.session() as s:
            s.execute(
                update(Project)
                .where(Project.id == project_id, Project.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    # -- scenes, keyframes, clips ---------------------------------------------------------

    def scenes(self, project_id: str) -> list[Scene]:
        """Scenes of a project with their keyframes and clip loaded."""
        from sqlalchemy.orm import selectinload

        with self.session() as s:
            return list(
                s.scalars(
                    select(Scene)
                    .where(Scene.project_id == project_id)
                    .options(selectinload(Scene.keyframes), selectinload(Scene.clip))
                    .order_by(Scene.index)
                ).all()
            )

    def replace_scenes(self, project_id: str, scenes: list[dict[str, Any]]) -> None:
        """Create the project's scene rows (after the storyboard), dropping any old ones."""
        with self.session() as s:
            for old in s.scalars(select(Scene).where(Scene.project_id == project_id)):
                s.delete(old)
            s.flush()
            for values in scenes:
                s.add(Scene(project_id=project_id, **values))

    def update_scene(self, project_id: str, index: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(
                update(Scene)
                .where(Scene.project_id == project_id, Scene.index == index)
                .values(**values)
            )

    def scene_id(self, s: Session, project_id: str, index: int) -> int:
        scene_id = s.scalar(
            select(Scene.id).where(Scene.project_id == project_id, Scene.index == index)
        )
        assert scene_id is not None, f"scene {index} of {project_id} has no row"
        return scene_id

    def put_keyframe(self, project_id: str, index: int, kind: str, **values: Any) -> None:
        with self.session() as s:
            scene_id = self.scene_id(s, project_id, index)
            row = s.scalars(
                select(Keyframe).where(Keyframe.scene_id == scene_id, Keyframe.kind == kind)
            ).first()
            if row is None:
                s.add(Keyframe(scene_id=scene_id, kind=kind, **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

    def clip(self, project_id: str, index: int) -> VideoClip | None:
        """The clip row of one scene, if it has one."""
        with self.session() as s:
            return s.scalars(
                select(VideoClip)
                .join(Scene)
                .where(Scene.project_id == project_id, Scene.index == index)
            ).first()

    def put_clip(self, project_id: str, index: int, **values: Any) -> None:
        with self.session() as s:
            scene_id = self.scene_id(s, project_id, index)
            row = s.scalars(select(VideoClip).where(VideoClip.scene_id == scene_id)).first()
            if row is None:
                s.add(VideoClip(scene_id=scene_id, **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, project_id: str, batch_id: str | None) -> int:
        run = PipelineRun(project_id=project_id, batch_id=batch_id, runner=runner_id())
        with self.session() as s:
            s.add(run)
        return run.id

    def finish_run(self, run_id: int, **values: Any) -> None:
        values.setdefault("finished_at", utcnow())
        with self.session() as s:
            s.execute(update(PipelineRun).where(PipelineRun.id == run_id).values(**values))

    def runs(self, project_id: str) -> list[PipelineRun]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(PipelineRun)
                    .where(PipelineRun.project_id == project_id)
                    .order_by(PipelineRun.id)
                ).all()
            )

    # -- generations (the cache) ----------------------------------------------------------

    def generation(self, key: str) -> Generation | None:
        with self.session() as s:
            return s.get(Generation, key)

    def put_generation(self, key: str, **values: Any) -> None:
        with self.session() as s:
            row = s.get(Generation, key)
            if row is None:
                s.add(Generation(key=key, **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

    def drop_generation(self, key: str) -> None:
        """Forget a generation (it failed, or its artifact is gone)."""
        with self.session() as s:
            row = s.get(Generation, key)
            if row is not None:
                s.delete(row)

    def project_cost(self, project_id: str) -> dict[str, float]:
        """Actual spend of a project by capability (cache hits cost nothing)."""
        with self.session() as s:
            rows = s.execute(
                select(Generation.capability, Generation.cost_usd).where(
                    Generation.project_id == project_id
                )
            ).all()
        out: dict[str, float] = {}
        for capability, cost in rows:
            out[capability] = out.get(capability, 0.0) + (cost or 0.0)
        return out


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
