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


#: (version it brings the schema to, migration), in order.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (2, m002_projects_record_their_plan),
]
