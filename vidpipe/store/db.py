"""Everything vidpipe keeps in the database, behind one class.

Tables: projects (one run-able instance of a job, keyed by its input hash), scenes,
keyframes, video_clips, pipeline_runs (each time a runner works on a project), batches
(each `vidpipe run`), generations (the cache: one row per provider call key) and
vidpipe_meta (the schema version).

SQLite is the default, opened with WAL (readers never block the writer), a busy timeout
(several runners share one file) and foreign keys on. PostgreSQL
(``postgresql+psycopg://user:password@host:5432/db``) is the other tested backend: the
runners of several machines share it, leases and claims lock their rows
(``SELECT … FOR UPDATE``), and an unreachable server, a refused login or a missing
database is a sentence naming the server and what to do, the password masked.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError
from sqlalchemy.orm import (
    Session,
    sessionmaker,
)

from vidpipe.errors import ConfigError
from vidpipe.redact import add_secret, install, redact
from vidpipe.store.migrations import MIGRATIONS
from vidpipe.store.models import (
    SCHEMA_VERSION,
    Base,
    BatchItem,
    BatchRecord,
    CallRecord,
    Generation,
    ItemState,
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

#: The PostgreSQL advisory lock key that serialises migrations (any fixed number; "vidp").
_MIGRATION_LOCK = 0x76696470
# Set while this thread runs a read-only transaction (see Store.reading).
_reading = threading.local()


def _wal(cursor: Any) -> None:
    """Put the database in WAL mode, waiting out another process that is doing the same.

    Two runners opening a new database file together: switching its journal mode takes
    an exclusive lock, and SQLite answers "database is locked" at once rather than
    waiting busy_timeout, so the switch is retried (for up to 30 s, as any write waits).
    """
    import sqlite3

    deadline = time.monotonic() + 30
    delay = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would BEGIN lazily and
        # deferred); we begin every transaction ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _wal(cursor)
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
    """All database access. One instance per process; sessions are short-lived per call.

    Opening refuses, with a sentence that names the file and what to do (exit 2), a URL
    without a scheme, an in-memory SQLite database (it forgets the cache when the process
    ends), a folder, and a file that is damaged or another program's database. An empty
    (0-byte) SQLite file is only initialised after `on_empty(path)` agrees; the default
    warns on stderr that the cache is empty and goes on.
    """

    def __init__(self, url: str, *, on_empty: Callable[[Path], bool] | None = None):
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(
                f"database {url!r} is not a database URL; for a file write sqlite:///{url} "
                "(or give a URL such as postgresql+psycopg://user@host/db)"
            ) from None
        add_secret(parsed.password)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._server = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        self._database = parsed.database or ""
        self._user = parsed.username or ""
        #: The database file (SQLite), for messages.
        self.file: Path | None = None
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            self.file = _sqlite_file(url, parsed.database, parsed.query)
            empty = self.file.is_file() and self.file.stat().st_size == 0
            empty = empty and not _being_made(self.file)
            if empty and not (on_empty or warn_empty)(self.file):
                raise ConfigError(
                    f"{self.file} is empty (0 bytes), so the cache it held is gone; nothing "
                    "was run. Restore it from a backup, or run again with --yes to start "
                    "an empty cache (every generation is then made, and paid for, again)"
                )
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif parsed.get_backend_name() == "postgresql":
            kwargs.update(
                # Every job thread (-j) and the lease keeper hold a connection at times; a
                # connection dropped by the server or a proxy is replaced, not reported.
                pool_size=8,
                max_overflow=8,
                pool_pre_ping=True,
                pool_recycle=1800,
                # A firewalled host would otherwise hang for minutes before saying so.
                connect_args={"connect_timeout": 10},
            )
        try:
            self.engine = create_engine(url, **kwargs)
        except Exception as exc:  # a missing driver, a bad option: the URL is the problem
            raise ConfigError(f"cannot use database {_redact(url)!r}: {exc}") from None
        install(self.engine)
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
                if conn.dialect.name == "postgresql":
                    # Runners starting together on an empty database would both create the
                    # tables (one fails on a duplicate type); this lock, held until commit,
                    # makes the second wait and then find the schema made.
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                if (
                    self.is_sqlite
                    and conn.exec_driver_sql("PRAGMA quick_check(1)").scalar() != "ok"
                ):
                    raise DatabaseError("PRAGMA quick_check", None, Exception("damaged"))
                row = None
                if inspect(conn).has_table(Meta.__tablename__):
                    row = conn.execute(
                        select(Meta.value).where(Meta.key == "schema_version")
                    ).first()
                if row is None:
                    foreign = sorted(inspect(conn).get_table_names())
                    if foreign and foreign != [Meta.__tablename__]:
                        raise ConfigError(
                            f"{self._name()} holds tables vidpipe did not make "
                            f"({', '.join(foreign[:5])}); it is another program's database. "
                            "Point `database` (or --db) at another file"
                        )
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
        except DatabaseError as exc:
            raise ConfigError(self._unusable(exc)) from None

    def _name(self) -> str:
        return str(self.file) if self.file is not None else repr(_redact(self.url))

    def _unusable(self, exc: DatabaseError) -> str:
        """Why the database cannot be opened, and what to do, in one sentence."""
        reason = str(exc.orig) if exc.orig is not None else str(exc)
        if self.file is None:
            return self._server_unusable(exc, reason)
        if "locked" in reason or "busy" in reason:
            return (
                f"database {self.file} is locked: another process has held a write open for "
                "longer than 30 s (a paused or hung vidpipe?); resume or stop it, then try again"
            )
        if "unable to open" in reason:
            return (
                f"cannot open database file {self.file} ({reason}); check that its folder "
                "exists and is writable"
            )
        return (
            f"{self.file} is not a usable vidpipe database ({reason}): it is damaged or "
            "another program's file. Restore it from a backup, or move it away and run again "
            "to start an empty cache (every generation is then made, and paid for, again)"
        )

    def _server_unusable(self, exc: DatabaseError, reason: str) -> str:
        """Why a database server refused us, and what to do, in one sentence."""
        # The driver's text spans lines ("connection failed: … \n Is the server running…");
        # its first meaningful line is the reason.
        lines = [line.strip() for line in reason.splitlines() if line.strip()]
        reason = redact(lines[0] if lines else reason)
        code = getattr(exc.orig, "sqlstate", None)
        where = f"the database server at {self._server}"
        if code == "3D000" or ("does not exist" in reason and "database" in reason):
            host, _, port = self._server.rpartition(":")
            user = f" -U {self._user}" if self._user else ""
            return (
                f"database {self._database!r} does not exist on {where} ({_redact(self.url)}); "
                f"create it (createdb -h {host} -p {port}{user} {self._database}) and run again"
            )
        if (code or "").startswith("28") or "authentication" in reason or "role" in reason:
            return (
                f"{where} refused the login of {self._user!r} ({reason}); check the user "
                "name and password in the database URL (and the server's pg_hba.conf)"
            )
        if code is None and "connection" in reason.lower():
            return (
                f"cannot reach {where} ({reason}); start the server, or fix the host and "
                f"port in the database URL {_redact(self.url)!r}"
            )
        return (
            f"cannot use database {_redact(self.url)!r} on {where}: {reason}; check the URL, "
            "the credentials and that the server is running"
        )

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

    def batches(self, limit: int | None = None) -> list[BatchRecord]:
        """Batches, newest first."""
        with self.reading() as s:
            query = select(BatchRecord).order_by(
                BatchRecord.started_at.desc(), BatchRecord.id.desc()
            )
            if limit:
                query = query.limit(limit)
            return list(s.scalars(query).all())

    # -- projects -------------------------------------------------------------------------

    def newest_project(self, job_name: str, plan_digest: str | None = None) -> Project | None:
        with self.reading() as s:
            query = select(Project).where(Project.job_name == job_name)
            if plan_digest is not None:
                query = query.where(Project.plan_digest == plan_digest)
            return s.scalars(
                query.order_by(Project.created_at.desc(), Project.id.desc()).limit(1)
            ).first()

    def previous_project(self, project: Project) -> Project | None:
        """The job's project made just before `project` (its previous version)."""
        with self.reading() as s:
            return s.scalars(
                select(Project)
                .where(
                    Project.job_name == project.job_name,
                    (Project.created_at < project.created_at)
                    | ((Project.created_at == project.created_at) & (Project.id < project.id)),
                )
                .order_by(Project.created_at.desc(), Project.id.desc())
                .limit(1)
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
            if not self.is_sqlite:
                # FOR UPDATE locks rows that exist; two runners opening a plan nobody ran
                # yet would both create it. This lock (until commit) makes one of them wait
                # and then find the other's project.
                s.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:plan, 0))"),
                    {"plan": f"{job_name}\n{plan_digest}"},
                )
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

    def renew(self, project_ids: Sequence[str], owner: str, seconds: float) -> set[str]:
        """Extend this runner's leases, generation claims and claimed queue items (a
        worker's, see vidpipe.store.queue) in one transaction; return the projects still held.

        A project missing from the answer was taken over by another runner (our lease
        lapsed, say while this process was paused): its work must stop.
        """
        until = utcnow() + timedelta(seconds=seconds)
        with self.session() as s:
            s.execute(
                update(Generation)
                .where(Generation.status == "running", Generation.owner.startswith(owner + "/"))
                .values(lease_expires_at=until)
            )
            s.execute(
                update(BatchItem)
                .where(BatchItem.status == ItemState.CLAIMED, BatchItem.worker == owner)
                .values(lease_expires_at=until)
            )
            if not project_ids:
                return set()
            s.execute(
                update(Project)
                .where(Project.id.in_(list(project_ids)), Project.lease_owner == owner)
                .values(lease_expires_at=until)
            )
            return set(
                s.scalars(
                    select(Project.id).where(
                        Project.id.in_(list(project_ids)), Project.lease_owner == owner
                    )
                )
            )

    def holds(self, project_id: str, owner: str) -> bool:
        """Whether `owner` still holds the lease on a project (nobody took it over)."""
        with self.reading() as s:
            return s.scalar(select(Project.lease_owner).where(Project.id == project_id)) == owner

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

    def claim_generation(self, key: str, owner: str, seconds: float, **values: Any) -> bool:
        """Claim the making of generation `key` (single flight); False if it is not ours to make.

        True when there was no row, or a claim whose lease lapsed or whose runner is gone
        (or ours): the row is now ``running``, owned by `owner`. False when the key is
        finished, submitted or claimed by a live owner: wait for it and reuse it. One
        transaction under the write lock (SQLite BEGIN IMMEDIATE) or a row lock (FOR UPDATE
        on PostgreSQL, where a concurrent insert of the same key fails and is retried).
        """
        now = utcnow()
        try:
            with self.session() as s:
                query = select(Generation).where(Generation.key == key)
                if not self.is_sqlite:
                    query = query.with_for_update()
                row = s.scalars(query).first()
                lease = now + timedelta(seconds=seconds)
                if row is None:
                    s.add(
                        Generation(
                            key=key, status="running", owner=owner, lease_expires_at=lease, **values
                        )
                    )
                    return True
                if row.status != "running":
                    return False
                live = row.lease_expires_at is not None and row.lease_expires_at > now
                if row.owner != owner and live and not owner_gone(row.owner):
                    return False
                row.owner = owner
                row.lease_expires_at = lease
                return True
        except IntegrityError:
            return False  # another runner inserted the claim first

    def release_generation(self, key: str, owner: str) -> None:
        """Give up a claim that did not finish (the call failed): another job may try."""
        with self.session() as s:
            row = s.get(Generation, key)
            if row is not None and row.status == "running" and row.owner == owner:
                s.delete(row)

    def drop_generation(self, key: str) -> None:
        """Forget a generation (it failed, or its artifact is gone)."""
        with self.session() as s:
            row = s.get(Generation, key)
            if row is not None:
                s.delete(row)

    def recorded_files(self) -> list[tuple[str, str]]:
        """(path, sha256) of every artifact a project records: keyframes, clips, outputs."""
        with self.reading() as s:
            rows: list[Any] = list(s.execute(select(Keyframe.path, Keyframe.sha256)).all())
            rows += s.execute(
                select(VideoClip.path, VideoClip.sha256).where(VideoClip.path.is_not(None))
            ).all()
            rows += s.execute(
                select(Project.output_path, Project.output_sha256).where(
                    Project.output_path.is_not(None)
                )
            ).all()
        return [(path, sha) for path, sha in rows if path and sha]

    def generations_with_files(self) -> list[Generation]:
        """Every finished generation whose result is a file."""
        with self.reading() as s:
            return list(
                s.scalars(
                    select(Generation).where(
                        Generation.status == "complete", Generation.result_path.is_not(None)
                    )
                ).all()
            )

    # -- the call log ---------------------------------------------------------------------

    def log_call(self, **values: Any) -> None:
        """Note one generation a project used: made and paid for, or taken from the cache."""
        with self.session() as s:
            s.add(CallRecord(**values))

    def calls(
        self, *, since: datetime | None = None, batch_ids: Sequence[str] | None = None
    ) -> list[CallRecord]:
        """The call log, oldest first; from `since` on, or of these batches only."""
        with self.reading() as s:
            query = select(CallRecord).order_by(CallRecord.at, CallRecord.id)
            if since is not None:
                query = query.where(CallRecord.at >= since)
            if batch_ids is not None:
                query = query.where(CallRecord.batch_id.in_(list(batch_ids)))
            return list(s.scalars(query).all())

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


def _being_made(path: Path) -> bool:
    """Whether the empty database file `path` is one another runner has just created: it
    writes the schema (to the file, or first to its -wal beside it) within moments."""
    wal = path.with_name(path.name + "-wal")
    deadline = time.monotonic() + 1.0
    while True:
        try:
            if path.stat().st_size > 0 or wal.exists():
                return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def warn_empty(path: Path) -> bool:
    """The default for an empty database file: say the cache is empty, then go on."""
    print(
        f"vidpipe: warning: {path} is empty (0 bytes): starting a new, empty cache; "
        "every generation will be made, and paid for, again",
        file=sys.stderr,
        flush=True,
    )
    return True


def _sqlite_file(url: str, database: str | None, query: Any) -> Path:
    """The file of a SQLite URL; an in-memory database or a folder is refused."""
    if not database or database == ":memory:" or query.get("mode") == "memory":
        raise ConfigError(
            f"database {url!r} is in memory: the cache would be gone when vidpipe exits (and "
            "every connection would see its own); use a file such as sqlite:///vidpipe.db"
        )
    path = Path(database[len("file:") :] if database.startswith("file:") else database)
    if path.is_dir():
        raise ConfigError(
            f"database {path} is a folder; point `database` at a file such as sqlite:///vidpipe.db"
        )
    return path


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        pass
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
