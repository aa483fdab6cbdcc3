"""Figure 1: batch parallelism of google jobs against the Vertex emulator.

Each run gets a fresh emulator process (its clip cache empty), a fresh project folder and
database (vidpipe's cache empty). The emulator adds 0.3 s to every request and finishes a
Veo operation on the 5th poll (4 not-done answers); vidpipe and the seed runner both poll
every 0.3 s. Jobs: 3 scenes, 16:9, 4 s clips, 720p, each with its own idea.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from common import BENCH, PY, Figure, clean_env, ffmpeg, interleave, median, run, say, spread

LATENCY = 0.3
POLLS = 4
POLL_INTERVAL = 0.3
SCENES = 3
JOBS = 12
FRAMES = SCENES * 4 * 24  # the emulator's clips are 24 fps


@dataclass
class Sample:
    wall: float  # the runner's process, spawn to exit
    cpu: float  # the runner's CPU seconds
    emulator_cpu: float  # the emulator's CPU seconds over the same run
    rss_mb: float


class Emulator:
    """bench/emulator.py in a child process; its CPU time is read when it exits."""

    def __init__(self, cheap: bool):
        self.cheap = cheap

    def __enter__(self) -> Emulator:
        cmd = [PY, str(BENCH / "emulator.py"), "--latency", str(LATENCY), "--polls", str(POLLS)]
        cmd += ["--cheap-videos"] if self.cheap else []
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env()
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator did not start (printed {self.url!r})")
        self.cpu = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = 0
        self.cpu = usage.ru_utime + usage.ru_stime


def emulator_env(url: str) -> dict[str, str]:
    """vidpipe's environment against the emulator at `url`: fake credentials, its poll
    interval, rate limits out of the way."""
    return clean_env(
        GOOGLE_API_KEY="bench-fake-key",
        GOOGLE_CLOUD_PROJECT="bench-project",
        GOOGLE_CLOUD_LOCATION="us-central1",
        VIDPIPE_GOOGLE__BASE_URL=url,
        VIDPIPE_GOOGLE__POLL_INTERVAL=str(POLL_INTERVAL),
        VIDPIPE_RATE_LIMITS__TEXT="100000",
        VIDPIPE_RATE_LIMITS__IMAGE="100000",
        VIDPIPE_RATE_LIMITS__VIDEO="100000",
    )


def ideas(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]  # unique per run: nothing can come from any cache
    return [
        f"Paper boat {k} ({tag}) sails down a rainy street and reaches the sea" for k in range(n)
    ]


def check_film(path: Path) -> None:
    """A broken fast path must not win: every film is 3 × 4 s, 288 frames."""
    from vidpipe.media import probe

    info = probe(path)
    if abs(info.duration - SCENES * 4) > 0.05 or info.video_frames != FRAMES:
        raise RuntimeError(f"{path}: {info.duration:.3f} s, {info.video_frames} frames")


def vidpipe_batch(n: int, cheap: bool) -> Sample:
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-") as tmp, Emulator(cheap) as emu:
        root = Path(tmp)
        (root / "vidpipe.yaml").write_text("database: sqlite:///vidpipe.db\nartifacts_dir: tmp\n")
        (root / "jobs").mkdir()
        for k, idea in enumerate(ideas(n)):
            (root / "jobs" / f"boat-{k:02d}.yaml").write_text(
                f'prompt: "{idea}"\nprovider: google\naspect_ratio: "16:9"\n'
                f"scenes: {SCENES}\nclip_duration: 4\nresolution: 720p\n"
            )
        env = emulator_env(emu.url)
        cmd = [PY, "-m", "vidpipe", "run", "-q", "-j", str(n), "--report", "report.json"]
        proc = run(cmd, env=env, cwd=root)
        jobs = json.loads((root / "report.json").read_text())["jobs"]
        if len(jobs) != n or any(j["status"] != "complete" for j in jobs):
            raise RuntimeError(f"vidpipe batch incomplete: {[j['status'] for j in jobs]}")
        for j in jobs:
            check_film(root / j["output"])
    return Sample(proc.wall, proc.cpu, emu.cpu, proc.rss_mb)


def seed_batch(n: int, cheap: bool) -> Sample:
    with tempfile.TemporaryDirectory(prefix="seed-bench-") as tmp, Emulator(cheap) as emu:
        cmd = [PY, str(BENCH / "seed_runner.py"), "--url", emu.url, "--out", tmp]
        cmd += ["--ideas", json.dumps(ideas(n)), "--poll", str(POLL_INTERVAL), "--ffmpeg", ffmpeg()]
        proc = run(cmd, env=clean_env(GOOGLE_API_KEY="bench-fake-key"))
        lines = [line.rsplit(" ", 1) for line in proc.out.splitlines()]
        films, seconds = [Path(f) for f, _ in lines], [float(t) for _, t in lines]
        if len(films) != n:
            raise RuntimeError(f"seed runner made {len(films)} films of {n}")
        for film in films:
            check_film(film)
    if n < JOBS:  # quick mode: a sequential runner's time is start-up + the sum of its jobs'
        k = JOBS / n
        wall = proc.wall + (k - 1) * sum(seconds)
        return Sample(wall, proc.cpu * k, emu.cpu * k, proc.rss_mb)
    return Sample(proc.wall, proc.cpu, emu.cpu, proc.rss_mb)


def figures(quick: bool) -> list[Figure]:
    rendered = ratio_run(cheap=False, reps=3 if quick else 5)
    cheap = ratio_run(cheap=True, reps=3 if quick else 5)
    twelve = cheap.twelve
    jobs = 2 if quick else JOBS
    say(f"[1] seed runner, emulator with cheap clips: {jobs} jobs")
    seed = seed_batch(jobs, True)
    name = f"seed runner, {JOBS} jobs"
    if jobs < JOBS:
        name += f" (quick: {jobs} jobs run; wall = start-up + {JOBS} × their mean job time)"
    speedup = seed.wall / median([s.wall for s in twelve])
    return [
        Figure(
            "1a",
            "12 google jobs / one job, wall; the emulator renders every clip",
            rendered.ratio,
            "×",
            2.0,
            rendered.table,
            emulator_note(rendered),
        ),
        Figure(
            "1b",
            "12 google jobs / one job, wall; the emulator answers one pre-rendered clip",
            cheap.ratio,
            "×",
            2.0,
            cheap.table,
        ),
        Figure(
            "1c",
            "speed-up of vidpipe (12 jobs, `-j 12`) over the sequential seed runner, cheap clips",
            speedup,
            "×",
            None,
            [*HEADER, row("vidpipe, 12 jobs, `-j 12`", twelve), row(name, [seed])],
        ),
    ]


@dataclass
class RatioRun:
    one: list[Sample]
    twelve: list[Sample]

    @property
    def ratio(self) -> float:
        return median([s.wall for s in self.twelve]) / median([s.wall for s in self.one])

    @property
    def table(self) -> list[str]:
        return [
            *HEADER,
            row("vidpipe, 1 job", self.one),
            row("vidpipe, 12 jobs, `-j 12`", self.twelve),
        ]


def ratio_run(cheap: bool, reps: int) -> RatioRun:
    kind = "one pre-rendered clip" if cheap else "rendered clips"
    say(f"[1] batch, emulator with {kind}: 1 job vs 12 jobs, {reps} round(s)")
    r = interleave(
        {"one": lambda: vidpipe_batch(1, cheap), "twelve": lambda: vidpipe_batch(JOBS, cheap)}, reps
    )
    return RatioRun(r["one"], r["twelve"])


def emulator_note(run: RatioRun) -> str:
    emulator = median([s.emulator_cpu for s in run.twelve])
    runner = median([s.cpu for s in run.twelve])
    return (
        f"During the 12-job batch the emulator used {emulator:.1f} s of CPU and vidpipe "
        f"{runner:.1f} s, on 2 cores. "
        "Most of the emulator's is serial: when an operation's done poll "
        "arrives, the emulator renders the clip (a real H.264 + AAC MP4), and "
        "`vidpipe/testing/vertex_emulator.py` `VertexEmulator._video_for` holds `_media_lock` for the "
        "whole `make_mp4`, so the 36 clips of a 12-job batch render one at a time (about "
        "0.3 s each: ~11 s of serial work). py-spy on the emulator during a "
        "12-job run: 77% of its samples in `_video_for`, AAC-encoding the emulated tone "
        "(`make_mp4`, `aus.encode`) 38% and x264 24% of all samples. Veo renders on Google's servers, "
        "so figure 1b takes this work out: the emulator answers every operation with one "
        "clip rendered at start-up (`bench/emulator.py --cheap-videos`), everything else "
        "unchanged. What is left is in the test emulator, not in vidpipe (for instance, "
        "encoding its constant AAC tone once would remove 38% of its samples)."
    )


HEADER = [
    "| run | wall | runner CPU | emulator CPU | CPU use of 2 cores | runner peak RSS |",
    "|---|---|---|---|---|---|",
]


def row(name: str, samples: list[Sample]) -> str:
    return (
        f"| {name} | {spread([s.wall for s in samples])} | "
        f"{median([s.cpu for s in samples]):.1f} s | "
        f"{median([s.emulator_cpu for s in samples]):.1f} s | "
        f"{median([(s.cpu + s.emulator_cpu) / (2 * s.wall) for s in samples]):.0%} | "
        f"{median([s.rss_mb for s in samples]):.0f} MB |"
    )
