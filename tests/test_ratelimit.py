"""Unit tests of vidpipe.ratelimit: the per-minute limiter and the retry loop.

A fake clock stands in for time: its `wait` (the limiter's and the retry loop's only way
to sleep, through the `stop` event they accept) advances the clock instead of sleeping,
so minutes of throttling run in microseconds and every wait is measured exactly.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from vidpipe.errors import Interrupted, ProviderError, TransientProviderError
from vidpipe.providers.ratelimit import MAX_RETRY_AFTER, RateLimiter, backoff, with_retries


class FakeClock:
    """A monotonic clock and a stop event in one: `wait(s)` advances time by `s`."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.waits: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def wait(self, seconds: float | None = None) -> bool:
        with self.lock:
            self.waits.append(seconds or 0.0)
            self.now += seconds or 0.0
        return False  # never stopped

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def max_in_window(times: list[float], window: float) -> int:
    """The most timestamps that fall in any half-open window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


# --------------------------------------------------------------------------------------
# RateLimiter


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_never_more_than_the_limit_in_any_minute(limit: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(limit, clock=clock)
    rng = random.Random(limit)
    granted = []
    for _ in range(10 * limit + 7):
        clock.advance(rng.choice([0.0, 0.0, 0.5, 3.0, 17.0]))
        limiter.acquire(clock)  # type: ignore[arg-type]
        granted.append(clock())
    assert max_in_window(granted, 60.0) <= limit
    # ...and it is a sliding window, not a fixed one: as soon as the oldest request of a
    # full window is 60 s old, the next one goes.
    assert max_in_window(granted, 60.0) == limit


def test_burst_then_waits_until_the_oldest_request_leaves_the_window() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(3, clock=clock)
    for _ in range(3):
        assert limiter.acquire(clock) == 0.0  # type: ignore[arg-type]
    clock.advance(10.0)
    waited = limiter.acquire(clock)  # type: ignore[arg-type]
    assert waited == pytest.approx(50.0, abs=0.01)
    assert clock() == pytest.approx(60.0, abs=0.01)


def test_fractional_limits_are_never_exceeded() -> None:
    # 0.5 a minute is one request every two minutes, not one a minute.
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock=clock)
    granted = []
    for _ in range(5):
        limiter.acquire(clock)  # type: ignore[arg-type]
        granted.append(clock())
    assert max_in_window(granted, 120.0) == 1
    # 2.5 a minute rounds down to 2: the quota is a ceiling.
    clock = FakeClock()
    limiter = RateLimiter(2.5, clock=clock)
    granted = []
    for _ in range(12):
        limiter.acquire(clock)  # type: ignore[arg-type]
        granted.append(clock())
    assert max_in_window(granted, 60.0) == 2


def test_stop_event_interrupts_a_wait() -> None:
    limiter = RateLimiter(1)
    limiter.acquire()
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        limiter.acquire(stop)
    assert time.monotonic() - started < 1.0


def test_limiter_is_thread_safe_with_a_real_clock() -> None:
    limiter = RateLimiter(4, window=0.3)
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            limiter.acquire()
            with lock:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(granted) == 12
    # 12 requests at 4 per 0.3 s: at least two full windows of waiting.
    assert max(granted) - min(granted) >= 0.6 - 0.01
    assert max_in_window(granted, 0.3 - 0.005) <= 4


# --------------------------------------------------------------------------------------
# with_retries


def flaky(*errors: Exception, result: Any = "ok") -> Any:
    remaining = list(errors)
    calls: list[int] = []

    def call() -> Any:
        calls.append(1)
        if remaining:
            raise remaining.pop(0)
        return result

    call.calls = calls  # type: ignore[attr-defined]
    return call


def test_retry_after_is_honoured_exactly() -> None:
    clock = FakeClock()
    call = flaky(
        TransientProviderError("429", retry_after=7.0, status=429),
        TransientProviderError("429", retry_after=0.0, status=429),
    )
    assert with_retries(call, attempts=5, base_delay=1.0, what="x", stop=clock) == "ok"  # type: ignore[arg-type]
    assert clock.waits == [7.0, 0.0]


def test_retry_after_is_capped() -> None:
    clock = FakeClock()
    call = flaky(TransientProviderError("429", retry_after=10_000.0, status=429))
    with_retries(call, attempts=1, base_delay=1.0, what="x", stop=clock)  # type: ignore[arg-type]
    assert clock.waits == [MAX_RETRY_AFTER]


def test_backoff_is_exponential_with_full_jitter() -> None:
    random.seed(1234)
    clock = FakeClock()
    errors = [TransientProviderError("503", status=503) for _ in range(6)]
    assert with_retries(flaky(*errors), attempts=6, base_delay=0.5, what="x", stop=clock) == "ok"  # type: ignore[arg-type]
    assert len(clock.waits) == 6
    for attempt, waited in enumerate(clock.waits):
        assert 0 <= waited <= 0.5 * 2**attempt
    # Jitter: many draws of the same attempt are spread out, never above the cap.
    draws = [backoff(3, 1.0, cap=5.0) for _ in range(500)]
    assert max(draws) <= 5.0 and min(draws) >= 0
    assert max(draws) - min(draws) > 3.0


def test_gives_up_after_attempts_plus_one() -> None:
    clock = FakeClock()
    call = flaky(*[TransientProviderError("503 busy", status=503) for _ in range(10)])
    with pytest.raises(TransientProviderError) as info:
        with_retries(call, attempts=2, base_delay=0.01, what="poll (veo)", stop=clock)  # type: ignore[arg-type]
    assert len(call.calls) == 3
    assert "poll (veo) still failing after 3 attempts: 503 busy" in str(info.value)
    assert info.value.status == 503


def test_permanent_errors_are_not_retried() -> None:
    call = flaky(ProviderError("400 refused"))
    with pytest.raises(ProviderError, match="400 refused"):
        with_retries(call, attempts=5, base_delay=0.01, what="x")
    assert len(call.calls) == 1


def test_each_attempt_takes_a_slot_of_the_limiter() -> None:
    clock = FakeClock(start=0.0)
    limiter = RateLimiter(2, clock=clock)
    call = flaky(*[TransientProviderError("429", retry_after=0.0, status=429) for _ in range(2)])
    with_retries(call, attempts=5, base_delay=0.01, what="x", limiter=limiter, stop=clock)  # type: ignore[arg-type]
    # Three attempts against a limit of two per minute: the third waited for a slot.
    assert clock() == pytest.approx(60.0, abs=0.01)


def test_stop_event_interrupts_a_backoff() -> None:
    stop = threading.Event()
    stop.set()
    call = flaky(TransientProviderError("429", retry_after=60.0, status=429))
    started = time.monotonic()
    with pytest.raises(Interrupted):
        with_retries(call, attempts=3, base_delay=1.0, what="x", stop=stop)
    assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------------------
# Retry-After parsing in the google provider


class _Response:
    def __init__(self, headers: dict[str, str]):
        self.headers = headers


class _Error(Exception):
    def __init__(self, headers: dict[str, str]):
        self.response = _Response(headers)


def test_retry_after_header_forms() -> None:
    from vidpipe.providers.google.retry import retry_delay as _retry_after

    assert _retry_after(_Error({"retry-after": "3"})) == 3.0
    assert _retry_after(_Error({"retry-after": "0.5"})) == 0.5
    assert _retry_after(_Error({})) is None
    assert _retry_after(_Error({"retry-after": "soon"})) is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = _retry_after(_Error({"retry-after": format_datetime(later, usegmt=True)}))
    assert seconds is not None and 25 <= seconds <= 31
    past = datetime.now(UTC) - timedelta(seconds=30)
    assert _retry_after(_Error({"retry-after": format_datetime(past, usegmt=True)})) == 0.0


def test_retry_delay_forms_in_an_error_body() -> None:
    from vidpipe.providers.google.retry import retry_delay

    def body(delay: object) -> _Error:
        error = _Error({})
        error.details = {  # type: ignore[attr-defined]
            "error": {
                "code": 429,
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.Help"},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
                ],
            }
        }
        return error

    assert retry_delay(body("3s")) == 3.0
    assert retry_delay(body("2.463586755s")) == 2.463586755
    assert retry_delay(body({"seconds": 1, "nanos": 500_000_000})) == 1.5
    assert retry_delay(body("soon")) is None
    header_wins = body("30s")
    header_wins.response.headers["retry-after"] = "2"
    assert retry_delay(header_wins) == 2.0
