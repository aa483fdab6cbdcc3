"""One redaction of credentials, applied to everything vidpipe writes or prints.

Secrets are read from the environment only (SPEC §5) and must never reach the database,
logs, reports, JUnit files or the gallery — on any path, expected or not. An exception
can quote a credential (an API key with a non-ASCII character pasted into it makes the
HTTP layer raise a ``UnicodeEncodeError`` holding the whole header value), so redaction
happens where text leaves the process, not where errors are raised:

- every statement parameter sent to the database (:func:`install` on the engine),
- every log record (:class:`RedactingFormatter`),
- every message the CLI prints, every report, JUnit file and gallery.

What counts as a secret: the value of every environment variable whose name says it
holds one (``…KEY``, ``…SECRET…``, ``…TOKEN``, ``…PASSWORD``, ``…CREDENTIALS_JSON`` …),
the password of the database URL (:func:`add_secret`), and any ``user:password@`` in a
URL. Values shorter than :data:`MIN_SECRET` characters are ignored: masking "1" or "yes"
everywhere would make every message unreadable and protect nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "***"
MIN_SECRET = 8

_SECRET_NAME = re.compile(
    r"(API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|"
    r"CREDENTIALS?_JSON|AUTH)",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@/\s]+)@")

_extra: set[str] = set()
_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Treat `value` (a database password, say) as a secret from now on."""
    if value and len(value) >= MIN_SECRET // 2:
        with _lock:
            _extra.add(value)


def secret_names(env: Mapping[str, str] | None = None) -> list[str]:
    """Names of the environment variables whose values are treated as secrets."""
    env = os.environ if env is None else env
    return [name for name in sorted(env) if _is_secret_name(name)]


@functools.lru_cache(maxsize=1024)
def _is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def _forms(value: str) -> set[str]:
    """The ways a secret can appear in text: as is, and escaped the ways Python and JSON do."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    forms.add(value.encode("unicode_escape").decode("ascii"))
    forms.add(repr(value.encode("utf-8", "surrogateescape"))[2:-1])  # as bytes in a message
    return {f for f in forms if f}


def secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret string form to mask, longest first (a key containing another masks whole)."""
    env = os.environ if env is None else env
    values = {env[name] for name in secret_names(env) if len(env[name].strip()) >= MIN_SECRET}
    with _lock:
        values |= _extra
    # Every statement a job writes is redacted (see install): the forms of the same values
    # are worked out once, not once per string.
    return list(_all_forms(frozenset(values)))


@functools.lru_cache(maxsize=16)
def _all_forms(values: frozenset[str]) -> tuple[str, ...]:
    forms: set[str] = set()
    for value in values:
        forms |= _forms(value)
    return tuple(sorted(forms, key=len, reverse=True))


def redact(
    text: str, env: Mapping[str, str] | None = None, *, known: list[str] | None = None
) -> str:
    """`text` with every secret replaced by ``***`` (`known`: :func:`secrets` already found)."""
    if not text:
        return text
    for secret in secrets(env) if known is None else known:
        if secret in text:
            text = text.replace(secret, MASK)
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", text)


def redact_data(value: Any, *, known: list[str] | None = None) -> Any:
    """A copy of JSON-like data with every string redacted (reports, JUnit, the gallery).

    The secrets are looked up once for the whole value, not once per string: a report of
    a hundred jobs holds over a thousand strings."""
    known = secrets() if known is None else known
    if isinstance(value, str):
        return redact(value, known=known)
    if isinstance(value, Mapping):
        return {k: redact_data(v, known=known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v, known=known) for v in value]
    return value


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (tracebacks included) passes :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def install(engine: Any) -> None:
    """Redact every string parameter of every statement `engine` sends to the database.

    One hook for every column (error messages, reports, prompts): a path that forgets to
    redact cannot write a credential.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _redact_parameters(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> tuple[str, Any]:
        # The secrets are looked up once per statement, not once per string in it: a job
        # sends a few thousand statements, most with several strings.
        known = secrets()
        # With insertmanyvalues (PostgreSQL) `many` is set but the rows arrive already
        # folded into one statement with one mapping of parameters.
        if many and not isinstance(parameters, Mapping):
            return statement, [_clean(p, known) for p in parameters]
        return statement, _clean(parameters, known)


def _clean(parameters: Any, known: list[str]) -> Any:
    if isinstance(parameters, str):
        return redact(parameters, known=known)
    if isinstance(parameters, Mapping):
        return {k: _clean(v, known) if isinstance(v, str) else v for k, v in parameters.items()}
    if isinstance(parameters, tuple):
        return tuple(_clean(v, known) if isinstance(v, str) else v for v in parameters)
    if isinstance(parameters, list):
        return [_clean(v, known) if isinstance(v, str) else v for v in parameters]
    return parameters
