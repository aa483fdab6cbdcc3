"""How the google provider reads a failed request: retry it, and after how long, or not.

Classification uses only the SDK's public error types and the status code:

* ``google.genai.errors.APIError`` (``ClientError`` for 4xx, ``ServerError`` for 5xx):
  408, 429 and 5xx are transient; any other 4xx is a :class:`Refused` request, except a
  429 whose ``google.rpc.QuotaFailure`` names a per-day quota (waiting minutes cannot
  help, so it is refused too).
* Transport failures (connection refused, reset, timed out) surface as the HTTP
  library's own exceptions: ``httpx`` on google-genai 2.x, ``httpx2`` on 3.x, ``aiohttp``
  or ``requests`` in some set-ups. Importing any one of them would tie vidpipe to one SDK
  generation, so an exception counts as a transport failure when a class in its MRO is
  called ``TransportError``/``ClientError``/``RequestException`` and lives in one of those
  libraries, or when it is an ``OSError`` (sockets raise those directly).

The wait before a retry is the server's when it gives one: the ``Retry-After`` header, or
— as Vertex does on 429 — ``retryDelay`` of a ``google.rpc.RetryInfo`` in the error body
(``{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
"retryDelay": "3s"}]}}``). Otherwise :func:`~vidpipe.providers.ratelimit.with_retries`
backs off exponentially with jitter.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from vidpipe.errors import ProviderError

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
TRANSIENT_STATUS = (408, 429)
_TRANSPORT_LIBRARIES = ("httpx", "httpx2", "httpcore", "aiohttp", "requests", "urllib3")
_TRANSPORT_CLASSES = ("TransportError", "ClientError", "RequestException", "HTTPError")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


class Refused(ProviderError):
    """The API refused a request (a 4xx other than 408/429): retrying it cannot help."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


def transient_status(code: int) -> bool:
    """408, 429 and 5xx are worth retrying."""
    return code in TRANSIENT_STATUS or code >= 500


def is_transport_error(exc: BaseException) -> bool:
    """A network-level failure of whichever HTTP library the SDK uses (see module doc)."""
    if isinstance(exc, OSError):
        return True
    for cls in type(exc).__mro__:
        library = cls.__module__.split(".", 1)[0]
        if library in _TRANSPORT_LIBRARIES and cls.__name__ in _TRANSPORT_CLASSES:
            return True
    return False


def error_details(exc: Any) -> list[dict[str, Any]]:
    """The `error.details[]` entries of an APIError's JSON body."""
    body = getattr(exc, "details", None)
    if not isinstance(body, dict):
        return []
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details or [] if isinstance(d, dict)]


def per_day_quota(exc: Any) -> bool:
    """A QuotaFailure naming a daily quota: it resets tomorrow, not in seconds."""
    for detail in error_details(exc):
        if detail.get("@type") != QUOTA_FAILURE:
            continue
        for violation in detail.get("violations") or []:
            names = f"{violation.get('quotaId', '')} {violation.get('quotaMetric', '')}"
            if "PerDay" in names or "per_day" in names.lower():
                return True
    return False


def retry_delay(exc: Any) -> float | None:
    """Seconds the server asked us to wait: Retry-After, else RetryInfo.retryDelay."""
    from_header = _retry_after_header(exc)
    if from_header is not None:
        return from_header
    for detail in error_details(exc):
        if detail.get("@type") == RETRY_INFO:
            seconds = parse_duration(detail.get("retryDelay"))
            if seconds is not None:
                return seconds
    return None


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration as JSON (`"3s"`, `"2.46s"`) or as `{seconds, nanos}`."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        return float(m.group(1)) if m else None
    if isinstance(value, dict):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def _retry_after_header(exc: Any) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
