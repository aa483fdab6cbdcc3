"""Schema migrations: small named functions, each run with its version record in one
transaction (sqlite-utils' way).

A fresh database gets the current schema from create_all and is stamped with the latest
version, so a migration only ever runs against a database made by an older vidpipe.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text


def m002_projects_record_their_plan(conn: Connection) -> None:
    """Projects are made from a compiled plan: `input_hash` becomes `plan_digest`, the
    `job` copy of the settings becomes `settings` (what the plan was made from), and
    `node_inputs` records what determined each generation, so `vidpipe plan` can say why
    one is new."""
    conn.execute(text("DROP INDEX IF EXISTS ix_projects_input_hash"))
    conn.execute(text("ALTER TABLE projects RENAME COLUMN input_hash TO plan_digest"))
    conn.execute(text("CREATE INDEX ix_projects_plan_digest ON projects (plan_digest)"))
    conn.execute(text("ALTER TABLE projects RENAME COLUMN job TO settings"))
    conn.execute(text("ALTER TABLE projects ADD COLUMN node_inputs JSON"))


def m003_call_log(conn: Connection) -> None:
    """The call log behind `vidpipe costs` and `vidpipe batches`: one row per generation a
    project used, made or taken from the cache.

    Earlier databases kept only the cache (one row per key), so their history is carried
    over as one paid call per recorded generation, dated when it finished and credited to
    its project's batch. Cache hits of those days were never written down and stay unknown.
    """
    from vidpipe.store.models import CallRecord

    CallRecord.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    conn.execute(
        text(
            "INSERT INTO call_log (at, batch_id, project_id, job_name, capability, provider,"
            " model, key, cached, cost_usd)"
            " SELECT COALESCE(g.completed_at, g.created_at), p.batch_id, g.project_id,"
            " p.job_name, g.capability, g.provider, g.model, g.key, :no, g.cost_usd"
            " FROM generations g JOIN projects p ON p.id = g.project_id"
            " WHERE g.status = 'complete'"
        ),
        {"no": False},
    )


def m004_claims_and_output_digests(conn: Connection) -> None:
    """A generation can be claimed while it is made (single flight: `running` rows with a
    lease), and a project records the sha256 of its manifest and contact sheet so a
    damaged one is rebuilt instead of trusted."""
    conn.execute(text("ALTER TABLE generations ADD COLUMN lease_expires_at TIMESTAMP"))
    conn.execute(text("ALTER TABLE projects ADD COLUMN manifest_sha256 VARCHAR(64)"))
    conn.execute(text("ALTER TABLE projects ADD COLUMN sheet_sha256 VARCHAR(64)"))


def m005_reference_images(conn: Connection) -> None:
    """Assets: each keyframe and clip records the reference images its request carried
    (asset name, path, sha256), shown by `status`, the manifest and the gallery."""
    conn.execute(text("ALTER TABLE keyframes ADD COLUMN reference_images JSON"))
    conn.execute(text("ALTER TABLE video_clips ADD COLUMN reference_images JSON"))


def m006_work_queue(conn: Connection) -> None:
    """`vidpipe submit` queues a batch as rows that `vidpipe worker`s on any machine claim:
    one `batch_items` row per job, with its lease, attempts and outcome.

    The table is spelled out here as it was first made (not taken from the model), so a
    later migration that changes it starts from this shape.
    """
    from sqlalchemy import (
        JSON,
        Column,
        DateTime,
        ForeignKey,
        Index,
        Integer,
        MetaData,
        String,
        Table,
        Text,
        UniqueConstraint,
    )

    meta = MetaData()
    Table("batches", meta, Column("id", String(40), primary_key=True))  # for the foreign key
    items = Table(
        "batch_items",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("batch_id", String(40), ForeignKey("batches.id"), nullable=False),
        Column("position", Integer, nullable=False),
        Column("job_name", String(64), nullable=False),
        Column("source", Text, nullable=False),
        Column("plan_digest", String(64), nullable=False),
        Column("status", String(20), nullable=False),
        Column("worker", String(200)),
        Column("lease_expires_at", DateTime),
        Column("attempts", Integer, nullable=False),
        Column("outcome", JSON),
        Column("queued_at", DateTime, nullable=False),
        Column("claimed_at", DateTime),
        Column("finished_at", DateTime),
        UniqueConstraint("batch_id", "position"),
        Index("ix_batch_items_batch_id", "batch_id"),
        Index("ix_batch_items_status", "status"),
    )
    items.create(conn)


#: (version it brings the schema to, migration), in order.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (2, m002_projects_record_their_plan),
    (3, m003_call_log),
    (4, m004_claims_and_output_digests),
    (5, m005_reference_images),
    (6, m006_work_queue),
]
