"""Progress of a batch: tqdm bars on a terminal, plain periodic lines elsewhere (CI logs).

Both show jobs done, the spend so far (against ``--max-cost`` when there is one) and,
once a provider has answered, an estimate of the time left (:class:`Meter`).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

STEP_LABELS = {
    "storyboard": "storyboard",
    "keyframes": "keyframes",
    "clips": "clips",
    "stitch": "stitch",
}


class Meter:
    """Spend and time left of a batch, from the calls its jobs plan and the ones seen so far.

    The time left is the planned calls not yet seen, each at the mean latency this batch
    has measured for its kind (storyboard, image, video), divided by what runs at once:
    the job workers, and for clips every scene of a job (a job's clips are polled
    together). Cache hits count as seen calls that took no time. A rough figure, and it
    says nothing until a provider has answered.
    """

    def __init__(self, max_cost: float | None = None):
        self.max_cost = max_cost
        self.lock = threading.Lock()
        self.spent = 0.0
        self.planned: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.latency: dict[str, tuple[float, int]] = {}  # capability -> (sum, count)
        self.workers = 1
        self.scenes_per_job = 1.0

    def plan(self, calls: Mapping[str, int], *, jobs: int, workers: int) -> None:
        """The calls a batch of `jobs` would make if nothing came from the cache."""
        with self.lock:
            self.planned = dict(calls)
            self.workers = max(1, min(workers, jobs))
            self.scenes_per_job = max(1.0, calls.get("video", 0) / max(jobs, 1))

    def call(self, capability: str, *, cost: float, latency: float | None, cached: bool) -> None:
        with self.lock:
            self.spent += cost
            self.seen[capability] = self.seen.get(capability, 0) + 1
            if not cached and latency is not None:
                total, count = self.latency.get(capability, (0.0, 0))
                self.latency[capability] = (total + latency, count + 1)

    def eta(self) -> float | None:
        """Seconds left, or None before the first answer of a provider."""
        with self.lock:
            if not self.latency:
                return None
            measured = [t / n for t, n in self.latency.values()]
            fallback = sum(measured) / len(measured)
            seconds = 0.0
            for capability, planned in self.planned.items():
                left = max(0, planned - self.seen.get(capability, 0))
                if not left:
                    continue
                total, count = self.latency.get(capability, (fallback, 1))
                parallel = self.workers * (self.scenes_per_job if capability == "video" else 1)
                seconds += left * (total / count) / parallel
            return seconds

    def summary(self, *, finished: bool = False) -> str:
        """``$0.42 of $5.00 · ~3m10s left`` (the parts known so far; no time once finished)."""
        with self.lock:
            spent, cap = self.spent, self.max_cost
        parts = [f"${spent:.2f}" + (f" of ${cap:.2f}" if cap is not None else "")]
        eta = None if finished else self.eta()
        if eta is not None:
            parts.append(f"~{_duration(eta)} left")
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class LineProgress:
    """One line per job step change, at most every `interval` seconds per job otherwise."""

    def __init__(
        self, total: int, stream: TextIO | None = None, interval: float = 5.0, quiet: bool = False
    ):
        self.total = total
        self.stream = stream or sys.stderr
        self.interval = interval
        self.quiet = quiet
        self.lock = threading.Lock()
        self.last: dict[str, tuple[str, float]] = {}
        self.done = 0
        self.meter = Meter()

    def call(self, capability: str, *, cost: float, latency: float | None, cached: bool) -> None:
        self.meter.call(capability, cost=cost, latency=latency, cached=cached)

    def _print(self, text: str) -> None:
        if not self.quiet:
            with self.lock:
                print(text, file=self.stream, flush=True)

    def add_jobs(self, count: int) -> None:
        """More jobs joined the batch (a worker claimed them)."""
        with self.lock:
            self.total += count

    def started(self, job: str) -> None:
        self._print(f"[{self.done}/{self.total}] {job}: started")

    def step(self, job: str, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        previous = self.last.get(job)
        if previous and previous[0] == step and now - previous[1] < self.interval and done < total:
            return
        self.last[job] = (step, now)
        self._print(
            f"[{self.done}/{self.total}] {job}: {STEP_LABELS.get(step, step)} {done}/{total}"
        )

    def finished(self, job: str, status: str, detail: str = "") -> None:
        with self.lock:
            self.done += 1
        self._print(
            f"[{self.done}/{self.total}] {job}: {status}{' - ' + detail if detail else ''}"
            f"  ({self.meter.summary(finished=self.done >= self.total)})"
        )

    def close(self) -> None:
        pass


class BarProgress:
    """A batch bar plus one bar per job in flight, showing its current step."""

    def __init__(self, total: int, stream: TextIO | None = None):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        # The bar's own rate-based remaining time is left out: jobs differ too much for
        # jobs per second to say anything; the meter's estimate from latencies takes its place.
        self.batch = tqdm(
            total=total,
            desc="batch",
            unit="job",
            position=0,
            file=self.stream,
            leave=True,
            bar_format="{desc}: {n_fmt}/{total_fmt} jobs |{bar:30}| {elapsed}{postfix}",
        )
        self.bars: dict[str, Any] = {}
        self.free: list[int] = []
        self.next_position = 1
        self.meter = Meter()

    def call(self, capability: str, *, cost: float, latency: float | None, cached: bool) -> None:
        self.meter.call(capability, cost=cost, latency=latency, cached=cached)
        with self.lock:
            self.batch.set_postfix_str(self.meter.summary())

    def add_jobs(self, count: int) -> None:
        """More jobs joined the batch (a worker claimed them)."""
        with self.lock:
            self.batch.total = (self.batch.total or 0) + count
            self.batch.refresh()

    def started(self, job: str) -> None:
        with self.lock:
            position = self.free.pop(0) if self.free else self.next_position
            if position == self.next_position:
                self.next_position += 1
            self.bars[job] = self._tqdm(
                total=1,
                desc=f"{job}: starting",
                position=position,
                file=self.stream,
                leave=False,
                bar_format="{desc:<40.40} |{bar:30}| {n_fmt}/{total_fmt}",
            )

    def step(self, job: str, step: str, done: int, total: int) -> None:
        with self.lock:
            bar = self.bars.get(job)
            if bar is None:
                return
            bar.total = max(total, 1)
            bar.n = done
            bar.set_description_str(f"{job}: {STEP_LABELS.get(step, step)}", refresh=False)
            bar.refresh()

    def finished(self, job: str, status: str, detail: str = "") -> None:
        with self.lock:
            bar = self.bars.pop(job, None)
            if bar is not None:
                self.free.append(bar.pos if isinstance(bar.pos, int) else abs(bar.pos))
                bar.close()
            finished = self.batch.n + 1 >= (self.batch.total or 0)
            self.batch.set_postfix_str(self.meter.summary(finished=finished), refresh=False)
            self.batch.update(1)
            self.batch.write(f"{job}: {status}{' - ' + detail if detail else ''}", file=self.stream)

    def close(self) -> None:
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.batch.close()


def make_progress(
    total: int,
    *,
    quiet: bool = False,
    stream: TextIO | None = None,
    max_cost: float | None = None,
) -> LineProgress | BarProgress:
    """Bars when stderr is a terminal, lines otherwise."""
    stream = stream or sys.stderr
    progress: LineProgress | BarProgress
    if not quiet and stream.isatty():
        progress = BarProgress(total, stream)
    else:
        progress = LineProgress(total, stream, quiet=quiet)
    progress.meter.max_cost = max_cost
    return progress
