"""Schema migrations: small named functions, each run with its version record in one
transaction (sqlite-utils' way).
"""

from __future__ import annotations

from typing import Any

# The schema this vidpipe writes. Here, not in models.py, so that vidpipe.store.lite can
# check it without importing SQLAlchemy.
SCHEMA_VERSION = 1

# Migrations: small named functions, applied in order, each recorded with the new version.
# A fresh database gets the current schema from create_all and is stamped with the latest
# version, so a migration only ever runs against a database made by an older vidpipe.
MIGRATIONS: list[tuple[int, Any]] = []
