"""The Vertex emulator of tests/ as a standalone server, with one storyboard per idea.

``python bench/emulator.py --latency 0.3 --polls 4`` prints its URL as the first stdout
line and serves until SIGTERM. It is ``vidpipe/testing/vertex_emulator.py``'s standalone mode with
one change: its standalone storyboard takes its topic from the prompt's first line, which
is the same for every vidpipe job (the template's opening sentence), so every job of a
batch would get the same keyframe and clip prompts and vidpipe's generation cache would
make eleven of twelve jobs free. Here the storyboard is the emulator's
``idea_storyboard`` (the line after ``IDEA`` in every prompt), as in the tests, so every
job makes its own images and clips.

``--cheap-videos``: the emulator renders each clip (a real H.264 + AAC MP4) on this
machine's CPU, one at a time under a lock, work that Veo does on Google's servers. With
this option every operation is answered with one clip rendered at start-up (per duration,
size, frame rate and audio), so the emulator's CPU no longer competes with the runner.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

import vidpipe.testing.vertex_emulator.server as vertex_emulator
from vidpipe.testing.vertex_emulator import VertexEmulator, idea_storyboard


def cheap_videos() -> None:
    """Every Veo operation gets the same clip for the same length, size, rate and audio."""
    render = vertex_emulator.make_mp4
    clips: dict[tuple[Any, ...], bytes] = {}

    def make_mp4(duration: float, size: tuple[int, int], **kw: Any) -> bytes:
        key = (duration, size, kw.get("fps", 24), kw.get("silent", False))
        if key not in clips:
            clips[key] = render(duration, size, **kw)
        return clips[key]

    vertex_emulator.make_mp4 = make_mp4
    make_mp4(4.0, vertex_emulator.video_size_for("16:9"), fps=24, silent=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3, help="seconds added per request")
    parser.add_argument("--polls", type=int, default=4, help="not-done polls before done")
    parser.add_argument("--cheap-videos", action="store_true", help="one clip for all operations")
    args = parser.parse_args()
    if args.cheap_videos:
        cheap_videos()
    emu = VertexEmulator(
        "127.0.0.1",
        0,
        latency=args.latency,
        polls_until_done=args.polls,
        storyboard_fn=idea_storyboard,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emu:
        print(emu.url, flush=True)
        stop.wait()
    print(f"videos_rendered={emu.videos_rendered} requests={len(emu.requests)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
