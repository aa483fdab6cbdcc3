"""The 12 test clips (4 s, 1280×720, 24 fps, H.264 + AAC), made once with render_clip.

They are storyboard panels from vidpipe.panels with a slow push-in, as the local provider
makes them for a job with 0.5 s crossfades (IDR frames 0.5 s from each end), cached in
bench/.cache/clips-edges/ (git-ignored; delete it to make them again). `stitch_project`
makes a vidpipe project around them, so `vidpipe stitch` runs as a user runs it.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import CACHE, say

COUNT = 12
SECONDS = 4
WIDTH, HEIGHT, FPS = 1280, 720, 24
EDGES = 0.5  # the crossfade the clips are made for
FOLDER = CACHE / "clips-edges"
PROJECT = CACHE / "stitch-project"


def panels(i: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> tuple[bytes, bytes]:
    """Start and end keyframes of test scene i."""
    from vidpipe.providers.local.panels import derive_end_frame, draw_keyframe

    common = {"palette": [], "size": size, "seed": i}
    start = draw_keyframe(
        prompt=f"Wide shot of a lighthouse on a rocky headland at dusk, storm clouds, scene {i}",
        caption=f"scene {i}",
        framing="wide establishing shot",
        **common,
    )
    end = derive_end_frame(
        start,
        prompt="the beam sweeps across the dark sea toward a small boat",
        caption=f"scene {i} end",
        framing="close-up",
        **common,
    )
    return start, end


def test_clips() -> list[Path]:
    """The 12 clips, rendered on first use, two at a time (one render_clip leaves a core idle)."""
    from vidpipe.media import probe

    FOLDER.mkdir(parents=True, exist_ok=True)
    paths = [FOLDER / f"clip_{i:02d}.mp4" for i in range(COUNT)]
    missing = [
        i for i, p in enumerate(paths) if not p.exists() or probe(p).video_frames != SECONDS * FPS
    ]
    if missing:
        say(f"    rendering {len(missing)} test clips into {FOLDER}")
        with ProcessPoolExecutor(max_workers=2) as pool:
            list(pool.map(render, missing, [paths[i] for i in missing]))
    return paths


def render(i: int, path: Path) -> None:
    from vidpipe.providers.local.animatic import Motion, render_clip

    start, end = panels(i)
    tmp = path.with_suffix(".tmp")
    render_clip(
        start,
        end,
        tmp,
        duration=SECONDS,
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        motion=Motion(zoom_start=1.0, zoom_end=1.15, pan_x=0.05),
        audio_seed=i,
        keyframe_edges=EDGES,
    )
    tmp.replace(path)


def stitch_project() -> tuple[Path, list[Path]]:
    """A project whose one job (`film`, 12 scenes of 4 s at 720p, 0.5 s crossfades) was
    run by `vidpipe run` with the local provider; returns its root and its clips."""
    import json
    import shutil

    from common import PY, clean_env, run

    manifest = next(PROJECT.glob("tmp/film/*/output/manifest.json"), None)
    if manifest is None:
        shutil.rmtree(PROJECT, ignore_errors=True)
        (PROJECT / "jobs").mkdir(parents=True)
        (PROJECT / "vidpipe.yaml").write_text(
            "database: sqlite:///vidpipe.db\nartifacts_dir: tmp\n", encoding="utf-8"
        )
        (PROJECT / "jobs" / "film.yaml").write_text(
            "prompt: A lighthouse keeper climbs the stairs; the beam finds a boat at sea.\n"
            "provider: local\nscenes: 12\nclip_duration: 4\nresolution: 720p\n"
            f"stitch: {{crossfade: {EDGES}}}\n",
            encoding="utf-8",
        )
        say(f"    running a 12-scene local job into {PROJECT}")
        run([PY, "-m", "vidpipe", "run", "-q"], cwd=PROJECT, env=clean_env())
        manifest = next(PROJECT.glob("tmp/film/*/output/manifest.json"))
    scenes = json.loads(manifest.read_text(encoding="utf-8"))["scenes"]
    return PROJECT, [PROJECT / s["clip"]["path"] for s in scenes]
