"""Smart-render crossfades: clips copied between the blend windows, only the windows
encoded. Checked on the films themselves: copied frames bit-identical to their sources,
windows close to an exact blend, clean decode by an independent decoder (the ffmpeg
binary), timestamps and audio length right; and the fallback to a full re-encode."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import Project
from PIL import Image, ImageDraw

from vidpipe import media
from vidpipe.errors import MediaError
from vidpipe.providers.local.animatic import Motion, render_clip

W, H, FPS, RATE = 320, 180, 24, 48_000


def textured_png(seed: int) -> bytes:
    """A busy picture (noise plus shapes): blends of it are a fair test of the encoder."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, size=(H // 12, W // 12, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((W, H), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for k in range(6):
        x, y = int(rng.integers(0, W - 40)), int(rng.integers(0, H - 40))
        draw.ellipse((x, y, x + 40, y + 30), fill=(255 - 30 * k, 40 * k, 120))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


ClipMaker = Callable[..., Path]


@pytest.fixture
def make_clip(tmp_path: Path) -> ClipMaker:
    def make(seed: int, *, edges: float = 0.5, seconds: float = 2.0, audio: bool = True) -> Path:
        path = tmp_path / f"clip{seed}-{edges}-{seconds}-{audio}.mp4"
        render_clip(
            textured_png(seed),
            textured_png(seed + 100),
            path,
            duration=seconds,
            width=W,
            height=H,
            fps=FPS,
            motion=Motion(zoom_start=1.0, zoom_end=1.15, pan_x=0.1),
            audio_seed=seed if audio else None,
            keyframe_edges=edges,
        )
        return path

    return make


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [k for k, p in enumerate(container.demux(video=0)) if p.size and p.is_keyframe]


def audio_samples(path: Path) -> int | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        return round(stream.duration * stream.time_base * RATE)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ffmpeg_errors(path: Path) -> str:
    import imageio_ffmpeg

    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr.strip() + ("" if result.returncode == 0 else f" (rc {result.returncode})")


def check_smart_film(clips: list[Path], film_path: Path, crossfade: float) -> float:
    """Every frame outside the windows bit-identical to its source, every window frame
    ≥ 40 dB against the exact blend; clean decode, rising DTS, audio as long as the
    video. Returns the worst window PSNR."""
    sources = [decode(c) for c in clips]
    film = decode(film_path)
    n, ov = len(clips), round(crossfade * FPS)
    assert len(film) == sum(len(s) for s in sources) - (n - 1) * ov
    worst, offset = float("inf"), 0
    for i, frames in enumerate(sources):
        for k, frame in enumerate(frames):
            if i > 0 and k < ov:
                w = (k + 1) / (ov + 1)
                prev = sources[i - 1][len(sources[i - 1]) - ov + k].astype(np.float64)
                worst = min(worst, psnr(film[offset + k], prev * (1 - w) + frame * w))
            elif i == n - 1 or k < len(frames) - ov:
                assert np.array_equal(film[offset + k], frame), f"clip {i} frame {k} not copied"
        offset += len(frames) - (ov if i < n - 1 else 0)
    assert worst >= 40.0, f"window PSNR {worst:.1f} dB"
    assert ffmpeg_errors(film_path) == ""
    with av.open(str(film_path)) as container:
        dts = [p.dts for p in container.demux(video=0) if p.dts is not None]
    assert all(b > a for a, b in itertools.pairwise(dts))
    if any(audio_samples(c) for c in clips):
        assert audio_samples(film_path) == pytest.approx(len(film) * RATE / FPS, abs=1024)
    else:
        assert audio_samples(film_path) is None
    return worst


def test_renderer_places_keyframes_at_the_crossfade_edges(make_clip: ClipMaker) -> None:
    assert keyframes(make_clip(1, edges=0.5)) == [0, 12, 36]
    assert keyframes(make_clip(1, edges=0.0)) == [0]


def test_crossfade_encodes_only_the_windows(make_clip: ClipMaker, tmp_path: Path) -> None:
    clips = [make_clip(i) for i in range(3)]
    out = tmp_path / "film.mp4"
    result = media.stitch(clips, out, crossfade=0.5)
    assert (result.mode, result.path) == ("crossfade", "smart"), result.reason
    assert "96 of 120 frames copied" in result.reason
    check_smart_film(clips, out, 0.5)


def test_clips_without_audio_contribute_silence(make_clip: ClipMaker, tmp_path: Path) -> None:
    clips = [make_clip(0), make_clip(1, audio=False), make_clip(2)]
    out = tmp_path / "film.mp4"
    assert media.stitch(clips, out, crossfade=0.5).path == "smart"
    check_smart_film(clips, out, 0.5)
    with av.open(str(out)) as container:
        sound = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    # Clip 1 covers film seconds 1.5..3.5; its own part is 2.0..3.0.
    assert np.abs(sound[:, int(2.1 * RATE) : int(2.9 * RATE)]).max() < 0.01
    assert np.abs(sound[:, int(0.2 * RATE) : int(1.2 * RATE)]).max() > 0.01

    silent = [make_clip(i, audio=False) for i in range(2)]
    result = media.stitch(silent, tmp_path / "silent.mp4", crossfade=0.5)
    assert result.path == "smart" and not result.has_audio
    check_smart_film(silent, tmp_path / "silent.mp4", 0.5)


def test_without_audio_requested(make_clip: ClipMaker, tmp_path: Path) -> None:
    clips = [make_clip(i) for i in range(2)]
    result = media.stitch(clips, tmp_path / "film.mp4", crossfade=0.5, audio=False)
    assert result.path == "smart" and not result.has_audio


def test_keyframes_elsewhere_extend_the_windows(make_clip: ClipMaker, tmp_path: Path) -> None:
    # IDRs 0.75 s from each end (frames 18 and 30): a 0.5 s window (frames 36..47 and
    # 0..11) is extended to them, 6 frames re-encoded unchanged on each side.
    clips = [make_clip(i, edges=0.75) for i in range(3)]
    out = tmp_path / "film.mp4"
    result = media.stitch(clips, out, crossfade=0.5)
    assert result.path == "smart" and "re-encoded unchanged" in result.reason
    sources, film = [decode(c) for c in clips], decode(out)
    assert "72 of 120 frames copied, 24 re-encoded unchanged" in result.reason
    # Outside the extended runs, still copied exactly: clip 0's first 30 frames.
    assert all(np.array_equal(film[k], sources[0][k]) for k in range(30))
    assert ffmpeg_errors(out) == ""


def test_single_keyframe_clips_are_fully_reencoded(make_clip: ClipMaker, tmp_path: Path) -> None:
    clips = [make_clip(i, edges=0.0) for i in range(2)]
    result = media.stitch(clips, tmp_path / "film.mp4", crossfade=0.5)
    assert (result.mode, result.path) == ("crossfade", "full")
    assert "no keyframe" in result.reason
    assert len(decode(tmp_path / "film.mp4")) == 48 + 48 - 12


def test_unlike_clips_fall_back_to_the_full_reencode(tmp_path: Path, make_clip: ClipMaker) -> None:
    small = tmp_path / "small.mp4"
    render_clip(
        textured_png(7), textured_png(8), small, duration=2.0, width=160, height=90,
        keyframe_edges=0.5,
    )  # fmt: skip
    result = media.stitch([make_clip(0), small], tmp_path / "film.mp4", crossfade=0.5)
    assert result.path == "full" and "differs from" in result.reason
    assert (result.width, result.height) == (W, H)  # the full path letterboxes/scales


def test_a_job_with_a_crossfade_takes_the_smart_path(project: Project) -> None:
    project.job(
        "fade",
        "prompt: a lighthouse keeper at night\nscenes: 2\nclip_duration: 2\n"
        "stitch: {crossfade: 0.5}\n",
    )
    result = project.cli("run", "jobs/fade.yaml")
    assert result.exit_code == 0, result.output
    (manifest_path,) = project.root.glob("**/manifest.json")
    output = json.loads(manifest_path.read_text())["output"]
    assert output["stitch_path"] == "smart", output["stitch_reason"]
    assert output["mode"] == "crossfade"


def test_the_contact_sheet_is_redrawn_only_when_its_inputs_change(project: Project) -> None:
    project.job("sheet", "prompt: a kite over the sea\nscenes: 2\n")
    assert project.cli("run").exit_code == 0
    (sheet,) = project.root.glob("tmp/sheet/*/output/storyboard.png")
    manifest_path = sheet.with_name("manifest.json")
    key = json.loads(manifest_path.read_text())["contact_sheet"]["inputs"]
    drawn = sheet.stat().st_mtime_ns

    assert project.cli("stitch", "sheet").exit_code == 0
    assert sheet.stat().st_mtime_ns == drawn  # same inputs: not drawn again
    assert json.loads(manifest_path.read_text())["contact_sheet"]["inputs"] == key

    con = sqlite3.connect(project.root / "vidpipe.db")
    with con:
        con.execute("UPDATE scenes SET description = 'a new caption' WHERE \"index\" = 1")
    con.close()
    assert project.cli("stitch", "sheet").exit_code == 0
    assert sheet.stat().st_mtime_ns != drawn
    assert json.loads(manifest_path.read_text())["contact_sheet"]["inputs"] != key

    sheet.unlink()  # a missing sheet is drawn again whatever the manifest says
    assert project.cli("stitch", "sheet").exit_code == 0
    assert sheet.is_file()


def test_stitch_records_the_digests_a_damaged_sheet_is_drawn_again(project: Project) -> None:
    project.job("sheet", "prompt: a kite over the sea\nscenes: 2\n")
    assert project.cli("run").exit_code == 0
    (sheet,) = project.root.glob("tmp/sheet/*/output/storyboard.png")
    manifest_path = sheet.with_name("manifest.json")

    def recorded() -> tuple[str, str]:
        con = sqlite3.connect(project.root / "vidpipe.db")
        (row,) = con.execute("SELECT manifest_sha256, sheet_sha256 FROM projects").fetchall()
        con.close()
        return row

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    # `vidpipe stitch` (read over sqlite3) records what it wrote, as `run` does.
    assert project.cli("stitch", "sheet").exit_code == 0
    assert recorded() == (sha(manifest_path), sha(sheet))

    # Same inputs, damaged bytes: the recorded digest no longer matches, so it is redrawn.
    good = sheet.read_bytes()
    sheet.write_bytes(good[: len(good) // 2])
    assert project.cli("stitch", "sheet").exit_code == 0
    assert sheet.read_bytes() == good
    assert recorded() == (sha(manifest_path), sha(sheet))

    # The outputs match their records: a second run finds the job up to date.
    again = project.cli("run", "--report", "r.json")
    assert again.exit_code == 0, again.output
    assert project.jobs_in_report("r.json")["sheet"]["provider_calls"] == 0


def test_a_smart_film_is_the_same_bytes_each_time(make_clip: ClipMaker, tmp_path: Path) -> None:
    # The audio is encoded in a thread of its own beside the video: the file's layout
    # must not depend on when its packets arrive.
    clips = [make_clip(i, seconds=3.0) for i in range(3)]
    films = [tmp_path / "one.mp4", tmp_path / "two.mp4"]
    for film in films:
        assert media.stitch(clips, film, crossfade=0.5).path == "smart"
    assert films[0].read_bytes() == films[1].read_bytes()


def test_a_clip_that_breaks_off_while_the_film_is_written_fails_with_a_sentence(
    make_clip: ClipMaker, tmp_path: Path
) -> None:
    from vidpipe.media.smart import plan_smart, write_smart

    clips = [make_clip(i) for i in range(4)]
    plan = plan_smart(clips, 0.5)
    assert plan.path == "smart", plan.reason
    # Between the plan and the writing, the third clip loses the end of its media data:
    # found with the film half written, the second clip's audio handed to the encoder's
    # thread.
    data = clips[2].read_bytes()
    clips[2].write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError) as failure:
        write_smart(plan, tmp_path / "film.mp4", audio=True)
    assert str(clips[2]) in str(failure.value)
