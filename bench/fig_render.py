"""Figure 5: the local renderer, ``render_clip`` at 720p vs ffmpeg encoding the same frames.

``render_clip`` draws a 4 s, 96-frame dissolve with a push-in (two storyboard panels,
as the local provider renders a clip) and encodes it; it is timed inside a child
process, from the call to its return (no interpreter start-up). ffmpeg gets the very
frames ``render_clip`` wrote, decoded to rgb24, as rawvideo on its stdin, and encodes
them with vidpipe's settings (libx264 ``-preset superfast``, CRF 23, 4 threads,
yuv420p); it is timed as a whole process. Audio is off for both.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from clips import FPS, HEIGHT, WIDTH, panels
from common import PY, Figure, ffmpeg, interleave, median, run, say, spread

SECONDS = 4
FRAMES = SECONDS * FPS
RENDER = f"""
import sys, time
from pathlib import Path
import numpy, PIL.Image  # imported by render_clip on its first call: not part of its speed
from vidpipe.providers.local.animatic import Motion, render_clip
start, end, out = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes(), Path(sys.argv[3])
t = time.perf_counter()
render_clip(start, end, out, duration={SECONDS}, width={WIDTH}, height={HEIGHT}, fps={FPS},
            motion=Motion(zoom_start=1.0, zoom_end=1.15, pan_x=0.05), audio_seed=None)
print(time.perf_counter() - t)
"""


PROFILE = """\
Where `render_clip`'s time goes (py-spy with native frames, 2026-11-26): the push-in is the
largest part, Pillow's `Image.resize` of the three planes of every frame (27% of the
samples) in the drawing thread, then x264 (16%) in the main thread; the process keeps
about 1.5 of the 2 cores busy. The same clip without a camera move renders in 0.76 s
instead of 1.40 s, about as fast as ffmpeg encodes the frames. No goal is set for this
figure."""


def check(path: Path) -> None:
    from vidpipe.media import verify

    info = verify(path)
    if info.video_frames != FRAMES or abs(info.duration - SECONDS) > 0.01 or info.audio_codec:
        raise RuntimeError(f"{path}: {info}")


def figures(quick: bool) -> list[Figure]:
    import av

    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        work = Path(tmp)
        start, end = panels(0)
        (work / "start.png").write_bytes(start)
        (work / "end.png").write_bytes(end)
        render = [PY, "-c", RENDER, str(work / "start.png"), str(work / "end.png")]
        run([*render, str(work / "frames.mp4")])  # the frames for ffmpeg, and a warm-up
        with av.open(str(work / "frames.mp4")) as src, open(work / "frames.rgb", "wb") as raw:
            for frame in src.decode(video=0):
                raw.write(frame.to_ndarray(format="rgb24").tobytes())
        encode = [ffmpeg(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
        encode += ["-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "pipe:0", "-an"]
        encode += ["-c:v", "libx264", "-preset", "superfast", "-crf", "23", "-threads", "4"]
        encode += ["-pix_fmt", "yuv420p", str(work / "ffmpeg.mp4")]
        contenders = {
            "vidpipe": lambda: run([*render, str(work / "vidpipe.mp4")]),
            "ffmpeg": lambda: run(encode, stdin=work / "frames.rgb"),
        }
        reps = 3 if quick else 9
        say(f"[5] render_clip 720p vs ffmpeg rawvideo: {reps} rounds")
        r = interleave(contenders, reps)
        check(work / "vidpipe.mp4")
        check(work / "ffmpeg.mp4")
    vp = [float(p.out) for p in r["vidpipe"]]
    ff = [p.wall for p in r["ffmpeg"]]
    fps_vp, fps_ff = FRAMES / median(vp), FRAMES / median(ff)
    details = [
        "| contender | time for 96 frames | frames/s | CPU (process) |",
        "|---|---|---|---|",
        f"| `render_clip` (draw + encode, the call) | {spread(vp)} | {fps_vp:.0f} | "
        f"{median([p.cpu for p in r['vidpipe']]):.2f} s |",
        f"| ffmpeg rawvideo rgb24 → libx264 (whole process) | {spread(ff)} | {fps_ff:.0f} | "
        f"{median([p.cpu for p in r['ffmpeg']]):.2f} s |",
    ]
    return [
        Figure(
            "5",
            "local renderer at 720p: `render_clip` fps / ffmpeg encode fps",
            fps_vp / fps_ff,
            "×",
            None,
            details,
            PROFILE,
        )
    ]
