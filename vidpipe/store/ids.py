"""Ids, clocks, runner identity and the schema version: what the engine and
vidpipe.store.lite need from the store without its ORM (importing SQLAlchemy costs more
than most commands do)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

# The schema this vidpipe writes (see migrations.py for how older ones are brought up).
SCHEMA_VERSION = 6


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    """A sortable, unique project/batch id: UTC time plus random hex."""
    return utcnow().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def runner_id() -> str:
    """Identifies this process among runners sharing a database."""
    import socket  # here: `list`, `status` and `stitch` import this module, never call this

    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def owner_gone(owner: str | None) -> bool:
    """True if a lease owner is a process on this machine that no longer runs.

    Its lease can be taken over at once instead of waiting for it to expire: the common
    case of a run killed on a laptop or CI runner and started again.
    """
    if not owner:
        return True
    import socket

    owner = owner.split("/", 1)[0]  # a claim's owner is the runner id + "/" + a project id
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
