"""Schema migrations: small named functions, each run with its version record in one
transaction (sqlite-utils' way).
"""

from __future__ import annotations

from typing import Any

# Migrations: small named functions, applied in order, each recorded with the new version.
# A fresh database gets the current schema from create_all and is stamped with the latest
# version, so a migration only ever runs against a database made by an older vidpipe.
MIGRATIONS: list[tuple[int, Any]] = []
