"""Helpers shared by the benchmark figures: child processes, interleaving, results.

Every figure is a ratio of two contenders measured side by side in the same run: their
repetitions are interleaved (A B, B A, A B, ...) and the medians compared, so a machine
that slows down or speeds up mid-run affects both alike. Peak memory of a child process
is its ``ru_maxrss`` from ``os.wait4`` (KB on Linux).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = BENCH / ".cache"  # generated inputs, git-ignored
PY = sys.executable


def ffmpeg() -> str:
    """The ffmpeg binary of the `bench` extra (imageio-ffmpeg)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass
class Proc:
    """One finished child process."""

    wall: float  # seconds, from spawn to exit
    rss_mb: float  # peak resident memory (ru_maxrss)
    cpu: float  # user + system seconds
    rc: int
    out: str
    err: str


_spawner: subprocess.Popen[str] | None = None


def start_spawner() -> None:
    """Start bench/spawner.py now, while this process is small (see its docstring)."""
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen(
            [PY, "-S", str(BENCH / "spawner.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )


def run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: Path | None = None,
    check: bool = True,
) -> Proc:
    """Run a command to completion; wall time, peak memory and CPU from ``os.wait4``."""
    start_spawner()
    assert _spawner is not None and _spawner.stdin is not None and _spawner.stdout is not None
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        request = {
            "cmd": list(cmd),
            "env": dict(os.environ if env is None else env),
            "cwd": str(cwd) if cwd else None,
            "stdin": str(stdin) if stdin else None,
            "stdout": str(out),
            "stderr": str(err),
        }
        _spawner.stdin.write(json.dumps(request) + "\n")
        _spawner.stdin.flush()
        answer = json.loads(_spawner.stdout.readline())
        result = Proc(
            wall=answer["wall"],
            rss_mb=answer["maxrss_kb"] / 1024,
            cpu=answer["cpu"],
            rc=answer["rc"],
            out=out.read_text("utf-8", "replace"),
            err=err.read_text("utf-8", "replace"),
        )
    if check and result.rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.rc}:\n{result.err[-3000:]}")
    return result


def interleave(contenders: Mapping[str, Callable[[], Any]], reps: int) -> dict[str, list[Any]]:
    """Run each contender `reps` times, alternating the order every round (ABBA...)."""
    names = list(contenders)
    results: dict[str, list[Any]] = {name: [] for name in names}
    for i in range(reps):
        for name in names if i % 2 == 0 else reversed(names):
            results[name].append(contenders[name]())
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], unit: str = "s", digits: int = 2) -> str:
    """'median (min–max, n=k)' for a table cell."""
    return (
        f"{median(values):.{digits}f} {unit} "
        f"({min(values):.{digits}f}–{max(values):.{digits}f}, n={len(values)})"
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any VIDPIPE_/GOOGLE_ setting of the caller, plus `extra`.

    PYTHONDONTWRITEBYTECODE goes too: an installed vidpipe has its .pyc files (pip writes
    them), and without them every run would compile every module it imports again
    (~80 ms of a ~0.3 s `vidpipe stitch`), which no user pays.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIDPIPE_", "GOOGLE_", "GEMINI_"))
        and not k.lower().endswith("_proxy")
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


@dataclass
class Figure:
    """One line of BENCHMARKS.md: a measured value against its goal."""

    key: str  # "1a"
    title: str
    value: float
    unit: str  # "×", "s", "MB", "fps"
    goal: float | None  # upper bound; None = reported without a goal
    details: list[str] = field(default_factory=list)  # markdown bullet lines
    note: str = ""  # cause of a miss and what is left, or how to read the figure

    @property
    def status(self) -> str:
        if self.goal is None:
            return "—"
        return "PASS" if self.value <= self.goal else "MISS"

    def shown(self, value: float | None = None) -> str:
        v = self.value if value is None else value
        return f"{v:.2f}{self.unit}" if self.unit == "×" else f"{v:.2f} {self.unit}"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
