"""Progress of a batch: tqdm bars on a terminal, plain periodic lines elsewhere (CI logs)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

STEP_LABELS = {
    "storyboard": "storyboard",
    "keyframes": "keyframes",
    "clips": "clips",
    "stitch": "stitch",
}


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

    def _print(self, text: str) -> None:
        if not self.quiet:
            with self.lock:
                print(text, file=self.stream, flush=True)

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
        self._print(f"[{self.done}/{self.total}] {job}: {status}{' - ' + detail if detail else ''}")

    def close(self) -> None:
        pass


class BarProgress:
    """A batch bar plus one bar per job in flight, showing its current step."""

    def __init__(self, total: int, stream: TextIO | None = None):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.batch = tqdm(
            total=total, desc="batch", unit="job", position=0, file=self.stream, leave=True
        )
        self.bars: dict[str, Any] = {}
        self.free: list[int] = []
        self.next_position = 1

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
            self.batch.update(1)
            self.batch.write(f"{job}: {status}{' - ' + detail if detail else ''}", file=self.stream)

    def close(self) -> None:
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.batch.close()


def make_progress(
    total: int, *, quiet: bool = False, stream: TextIO | None = None
) -> LineProgress | BarProgress:
    """Bars when stderr is a terminal, lines otherwise."""
    stream = stream or sys.stderr
    if not quiet and stream.isatty():
        return BarProgress(total, stream)
    return LineProgress(total, stream, quiet=quiet)
