"""Schema migrations: small named functions, each run with its version record in one
transaction (sqlite-utils' way).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

# Migrations: small named functions, applied in order, each recorded with the new version.
# A fresh database gets the current schema from create_all and is stamped with the latest
# version, so a migration only ever runs against a database made by an older vidpipe.


def add_call_log(conn: Any) -> None:
    """Version 2: the call log behind `vidpipe costs` and `vidpipe batches`.

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


MIGRATIONS: list[tuple[int, Any]] = [(2, add_call_log)]
