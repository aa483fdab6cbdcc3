"""Figure 7: one queued batch of 40 google jobs on 1, 2 and 4 worker processes.

`vidpipe submit jobs/` queues the batch; then 1, 2 or 4 `vidpipe worker --drain -j 2`
processes start at once and share it, as separate machines would: one PostgreSQL
database (a fresh one per run, on the machine's server) and one artifacts folder. The
provider is the Vertex emulator of figure 1 with its slow settings (0.3 s added to every
request, a Veo operation done on the 5th poll, vidpipe polling every 0.3 s) answering
every operation with one pre-rendered clip (Veo renders on Google's servers, not on the
runner). Jobs: 2 scenes, 16:9, 4 s clips, 720p, each with its own idea, so nothing comes
from any cache. Wall time runs from the first worker's start to the last one's exit;
CPU is the workers' sum. Every run is checked: every job complete, every film decoded
to the right length, and each generation made once (provider calls = distinct keys).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import PY, Figure, interleave, median, run, say, spread
from fig_batch import LATENCY, POLLS, Emulator, emulator_env

JOBS = 40
SCENES = 2
WORKERS = (1, 2, 4)
PG = "postgresql+psycopg://root@127.0.0.1:5432/"


@dataclass
class Sample:
    wall: float
    cpu: float  # all workers' CPU seconds
    provider_calls: int
    items_per_worker: list[int]


@contextmanager
def fresh_database() -> Iterator[str]:
    """A throwaway PostgreSQL database on the local server."""
    import psycopg

    name = f"vidpipe_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG + name
    finally:
        with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_run(workers: int) -> Sample:
    tag = uuid.uuid4().hex[:6]
    with (
        tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp,
        fresh_database() as database,
        Emulator(cheap=True) as emu,
    ):
        root = Path(tmp)
        (root / "vidpipe.yaml").write_text(f"database: {database}\nartifacts_dir: tmp\n")
        (root / "jobs").mkdir()
        for k in range(JOBS):
            (root / "jobs" / f"boat-{k:02d}.yaml").write_text(
                f'prompt: "Paper boat {k} ({tag}) sails down a rainy street to the sea"\n'
                f'provider: google\naspect_ratio: "16:9"\nscenes: {SCENES}\n'
                "clip_duration: 4\nresolution: 720p\n"
            )
        env = emulator_env(emu.url)
        submitted = run([PY, "-m", "vidpipe", "submit", "-q", "jobs"], env=env, cwd=root)
        batch_id = submitted.out.strip()
        cmd = [PY, "-m", "vidpipe", "worker", "--drain", "-q", "-j", "2", "--batch", batch_id]
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*cmd, "--report", f"worker-{i}.json"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(workers)
        ]
        cpu = 0.0
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
        wall = time.perf_counter() - start
        for proc in procs:
            err = proc.stderr.read().decode() if proc.stderr else ""
            if proc.returncode != 0:
                raise RuntimeError(f"a worker exited {proc.returncode}:\n{err[-3000:]}")
        return check(root, database, batch_id, wall, cpu)


def check(root: Path, database: str, batch_id: str, wall: float, cpu: float) -> Sample:
    """Every job complete, every film whole, each generation made once."""
    import psycopg

    from vidpipe.media import probe

    # The last worker to finish wrote the whole batch's report, wherever each job ran.
    reports = [json.loads(p.read_text()) for p in sorted(root.glob("worker-*.json"))]
    report = max(reports, key=lambda r: len(r["jobs"]))
    jobs = report["jobs"]
    if len(jobs) != JOBS or any(j["status"] != "complete" for j in jobs):
        raise RuntimeError(f"batch incomplete: {[j['status'] for j in jobs]}")
    for j in jobs:
        info = probe(root / j["output"])  # a broken film must not win: 2 × 4 s at 24 fps
        if abs(info.duration - SCENES * 4) > 0.05 or info.video_frames != SCENES * 4 * 24:
            raise RuntimeError(f"{j['output']}: {info.duration:.3f} s, {info.video_frames} frames")
    calls = report["totals"]["provider_calls"]
    expected = JOBS * (1 + (SCENES + 1) + SCENES)  # storyboard, chained keyframes, clips
    if calls != expected:
        raise RuntimeError(f"{calls} provider calls, expected {expected} (one per generation)")
    with psycopg.connect(database.replace("+psycopg", "")) as conn:
        counts = conn.execute(
            "SELECT count(*) FROM batch_items WHERE batch_id = %s GROUP BY worker", (batch_id,)
        ).fetchall()
    return Sample(wall, cpu, calls, sorted((c for (c,) in counts), reverse=True))


def figures(quick: bool) -> list[Figure]:
    reps = 1 if quick else 3
    say(f"[7] {JOBS} queued google jobs on 1, 2 and 4 workers (each -j 2): {reps} round(s)")
    r = interleave({f"{n}": (lambda n=n: one_run(n)) for n in WORKERS}, reps)
    details = [
        "| workers (each `-j 2`) | wall | workers' CPU | provider calls | jobs per worker |",
        "|---|---|---|---|---|",
    ]
    for n in WORKERS:
        samples = r[str(n)]
        details.append(
            f"| {n} | {spread([s.wall for s in samples])} | "
            f"{median([s.cpu for s in samples]):.1f} s | "
            f"{samples[0].provider_calls} | {', '.join(map(str, samples[0].items_per_worker))} |"
        )
    one = median([s.wall for s in r["1"]])
    two = median([s.wall for s in r["2"]])
    four = median([s.wall for s in r["4"]])
    note = (
        f"2 workers took {two / one:.2f}× the wall time of 1. "
        f"Emulator: {LATENCY} s per request, done on poll {POLLS + 1}."
    )
    return [
        Figure(
            "7",
            f"{JOBS} queued jobs: 4 workers / 1 worker (each `-j 2`), wall",
            four / one,
            "×",
            0.35,
            details,
            note,
        )
    ]
