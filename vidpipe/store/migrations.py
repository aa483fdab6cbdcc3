"""Schema migrations: small named functions, each run with its version record in one
transaction (sqlite-utils' way).
"""

from __future__ import annotations

from typing import Any

# Migrations: small named functions, applied in order, each recorded with the new version.
# A fresh database gets the current schema from create_all and is stamped with the latest
# version, so a migration only ever runs against a database made by an older vidpipe.


def _references_on_keyframes_and_clips(conn: Any) -> None:
    # Assets (0.2): which reference images each keyframe and clip request carried.
    from sqlalchemy import text

    conn.execute(text("ALTER TABLE keyframes ADD COLUMN reference_images JSON"))
    conn.execute(text("ALTER TABLE video_clips ADD COLUMN reference_images JSON"))


MIGRATIONS: list[tuple[int, Any]] = [(2, _references_on_keyframes_and_clips)]
