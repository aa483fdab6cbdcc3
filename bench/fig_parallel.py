"""Figure 6: 10 small local jobs, `vidpipe run -j 2` against `-j 1`.

Jobs: two scenes each, `clip_duration: 1`, `resolution: 360p`, offline `local` provider
(storyboard planner, Pillow keyframes, PyAV animatic clips: all CPU work in this process
and its threads). Each run gets a fresh project folder and database, so everything is
generated; the two settings alternate. On 2 cores, `-j 2` can at best halve the wall
time; the interpreter lock the job threads share (the ORM's Python, the frame loop)
and the start-up before the first job are what keep it from doing so.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import PY, Figure, Proc, clean_env, interleave, median, run, say, spread

JOBS = 10


def one_run(jobs: int) -> Proc:
    with tempfile.TemporaryDirectory(prefix="parallel-bench-") as tmp:
        root = Path(tmp)
        (root / "vidpipe.yaml").write_text("database: sqlite:///vidpipe.db\nartifacts_dir: tmp\n")
        (root / "jobs").mkdir()
        for k in range(JOBS):
            (root / "jobs" / f"kite-{k:02d}.yaml").write_text(
                f'prompt: "A red kite {k} climbs over a windy beach, then dives"\n'
                "scenes: 2\nclip_duration: 1\nresolution: 360p\n"
            )
        cmd = [PY, "-m", "vidpipe", "run", "-q", "-j", str(jobs), "--report", "report.json"]
        proc = run(cmd, cwd=root, env=clean_env())
        totals = json.loads((root / "report.json").read_text())["totals"]
        if totals["by_status"] != {"complete": JOBS}:
            raise RuntimeError(f"unexpected batch result: {totals}")
        return proc


def figures(quick: bool) -> list[Figure]:
    reps = 3 if quick else 5
    say(f"[6] {JOBS} small local jobs, -j 2 vs -j 1: {reps} rounds")
    r = interleave({"-j 2": lambda: one_run(2), "-j 1": lambda: one_run(1)}, reps)
    details = ["| setting | wall | CPU | peak RSS |", "|---|---|---|---|"]
    for name, procs in r.items():
        details.append(
            f"| `vidpipe run -j {name[-1]}` | {spread([p.wall for p in procs])} | "
            f"{spread([p.cpu for p in procs])} | {median([p.rss_mb for p in procs]):.0f} MB |"
        )
    ratio = median([p.wall for p in r["-j 2"]]) / median([p.wall for p in r["-j 1"]])
    note = (
        "Measured 2026-11-29 (2 cores shared with other sessions, load 1.5-2): `-j 1` uses "
        "1.1 cores, `-j 2` 1.4. The two jobs share one interpreter: py-spy --gil finds its "
        "lock held 53% of a `-j 1` run and 66% of a `-j 2` run, by SQLAlchemy (a third: ~110 "
        "store calls per job at 0.6-3 ms of Python each), start-up and compiling (a fifth, "
        "before any job starts) and the animatic's frame loop (a fifth). The same ten jobs "
        "as two processes of five reach 0.66-0.70 beside 0.80-0.86 for `-j 2`: what is left "
        "is jobs in one process, not SQLite's write lock (WAL, commits without fsync) nor "
        "x264 (1 or 4 threads: same wall). Rendering in a process pool moved 60% of the CPU "
        "out of the runner's process but gained little here (images round-trip to a worker, "
        "workers start per run) and was not kept."
    )
    title = f"{JOBS} small local jobs: `-j 2` / `-j 1`, wall"
    return [Figure("6", title, ratio, "×", 0.65, details, note if ratio > 0.65 else "")]
