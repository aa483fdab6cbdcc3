"""Figure 6: 10 small local jobs, `vidpipe run -j 2` against `-j 1`.

Jobs: two scenes each, `clip_duration: 1`, `resolution: 360p`, offline `local` provider
(storyboard planner, Pillow keyframes, PyAV animatic clips: all CPU work on this
machine). `-j 1` runs them one after another in a thread; `-j 2` in two forked job
processes (vidpipe.batch.forked), each kept to a core of its own. Each run gets a fresh project folder and database, so
everything is generated; the two settings alternate. On 2 cores, `-j 2` can at best
halve the wall time; the start-up and compile before the first job, the batch's close
after the last, and `-j 1` already using more than one core (x264's threads) keep it
from doing so.
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
        "Measured 2026-11-29 (2 cores): with the jobs in threads of one interpreter, "
        "`-j 2` was 0.79x (py-spy --gil: the lock held 66% of the run); in forked job "
        "processes 0.66x; with each process kept to a core of its own, 0.63x in paired "
        "runs. `-j 2` keeps both cores ~95% busy from its first job to its last, so it "
        "is bound by CPU: what is left is the start-up before the first job (~0.45 s on "
        "one core), each process's first-job warm-up (imports, first statements), and "
        "`-j 1`'s own second core (x264's threads and the frame-drawing thread give one "
        "job ~1.2 cores)."
    )
    title = f"{JOBS} small local jobs: `-j 2` / `-j 1`, wall"
    return [Figure("6", title, ratio, "×", 0.65, details, note if ratio > 0.65 else "")]
