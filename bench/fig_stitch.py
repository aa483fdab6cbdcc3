"""Figure 2: stitching 12 clips (4 s, 720p, 24 fps, H.264 + AAC), vidpipe vs ffmpeg.

The clips are a real project's: a 12-scene job with 0.5 s crossfades run by the local
provider, which places IDR frames 0.5 s from each end of every clip. Every contender is a
whole process (start-up included); runs are interleaved and medians compared.

(a) hard cuts: `vidpipe stitch film --crossfade 0`, run in the project as a user runs it
    (configuration, the job compiled, the database read, every clip's sha256 checked, a
    preview written beside final.mp4), vs `ffmpeg -f concat -c copy` on the same clips.
(b) 0.5 s crossfades: `stitch(crossfade=0.5)` (smart render: only the windows encoded)
    vs the same function forced to re-encode every frame (`smart=False`) vs an `xfade` +
    `acrossfade` chain encoded as vidpipe encodes: libx264 `-preset superfast` at CRF 23
    with 4 threads, yuv420p, AAC 128 kb/s 48 kHz stereo, `+faststart`. After the timed
    runs the smart film is decoded and compared with its sources: copied frames must be
    bit-identical, window frames are scored (PSNR, Y'CbCr 4:2:0) against an exact
    floating-point blend of the decoded sources.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from clips import COUNT, EDGES, FPS, SECONDS, stitch_project
from common import PY, Figure, Proc, clean_env, ffmpeg, interleave, median, run, say, spread

CROSSFADE = EDGES
STITCH = (
    "import sys; from vidpipe.media import stitch; "
    "r = stitch(sys.argv[2:], sys.argv[1], crossfade={}, smart={}); print(r.path, r.reason)"
)
X264 = ["-c:v", "libx264", "-preset", "superfast", "-crf", "23", "-threads", "4"]
X264 += ["-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"]
MP4 = ["-movflags", "+faststart"]

STITCH_NOTE = """\
Where the rest goes (callgrind instruction counts and `python -X importtime`, which do not
depend on the machine's load, 2026-11-29): of ~740M instructions, the interpreter with
click takes ~175M and PyAV's import ~200M (FFmpeg's libraries, 67 extension modules);
reading 12 MP4s' headers ~35M, the remux loop and interpreter shutdown ~160M; vidpipe's
own imports and work (configuration, the database over sqlite3, the memo, the clips'
digests by identity) ~170M (ffmpeg: ~475M). A remux in Python with click and PyAV alone,
~570M, already runs at 1.4x-1.6x the ffmpeg CLI here; under load the ratio moves by
+-0.3 between runs, ffmpeg's threaded pipeline holding up better than one Python thread."""


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


def figures(quick: bool) -> list[Figure]:
    root, clip_paths = stitch_project()
    clips = [str(p) for p in clip_paths]
    ff = ffmpeg()
    env = clean_env()
    reps = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="stitch-bench-") as tmp:
        work = Path(tmp)
        listing = work / "list.txt"
        listing.write_text("".join(f"file '{c}'\n" for c in clips))
        concat = [ff, "-v", "error", "-y", "-f", "concat", "-safe", "0"]
        vidpipe_cli = [PY, "-m", "vidpipe", "stitch", "film", "--crossfade", "0"]
        cuts = {
            "vidpipe": lambda: run(vidpipe_cli, cwd=root, env=env),
            "ffmpeg": lambda: run(
                [*concat, "-i", str(listing), "-c", "copy", str(work / "ffmpeg.mp4")]
            ),
        }
        say(f"[2a] vidpipe stitch --crossfade 0 vs ffmpeg concat: {reps} rounds")
        interleave(cuts, 1)  # the page cache, .pyc files, the contact sheet drawn once
        cut = interleave(cuts, reps)
        seconds = COUNT * SECONDS
        # `stitch --crossfade S` writes a preview beside final.mp4 (the job file decides
        # what final.mp4 is).
        film = next(root.glob("tmp/film/*/output/preview-crossfade-0.mp4"))
        cut_checked = {
            "vidpipe": check(film, seconds),
            "ffmpeg": check(work / "ffmpeg.mp4", seconds),
        }
        manifest = json.loads(next(root.glob("tmp/film/*/output/manifest.json")).read_text())

        graph, v, a = xfade_graph(COUNT, SECONDS, CROSSFADE)
        inputs = [arg for c in clips for arg in ("-i", c)]
        xfade = [ff, "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", v, "-map", a]
        fades = {
            "smart": [PY, "-c", STITCH.format(CROSSFADE, True), str(work / "smart.mp4"), *clips],
            "full": [PY, "-c", STITCH.format(CROSSFADE, False), str(work / "full.mp4"), *clips],
            "ffmpeg": [*xfade, *X264, *AAC, *MP4, str(work / "ffmpeg.mp4")],
        }
        fade_reps = 3 if quick else 7
        say(f"[2b] {CROSSFADE} s crossfades, smart vs full vs ffmpeg: {fade_reps} rounds")
        faded = interleave({k: (lambda c=c: run(c)) for k, c in fades.items()}, fade_reps)
        seconds = COUNT * SECONDS - (COUNT - 1) * CROSSFADE
        fade_checked = {k: check(work / f"{k}.mp4", seconds) for k in fades}
        quality = window_quality(clip_paths, work / "smart.mp4")
    w = {k: median([p.wall for p in procs]) for k, procs in faded.items()}
    peak = max(p.rss_mb for p in faded["smart"])
    how = faded["smart"][-1].out.strip()
    fade_rows = table(
        faded,
        fade_checked,
        {
            "smart": "vidpipe `stitch(crossfade=0.5)`: smart render",
            "full": "vidpipe `stitch(crossfade=0.5, smart=False)`: every frame",
            "ffmpeg": "`ffmpeg` `xfade` + `acrossfade` chain, " + " ".join(X264 + AAC),
        },
    )
    fade_rows += ["", f"Smart path taken: {how}", "", quality]
    ratio = median([p.wall for p in cut["vidpipe"]]) / median([p.wall for p in cut["ffmpeg"]])
    cut_rows = table(
        cut,
        cut_checked,
        {
            "vidpipe": "`vidpipe stitch film --crossfade 0` (CLI, in the project; writes "
            "`output/preview-crossfade-0.mp4`)",
            "ffmpeg": "`ffmpeg -f concat -safe 0 -i list.txt -c copy`",
        },
    )
    cut_rows += [
        "",
        "The project's final.mp4 (0.5 s crossfades, made by `vidpipe run`): manifest "
        f"`stitch_path` {manifest['output'].get('stitch_path')!r}, "
        f"`stitch_reason` {manifest['output'].get('stitch_reason')!r}.",
    ]
    return [
        Figure(
            "2a",
            "`vidpipe stitch --crossfade 0` / ffmpeg concat CLI, 12 clips",
            ratio,
            "×",
            2.0,
            cut_rows,
            STITCH_NOTE if ratio > 2.0 else "",
        ),
        Figure(
            "2b",
            f"{CROSSFADE} s crossfades: smart render / vidpipe full re-encode",
            w["smart"] / w["full"],
            "×",
            0.35,
            fade_rows,
        ),
        Figure(
            "2c",
            f"{CROSSFADE} s crossfades: smart render / ffmpeg xfade chain",
            w["smart"] / w["ffmpeg"],
            "×",
            0.35,
            ["See 2b."],
        ),
        Figure(
            "2d",
            "smart render, peak memory",
            peak,
            "MB",
            250.0,
            ["Largest `ru_maxrss` of the smart runs in 2b."],
        ),
    ]


def check(path: Path, seconds: float) -> str:
    """Every frame decodes, and the duration and frame count are as expected."""
    from vidpipe.media import verify

    frames = round(seconds * FPS)
    info = verify(path)
    if abs(info.duration - seconds) > 0.05 or info.video_frames != frames:
        raise RuntimeError(f"{path}: {info.duration:.3f} s, {info.video_frames} frames")
    return f"{info.duration:.3f} s, {info.video_frames} frames"


def window_quality(clips: list[Path], film: Path) -> str:
    """Copied frames bit-identical to their sources; PSNR of the windows vs exact blends."""
    import av
    import numpy as np

    def decode(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as container:
            return [f.to_ndarray() for f in container.decode(video=0)]

    ov = round(CROSSFADE * FPS)
    out = decode(film)
    scores: list[float] = []
    copied = identical = offset = 0
    sources = [decode(c) for c in clips]
    for i, frames in enumerate(sources):
        for k, frame in enumerate(frames):
            if i > 0 and k < ov:
                wgt = (k + 1) / (ov + 1)
                exact = sources[i - 1][len(sources[i - 1]) - ov + k] * (1 - wgt) + frame * wgt
                mse = float(np.mean((out[offset + k] - exact) ** 2))
                scores.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
            elif i == len(sources) - 1 or k < len(frames) - ov:
                copied += 1
                identical += bool(np.array_equal(out[offset + k], frame))
        offset += len(frames) - (ov if i < len(sources) - 1 else 0)
    return (
        f"Checked after the timed runs: {identical} of {copied} frames outside the windows "
        f"bit-identical to their source frames; window PSNR against an exact blend: "
        f"min {min(scores):.1f} dB, median {median(scores):.1f} dB over {len(scores)} frames."
    )


def table(
    results: dict[str, list[Proc]], checked: dict[str, str], names: dict[str, str]
) -> list[str]:
    lines = [
        "| contender | wall | CPU | peak RSS | output (fully decoded) |",
        "|---|---|---|---|---|",
    ]
    for name, procs in results.items():
        lines.append(
            f"| {names[name]} | {spread([p.wall for p in procs])} | "
            f"{spread([p.cpu for p in procs])} | "
            f"{median([p.rss_mb for p in procs]):.0f} MB | {checked[name]} |"
        )
    return lines
