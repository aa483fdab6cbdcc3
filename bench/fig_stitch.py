"""Figure 2: stitching 12 clips (4 s, 720p, 24 fps, H.264 + AAC), vidpipe vs ffmpeg.

Both contenders run as whole processes (start-up included): vidpipe as
``python -c "from vidpipe.media import stitch; ..."``, ffmpeg as the imageio-ffmpeg binary.

(a) hard cuts: ``stitch(crossfade=0)`` (stream copy) vs ``ffmpeg -f concat -c copy``.
(b) 0.5 s crossfades: ``stitch(crossfade=0.5)`` vs an ``xfade`` + ``acrossfade`` chain,
    encoded as vidpipe encodes (vidpipe/media.py): libx264 ``-preset superfast`` at x264's
    default CRF 23 with 4 encoder threads, yuv420p, AAC 128 kb/s 48 kHz stereo,
    ``+faststart``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from clips import COUNT, FPS, SECONDS, test_clips
from common import PY, Figure, Proc, ffmpeg, interleave, median, run, say, spread

CROSSFADE = 0.5
STITCH = "import sys; from vidpipe.media import stitch; stitch(sys.argv[2:], sys.argv[1]{})"
X264 = ["-c:v", "libx264", "-preset", "superfast", "-crf", "23", "-threads", "4"]
X264 += ["-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"]
MP4 = ["-movflags", "+faststart"]

COPY_PROFILE = """\
Where vidpipe's time goes (measured 2026-11-26): of about 0.17 s, the interpreter starts in
0.01 s, `import vidpipe.media` takes 0.09 s (0.08 s of it `import av`, which loads the
FFmpeg libraries) and the remux itself about 0.07 s; ffmpeg's whole run is 0.09–0.12 s.
Nothing in vidpipe's code stands out; the start-up of PyAV is most of the gap."""


def xfade_graph(n: int, seconds: float, fade: float) -> tuple[str, str, str]:
    """The filter graph joining n inputs with crossfades, and its video and audio outputs.

    Each xfade's offset is where the fade starts on the output so far: the cumulative
    duration of the inputs joined so far minus the overlaps already made, minus one fade.
    """
    parts = []
    video, audio = "[0:v]", "[0:a]"
    for i in range(1, n):
        offset = i * seconds - i * fade
        parts.append(
            f"{video}[{i}:v]xfade=transition=fade:duration={fade}:offset={offset:.6f}[v{i}]"
        )
        parts.append(f"{audio}[{i}:a]acrossfade=d={fade}[a{i}]")
        video, audio = f"[v{i}]", f"[a{i}]"
    return ";".join(parts), video, audio


def check(path: Path, seconds: float, frames: int) -> str:
    """Every frame decodes, and the duration and frame count are as expected."""
    from vidpipe.media import verify

    info = verify(path)
    if abs(info.duration - seconds) > 0.05 or info.video_frames != frames:
        raise RuntimeError(f"{path}: {info.duration:.3f} s, {info.video_frames} frames")
    return f"{info.duration:.3f} s, {info.video_frames} frames"


def figures(quick: bool) -> list[Figure]:
    clips = [str(p) for p in test_clips()]
    ff = ffmpeg()
    with tempfile.TemporaryDirectory(prefix="stitch-bench-") as tmp:
        work = Path(tmp)
        listing = work / "list.txt"
        listing.write_text("".join(f"file '{c}'\n" for c in clips))
        concat = [ff, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
        cuts = {
            "vidpipe": [PY, "-c", STITCH.format(""), str(work / "vidpipe.mp4"), *clips],
            "ffmpeg": [*concat, "-c", "copy", str(work / "ffmpeg.mp4")],
        }
        graph, v, a = xfade_graph(COUNT, SECONDS, CROSSFADE)
        inputs = [arg for c in clips for arg in ("-i", c)]
        fade = f", crossfade={CROSSFADE}"
        xfade = [ff, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", v, "-map", a]
        fades = {
            "vidpipe": [PY, "-c", STITCH.format(fade), str(work / "vidpipe.mp4"), *clips],
            "ffmpeg": [*xfade, *X264, *AAC, *MP4, str(work / "ffmpeg.mp4")],
        }
        reps = 10 if quick else 30
        say(f"[2a] stitch, hard cuts: {reps} rounds")
        cut = compare(cuts, reps, work, COUNT * SECONDS, warm=True)
        reps = 1 if quick else 3
        say(f"[2b] stitch, {CROSSFADE} s crossfades: {reps} round(s)")
        faded = compare(fades, reps, work, COUNT * SECONDS - (COUNT - 1) * CROSSFADE)
    return [
        Figure(
            "2a",
            "stitch 12 clips with hard cuts (stream copy), vidpipe / ffmpeg",
            cut[0],
            "×",
            2.0,
            table(cut[1], "`ffmpeg -f concat -safe 0 -i list.txt -c copy`"),
            COPY_PROFILE,
        ),
        Figure(
            "2b",
            f"stitch 12 clips with {CROSSFADE} s crossfades, vidpipe / ffmpeg",
            faded[0],
            "×",
            1.5,
            table(faded[1], "`ffmpeg` `xfade` + `acrossfade` chain, " + " ".join(X264 + AAC)),
        ),
    ]


def compare(
    commands: dict[str, list[str]], reps: int, work: Path, seconds: float, warm: bool = False
) -> tuple[float, dict[str, tuple[list[Proc], str]]]:
    """Interleaved runs of both commands; their outputs checked by a full decode."""
    contenders = {name: (lambda cmd=cmd: run(cmd)) for name, cmd in commands.items()}
    if warm:
        interleave(contenders, 1)  # the page cache, the dynamic linker's caches
    results = interleave(contenders, reps)
    frames = round(seconds * FPS)
    rows = {
        name: (procs, check(work / f"{name}.mp4", seconds, frames))
        for name, procs in results.items()
    }
    walls = {name: median([p.wall for p in procs]) for name, procs in results.items()}
    return walls["vidpipe"] / walls["ffmpeg"], rows


def table(rows: dict[str, tuple[list[Proc], str]], ffmpeg_how: str) -> list[str]:
    names = {"vidpipe": "vidpipe `stitch` (whole Python process)", "ffmpeg": ffmpeg_how}
    lines = [
        "| contender | wall | peak RSS | CPU | output (fully decoded) |",
        "|---|---|---|---|---|",
    ]
    for name, (procs, checked) in rows.items():
        lines.append(
            f"| {names[name]} | {spread([p.wall for p in procs])} | "
            f"{median([p.rss_mb for p in procs]):.0f} MB | "
            f"{median([p.cpu for p in procs]):.2f} s | {checked} |"
        )
    return lines
