"""Schema migrations: small named functions, each run with its version record in one
transaction (sqlite-utils' way).
"""

from __future__ import annotations

from typing import Any

# Migrations: small named functions, applied in order, each recorded with the new version.
# A fresh database gets the current schema from create_all and is stamped with the latest
# version, so a migration only ever runs against a database made by an older vidpipe.


def add_claims_and_output_digests(conn: Any) -> None:
    """Schema 2: a generation can be claimed while it is made (single flight: `running`
    rows with a lease), and a project records the sha256 of its manifest and contact sheet
    so a damaged one is rebuilt instead of trusted."""
    conn.exec_driver_sql("ALTER TABLE generations ADD COLUMN lease_expires_at TIMESTAMP")
    conn.exec_driver_sql("ALTER TABLE projects ADD COLUMN manifest_sha256 VARCHAR(64)")
    conn.exec_driver_sql("ALTER TABLE projects ADD COLUMN sheet_sha256 VARCHAR(64)")


MIGRATIONS: list[tuple[int, Any]] = [(2, add_claims_and_output_digests)]
