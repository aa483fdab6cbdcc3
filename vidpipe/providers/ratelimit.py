"""Request quotas and retries for remote providers.

:class:`RateLimiter` keeps a sliding one-minute window per capability, shared by every
job of a run (one provider instance serves the whole batch), so a batch of fifty jobs
never sends more than the quota in any minute. :func:`with_retries` retries transient
failures with exponential backoff and full jitter, and waits exactly as long as a
server's `Retry-After` asks when it gives one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from vidpipe.errors import Interrupted, TransientProviderError

log = logging.getLogger("vidpipe.providers")
T = TypeVar("T")

#: Longest single wait we accept from a Retry-After header.
MAX_RETRY_AFTER = 300.0


class RateLimiter:
    """At most `per_minute` acquisitions in any 60-second window (thread-safe)."""

    def __init__(
        self,
        per_minute: float,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if 0 < per_minute < 1:
            # Less than one a minute (0.5 = one every two minutes): one per longer window.
            self.limit = 1
            self.window = window / per_minute
        else:
            self.limit = max(1, int(per_minute))  # 2.5/min rounds down: never over the quota
            self.window = window
        self.clock = clock
        self.times: deque[float] = deque()
        self.lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Block until a request may be sent; return the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = self.clock()
                while self.times and now - self.times[0] >= self.window:
                    self.times.popleft()
                if len(self.times) < self.limit:
                    self.times.append(now)
                    return waited
                delay = self.window - (now - self.times[0]) + 0.001
            if stop is not None:
                if stop.wait(delay):
                    raise Interrupted(2)
            else:
                time.sleep(delay)
            waited += delay


def backoff(attempt: int, base: float, cap: float = 60.0) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int,
    base_delay: float,
    what: str,
    limiter: RateLimiter | None = None,
    stop: threading.Event | None = None,
) -> T:
    """Run `call`, retrying :class:`TransientProviderError` up to `attempts` more times."""
    last: TransientProviderError | None = None
    for attempt in range(attempts + 1):
        if limiter is not None:
            limiter.acquire(stop)
        try:
            return call()
        except TransientProviderError as exc:
            last = exc
            if attempt == attempts:
                break
            if exc.retry_after is not None:
                delay = min(exc.retry_after, MAX_RETRY_AFTER)
            else:
                delay = backoff(attempt, base_delay)
            log.info(
                "%s: %s; retrying in %.2f s (attempt %d of %d)",
                what,
                exc,
                delay,
                attempt + 2,
                attempts + 1,
            )
            if stop is not None:
                if stop.wait(delay):
                    raise Interrupted(2) from exc
            else:
                time.sleep(delay)
    assert last is not None
    raise TransientProviderError(
        f"{what} still failing after {attempts + 1} attempts: {last}", status=last.status
    ) from last
