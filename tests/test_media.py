"""Tests for vidpipe.media: rendering, probing, verifying and stitching real (tiny) MP4s."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from vidpipe import media
from vidpipe.errors import MediaError
from vidpipe.providers.local.animatic import Motion, render_clip

W, H = 320, 180
RED = (220, 40, 40)
BLUE = (40, 60, 220)
GREEN = (40, 200, 60)


# --------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------


def png(
    color: tuple[int, int, int], size: tuple[int, int] = (W, H), stripes: bool = False
) -> bytes:
    """A solid-colour PNG; with stripes, a white bar pattern that shows any movement."""
    img = Image.new("RGB", size, color)
    if stripes:
        draw = ImageDraw.Draw(img)
        for x in range(0, size[0], size[0] // 8):
            draw.rectangle([x, 0, x + size[0] // 32, size[1]], fill=(255, 255, 255))
        draw.rectangle([0, size[1] // 2 - 4, size[0], size[1] // 2 + 4], fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def frames_rgb(path: Path, indices: set[int] | None = None) -> dict[int, np.ndarray]:
    """Decoded video frames as RGB arrays, by frame number."""
    out = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if indices is None or i in indices:
                out[i] = frame.to_ndarray(format="rgb24").astype(int)
    return out


def mean_colour(frame: np.ndarray) -> np.ndarray:
    h, w, _ = frame.shape
    return frame[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).mean(axis=0)


def close_to(colour: np.ndarray, expected: tuple[int, int, int], tol: float = 12) -> bool:
    return bool(np.all(np.abs(colour - np.array(expected)) <= tol))


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


@pytest.fixture(scope="module")
def clipdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def make_clip(clipdir: Path) -> Callable[..., Path]:
    """Render (once per distinct arguments) a clip and return its path."""
    cache: dict[tuple, Path] = {}

    def make(
        start: tuple[int, int, int] = RED,
        end: tuple[int, int, int] = BLUE,
        *,
        duration: float = 1.0,
        width: int = W,
        height: int = H,
        fps: int = 24,
        audio_seed: int | None = 0,
        motion: Motion = Motion(),  # noqa: B008
        stripes: bool = False,
    ) -> Path:
        key = (start, end, duration, width, height, fps, audio_seed, motion, stripes)
        if key not in cache:
            path = clipdir / f"clip{len(cache)}.mp4"
            render_clip(
                png(start, stripes=stripes),
                png(end, stripes=stripes),
                path,
                duration=duration,
                width=width,
                height=height,
                fps=fps,
                motion=motion,
                audio_seed=audio_seed,
            )
            cache[key] = path
        return cache[key]

    return make


def one_frame(fps: float) -> float:
    return 1.0 / fps + 1e-6


# --------------------------------------------------------------------------------------
# render_clip
# --------------------------------------------------------------------------------------


def test_render_clip_writes_exact_h264_aac_clip(make_clip: Callable[..., Path]) -> None:
    path = make_clip(duration=1.5)
    info = media.probe(path)
    assert (info.width, info.height, info.fps) == (W, H, 24.0)
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.video_frames == 36
    assert info.duration == pytest.approx(1.5, abs=1e-3)
    assert info.audio_codec == "aac" and info.sample_rate == 48000 and info.channels in (1, 2)
    assert info.audio_duration == pytest.approx(1.5, abs=1e-3)

    decoded = media.verify(path)
    assert decoded.video_frames == 36
    assert decoded.audio_duration == pytest.approx(1.5, abs=1e-3)

    # Frame 0 is the start image, the last frame the end image, the middle a mix.
    frames = frames_rgb(path, {0, 18, 35})
    assert close_to(mean_colour(frames[0]), RED)
    assert close_to(mean_colour(frames[35]), BLUE)
    middle = mean_colour(frames[18])
    assert BLUE[0] + 30 < middle[0] < RED[0] - 30 and RED[2] + 30 < middle[2] < BLUE[2] - 30


def test_render_clip_is_deterministic(tmp_path: Path) -> None:
    outputs = []
    for name in ("a.mp4", "b.mp4"):
        render_clip(
            png(RED, stripes=True),
            png(GREEN),
            tmp_path / name,
            duration=1.0,
            width=W,
            height=H,
            motion=Motion(zoom_end=1.2, pan_x=0.1),
            audio_seed=7,
        )
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]


def test_render_clip_audio_seed_changes_sound_and_none_removes_it(
    make_clip: Callable[..., Path], tmp_path: Path
) -> None:
    silent = make_clip(audio_seed=None)
    info = media.probe(silent)
    assert info.audio_codec is None and info.audio_duration is None
    assert media.verify(silent).video_frames == 24

    def audio_packets(path: Path) -> list[bytes]:
        with av.open(str(path)) as container:
            return [bytes(p) for p in container.demux(audio=0) if p.size]

    assert audio_packets(make_clip(audio_seed=1)) != audio_packets(make_clip(audio_seed=2))


def test_render_clip_motion_moves_the_picture_without_showing_outside(
    make_clip: Callable[..., Path],
) -> None:
    still = make_clip(GREEN, GREEN, stripes=True)
    moving = make_clip(GREEN, GREEN, stripes=True, motion=Motion(1.0, 1.4, pan_x=0.2, pan_y=-0.1))
    a = frames_rgb(still, {0, 23})
    b = frames_rgb(moving, {0, 23})
    assert np.abs(a[23] - b[23]).mean() > 10  # zoomed and panned: a different picture
    assert np.abs(a[0] - a[23]).mean() < 3  # no motion: the picture stays put
    for frame in b.values():
        # The corners show the image (green/white stripes), never black padding.
        for y, x in ((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)):
            assert frame[y, x].sum() > 150


def test_render_clip_pans_smoothly_with_subpixel_steps(tmp_path: Path) -> None:
    # A thin vertical line; the camera travels right, so the line drifts left by about a
    # third of a pixel per frame. Integer crops would move it in 0/1 pixel jerks.
    img = Image.new("RGB", (640, 360), (0, 0, 0))
    ImageDraw.Draw(img).rectangle([318, 0, 322, 360], fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = tmp_path / "pan.mp4"
    render_clip(
        buf.getvalue(),
        buf.getvalue(),
        out,
        duration=1.0,
        width=W,
        height=H,
        motion=Motion(pan_x=0.05),
        audio_seed=None,
    )
    centroids = []
    with av.open(str(out)) as container:
        for frame in container.decode(video=0):
            row = frame.to_ndarray()[H // 2].astype(float) - 16  # luma row, black = 16
            row[row < 0] = 0
            centroids.append((row * np.arange(W)).sum() / row.sum())
    steps = np.diff(centroids)
    assert np.all(steps < 0)  # camera right, picture left
    assert np.abs(steps - steps.mean()).max() < 0.3


def test_render_clip_cover_fits_any_aspect(tmp_path: Path) -> None:
    out = tmp_path / "portrait.mp4"
    render_clip(
        png(RED, size=(300, 700)), png(BLUE, size=(1000, 200)), out, duration=0.5, width=W, height=H
    )
    info = media.verify(out)
    assert (info.width, info.height, info.video_frames) == (W, H, 12)
    first = frames_rgb(out, {0})[0]
    assert close_to(first[2, 2].astype(float), RED, tol=20)  # no bars: the corner is image


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "I;16", "JPEG"])
def test_render_clip_accepts_common_image_modes(mode: str, tmp_path: Path) -> None:
    img = Image.new("RGB", (64, 36), GREEN)
    buf = io.BytesIO()
    if mode == "JPEG":
        img.save(buf, "JPEG")
    elif mode == "I;16":
        Image.fromarray(np.full((36, 64), 40000, dtype=np.uint16)).save(buf, "PNG")
    else:
        img.convert(mode).save(buf, "PNG")
    out = tmp_path / "modes.mp4"
    render_clip(
        buf.getvalue(), buf.getvalue(), out, duration=0.25, width=64, height=36, audio_seed=None
    )
    colour = mean_colour(frames_rgb(out, {0})[0])
    if mode in ("L", "I;16"):
        expected = colour[0]  # grey: the three channels agree
        assert np.all(np.abs(colour - expected) < 8) and 100 < expected < 200
    else:
        assert close_to(colour, GREEN, tol=16)


def test_render_clip_rejects_bad_images_and_sizes(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="start image"):
        render_clip(b"not a png", png(RED), tmp_path / "x.mp4", duration=1, width=W, height=H)
    with pytest.raises(MediaError, match="even"):
        render_clip(png(RED), png(RED), tmp_path / "x.mp4", duration=1, width=321, height=H)
    assert not (tmp_path / "x.mp4").exists()


# --------------------------------------------------------------------------------------
# stitch: stream copy
# --------------------------------------------------------------------------------------


def test_stitch_copies_compatible_clips_without_reencoding(
    make_clip: Callable[..., Path], tmp_path: Path
) -> None:
    clips = [
        make_clip(RED, BLUE),
        make_clip(BLUE, GREEN, audio_seed=3),
        make_clip(GREEN, RED, duration=1.5),
    ]
    out = tmp_path / "film.tmp"  # no .mp4 suffix: the caller renames temporary files
    result = media.stitch(clips, out)
    assert result.mode == "copy"
    assert (result.width, result.height, result.fps, result.has_audio) == (W, H, 24.0, True)
    assert result.duration == pytest.approx(3.5, abs=one_frame(24))

    info = media.verify(out)
    assert info.video_frames == 24 + 24 + 36
    assert info.audio_duration == pytest.approx(3.5, abs=one_frame(24))

    # Packets are the inputs' packets, byte for byte, in order.
    assert video_packets(out) == [p for clip in clips for p in video_packets(clip)]


def test_stitch_copy_lays_audio_end_to_end_at_any_rate(
    make_clip: Callable[..., Path], tmp_path: Path
) -> None:
    # Stitch reads clip headers without opening a decoder (no decoder says how many
    # samples an AAC packet holds, nor checks the rate): the container's packet durations
    # and sample rate must lay a 44.1 kHz track end to end, in sync with the video.
    clip = tmp_path / "clip44k.mp4"
    rate = 44_100
    with (
        av.open(str(make_clip(RED, GREEN)), options={"skip_frame": "all"}) as src,
        av.open(str(clip), "w", format="mp4") as dst,
    ):
        v_in = src.streams.video[0]
        v_out = dst.add_stream_from_template(v_in)
        a_out = dst.add_stream("aac", rate=rate)
        a_out.layout = "stereo"
        a_out.format = "fltp"
        t = np.arange(rate, dtype=np.float32) / rate  # 1 s, as long as the video
        tone = np.stack([np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32) * 0.1
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, 0
        dst.mux(a_out.encode(frame))
        dst.mux(a_out.encode(None))
        for packet in src.demux(v_in):
            if packet.dts is not None:
                packet.stream = v_out
                dst.mux(packet)
    result = media.stitch([clip, clip, clip], tmp_path / "film.mp4")
    assert result.mode == "copy"
    info = media.verify(tmp_path / "film.mp4")
    assert info.sample_rate == rate
    assert info.video_frames == 72
    assert info.audio_duration == pytest.approx(3.0, abs=one_frame(24))


def test_stitch_single_clip_is_a_copy(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    clip = make_clip()
    result = media.stitch([clip], tmp_path / "one.mp4")
    assert result.mode == "copy"
    assert result.duration == pytest.approx(1.0, abs=1e-3)
    assert media.verify(tmp_path / "one.mp4").video_frames == 24


def test_stitch_rejects_no_clips(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="empty"):
        media.stitch([], tmp_path / "film.mp4")


# --------------------------------------------------------------------------------------
# stitch: crossfade and re-encode
# --------------------------------------------------------------------------------------


def test_stitch_crossfade_overlaps_video_and_audio(
    make_clip: Callable[..., Path], tmp_path: Path
) -> None:
    clips = [
        make_clip(RED, RED),
        make_clip(BLUE, BLUE, audio_seed=5),
        make_clip(GREEN, GREEN, audio_seed=9),
    ]
    out = tmp_path / "xfade.mp4"
    result = media.stitch(clips, out, crossfade=0.25)
    assert result.mode == "crossfade" and result.has_audio
    assert result.duration == pytest.approx(3.0 - 2 * 0.25, abs=one_frame(24))
    info = media.verify(out)
    assert info.video_frames == 72 - 2 * 6
    assert info.audio_duration == pytest.approx(result.duration, abs=one_frame(24))

    # Clip 1 owns frames 0..17, the overlap with clip 2 is frames 18..23.
    frames = frames_rgb(out, {10, 20, 21, 30})
    assert close_to(mean_colour(frames[10]), RED)
    assert close_to(mean_colour(frames[30]), BLUE)
    for mid in (frames[20], frames[21]):
        colour = mean_colour(mid)
        assert BLUE[0] + 30 < colour[0] < RED[0] - 30
        assert RED[2] + 30 < colour[2] < BLUE[2] - 30


def test_stitch_crossfade_longer_than_half_a_clip_is_refused(
    make_clip: Callable[..., Path], tmp_path: Path
) -> None:
    with pytest.raises(MediaError, match="too long"):
        media.stitch([make_clip(), make_clip(duration=0.5)], tmp_path / "x.mp4", crossfade=0.3)


def test_stitch_normalises_mixed_clips(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    clips = [
        make_clip(RED, RED),  # 320x180, 24 fps, audio: sets the film's format
        make_clip(
            BLUE, BLUE, width=240, height=240, fps=30, audio_seed=None
        ),  # square, 30 fps, silent
        make_clip(GREEN, GREEN, width=256, height=144, duration=0.5, audio_seed=4),  # smaller 16:9
    ]
    out = tmp_path / "mixed.mp4"
    result = media.stitch(clips, out)
    assert result.mode == "reencode"
    assert (result.width, result.height, result.fps, result.has_audio) == (W, H, 24.0, True)
    assert result.duration == pytest.approx(2.5, abs=one_frame(24))
    info = media.verify(out)
    assert info.video_frames == 24 + 24 + 12
    assert info.audio_duration == pytest.approx(2.5, abs=one_frame(24))

    frames = frames_rgb(out, {30, 54})
    square = frames[30]
    assert square[H // 2, 10].sum() < 60  # pillarbox bar on the left
    assert close_to(square[H // 2, W // 2].astype(float), BLUE)  # not stretched, just centred
    assert close_to(frames[54][2, 2].astype(float), GREEN, tol=20)  # same aspect: scaled, no bars


def test_stitch_reencodes_clips_whose_audio_is_shorter_than_video(
    make_clip: Callable[..., Path], tmp_path: Path
) -> None:
    # Same codec parameters, but audio stopping halfway: copying would shift every later
    # clip's sound, so stitch must re-encode and pad with silence.
    full = make_clip(RED, BLUE)
    short = tmp_path / "short_audio.mp4"
    with av.open(str(full)) as src, av.open(str(short), "w", format="mp4") as dst:
        v_in, a_in = src.streams.video[0], src.streams.audio[0]
        v_out, a_out = dst.add_stream_from_template(v_in), dst.add_stream_from_template(a_in)
        for packet in src.demux(v_in, a_in):
            if packet.dts is None:
                continue
            if packet.stream is a_in:
                if packet.pts * a_in.time_base > 0.5:
                    continue
                packet.stream = a_out
            else:
                packet.stream = v_out
            dst.mux(packet)
    assert media.probe(short).audio_duration == pytest.approx(0.5, abs=0.03)
    result = media.stitch([full, short, full], tmp_path / "film.mp4")
    assert result.mode == "reencode"
    assert result.duration == pytest.approx(3.0, abs=one_frame(24))
    assert media.verify(tmp_path / "film.mp4").audio_duration == pytest.approx(
        3.0, abs=one_frame(24)
    )


def test_stitch_without_audio(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    clips = [make_clip(RED, BLUE), make_clip(BLUE, GREEN)]
    for crossfade in (0.0, 0.25):
        out = tmp_path / f"silent{crossfade}.mp4"
        result = media.stitch(clips, out, crossfade=crossfade, audio=False)
        assert result.mode == ("copy" if crossfade == 0 else "crossfade")
        assert not result.has_audio
        assert media.probe(out).audio_codec is None
    # Re-encode with no audio anywhere: no track either.
    silent = [make_clip(audio_seed=None), make_clip(width=256, height=144, audio_seed=None)]
    result = media.stitch(silent, tmp_path / "silent_mixed.mp4")
    assert result.mode == "reencode" and not result.has_audio


# --------------------------------------------------------------------------------------
# corrupt input
# --------------------------------------------------------------------------------------


def test_corrupt_files_raise_media_error(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    good = make_clip()
    data = good.read_bytes()
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(random.Random(1).randbytes(20_000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) * 3 // 4])  # moov is at the front: still opens
    headless = tmp_path / "headless.mp4"
    headless.write_bytes(data[:300])

    for bad in (noise, headless, tmp_path / "missing.mp4"):
        with pytest.raises(MediaError):
            media.probe(bad)
        with pytest.raises(MediaError):
            media.verify(bad)
    with pytest.raises(MediaError, match="truncated"):
        media.verify(truncated)
    for crossfade in (0.0, 0.25):
        out = tmp_path / "out.mp4"
        for bad in (noise, truncated):
            with pytest.raises(MediaError, match=bad.name):
                media.stitch([good, bad], out, crossfade=crossfade)
            assert not out.exists()  # no half-written film left behind
