"""Figure 4: a 100-job local batch: first run (time, peak memory), then unchanged re-runs.

Jobs: one scene each, ``clip_duration: 1``, ``resolution: 360p``, offline ``local``
provider, default concurrency (``concurrency.jobs`` = 4). The project folder and its
database are fresh for the first run; the re-runs find every job up to date.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import PY, Figure, clean_env, median, run, say, spread

JOBS = 100

# What changed this figure, found with py-spy on a re-run (2026-11-26).
RERUN_PROFILE = """\
History: per-job Jinja environments made re-runs take 2.6-3.1 s; one environment per search
path brought it to about 1.5 s (2026-11-26). Since 2026-11-29 an unchanged batch is
recognised from vidpipe.memo (every file its compile read, unchanged) and answered over
sqlite3: no compile, no SQLAlchemy, one read per job, outputs checked by digests
remembered by file identity; CPU time fell from 1.6 s to about 0.6 s. Wall time above the
CPU time is the machine's load (the runner is single-threaded here)."""


def write_project(root: Path) -> None:
    (root / "vidpipe.yaml").write_text("database: sqlite:///vidpipe.db\nartifacts_dir: tmp\n")
    (root / "jobs").mkdir()
    for k in range(JOBS):
        (root / "jobs" / f"boat-{k:03d}.yaml").write_text(
            f'prompt: "Paper boat {k} sails down a rainy street and reaches the sea"\n'
            "scenes: 1\nclip_duration: 1\nresolution: 360p\n"
        )


def report(root: Path, *, fresh: bool) -> None:
    """Every job complete, with the calls we expect: all new, or none at all."""
    totals = json.loads((root / "report.json").read_text())["totals"]
    calls = totals["provider_calls"]
    if totals["by_status"] != {"complete": JOBS} or (calls == 0) == fresh:
        raise RuntimeError(f"unexpected batch result: {totals}")


def figures(quick: bool) -> list[Figure]:
    firsts, reruns = [], []
    cmd = [PY, "-m", "vidpipe", "run", "-q", "--report", "report.json"]
    for round_ in range(1 if quick else 3):
        with tempfile.TemporaryDirectory(prefix="rerun-bench-") as tmp:
            root = Path(tmp)
            write_project(root)
            say(f"[4] {JOBS}-job local batch: first run ({round_ + 1})")
            firsts.append(run(cmd, cwd=root, env=clean_env()))
            report(root, fresh=True)
            from vidpipe.media import verify

            films = sorted((root / "tmp").glob("*/*/output/final.mp4"))
            if len(films) != JOBS or verify(films[0]).video_frames != 24:
                raise RuntimeError(f"{len(films)} films, or the first is not 24 frames")
            say(f"[4] {JOBS}-job local batch: unchanged re-runs")
            for _ in range(3 if quick else 5):
                reruns.append(run(cmd, cwd=root, env=clean_env()))
                report(root, fresh=False)
    first_wall = [p.wall for p in firsts]
    details = [
        "| run | wall | peak RSS | CPU |",
        "|---|---|---|---|",
        f"| first run (everything generated) | {spread(first_wall)} | "
        f"{median([p.rss_mb for p in firsts]):.0f} MB | {median([p.cpu for p in firsts]):.1f} s |",
        f"| unchanged re-run (nothing to do) | {spread([p.wall for p in reruns])} | "
        f"{median([p.rss_mb for p in reruns]):.0f} MB | {median([p.cpu for p in reruns]):.2f} s |",
    ]
    rerun = Figure(
        "4a",
        f"unchanged re-run of a {JOBS}-job local batch, wall",
        median([p.wall for p in reruns]),
        "s",
        1.0,
        details,
    )
    rerun.note = RERUN_PROFILE if rerun.value > 1.0 else ""
    return [
        rerun,
        Figure(
            "4b",
            f"first run of the {JOBS}-job local batch, peak memory",
            median([p.rss_mb for p in firsts]),
            "MB",
            400,
            [f"First run wall: {spread(first_wall)}."],
        ),
    ]
