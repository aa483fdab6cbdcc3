"""Everything vidpipe keeps in the database, behind one class.

Tables: projects (one run-able instance of a job, keyed by its input hash), scenes,
keyframes, video_clips, pipeline_runs (each time a runner works on a project), batches
(each `vidpipe run`), generations (the cache: one row per provider call key) and
vidpipe_meta (the schema version).

SQLite is the default, opened with WAL (readers never block the writer), a busy timeout
(several runners share one file) and foreign keys on. Any SQLAlchemy URL works; nothing
here is SQLite-only except those pragmas.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import (
    Session,
    sessionmaker,
)

from vidpipe.errors import ConfigError
from vidpipe.store.migrations import MIGRATIONS
from vidpipe.store.models import (
    SCHEMA_VERSION,
    Base,
    BatchRecord,
    Generation,
    Keyframe,
    Meta,
    PipelineRun,
    Project,
    Scene,
    VideoClip,
    new_id,
    owner_gone,
    runner_id,
    utcnow,
)

# Set while this thread runs a read-only transaction (see Store.reading).
_reading = threading.local()


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
        if getattr(_reading, "on", False):
            # A read: WAL gives it a snapshot without the write lock, so readers never
            # queue behind another job's writes (nor make writers queue behind them).
            conn.exec_driver_sql("BEGIN")
            return
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
        self._local = threading.local()  # this thread's open atomic() session, if any
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
        """A session in a transaction, committed on success (inside :meth:`atomic`, that
        block's session and transaction)."""
        current = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self.Session() as s, s.begin():
            yield s

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run this thread's store calls in the block as one transaction: a step's row
        writes cost one commit (and one wait for the write lock), not one per row. Keep
        provider calls out of the block: it holds the write lock."""
        if getattr(self._local, "session", None) is not None:
            yield
            return
        with self.Session() as s, s.begin():
            self._local.session = s
            try:
                yield
            finally:
                self._local.session = None

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: on SQLite a deferred transaction (no write lock)."""
        if getattr(self._local, "session", None) is not None:
            yield self._local.session
            return
        # The session begins its transaction at its first statement: the flag stays up
        # for the whole block.
        _reading.on = True
        try:
            with self.Session() as s, s.begin():
                yield s
        finally:
            _reading.on = False

    def close(self) -> None:
        self.engine.dispose()

    # -- batches --------------------------------------------------------------------------

    def start_batch(self, args: dict[str, Any]) -> str:
        batch = BatchRecord(id=new_id(), args=args, runner=runner_id())
        with self.session() as s:
            s.add(batch)
        return batch.id

    def finish_batch(self, batch_id: str, status: str, report: dict[str, Any]) -> None:
        with self.session() as s:
            s.execute(
                update(BatchRecord)
                .where(BatchRecord.id == batch_id)
                .values(status=status, finished_at=utcnow(), report=report)
            )

    def batch(self, batch_id: str | None = None) -> BatchRecord | None:
        """A batch by id, or the newest finished one."""
        with self.reading() as s:
            if batch_id:
                return s.get(BatchRecord, batch_id)
            return s.scalars(
                select(BatchRecord)
                .where(BatchRecord.report.is_not(None))
                .order_by(BatchRecord.started_at.desc(), BatchRecord.id.desc())
                .limit(1)
            ).first()

    # -- projects -------------------------------------------------------------------------

    def newest_project(self, job_name: str, plan_digest: str | None = None) -> Project | None:
        with self.reading() as s:
            query = select(Project).where(Project.job_name == job_name)
            if plan_digest is not None:
                query = query.where(Project.plan_digest == plan_digest)
            return s.scalars(
                query.order_by(Project.created_at.desc(), Project.id.desc()).limit(1)
            ).first()

    def project(self, project_id: str) -> Project | None:
        with self.reading() as s:
            return s.get(Project, project_id)

    def find_project(self, job_or_id: str) -> Project | None:
        """A project by id, or the newest project of a job name."""
        return self.project(job_or_id) or self.newest_project(job_or_id)

    def projects(self, status: str | None = None, limit: int | None = None) -> Sequence[Project]:
        with self.reading() as s:
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
        plan_digest: str,
        owner: str,
        seconds: float,
        *,
        force: bool,
        values: dict[str, Any],
    ) -> tuple[Project, str]:
        """Find or create the project of a job's plan and claim it, atomically.

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
                    .where(Project.job_name == job_name, Project.plan_digest == plan_digest)
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
                    plan_digest=plan_digest,
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

        with self.reading() as s:
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
        with self.reading() as s:
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
        with self.reading() as s:
            return list(
                s.scalars(
                    select(PipelineRun)
                    .where(PipelineRun.project_id == project_id)
                    .order_by(PipelineRun.id)
                ).all()
            )

    # -- generations (the cache) ----------------------------------------------------------

    def generation(self, key: str) -> Generation | None:
        with self.reading() as s:
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
        with self.reading() as s:
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
