"""Video files: render animatic clips, probe and verify them, stitch them into one film.

Everything goes through PyAV (the FFmpeg libraries bundled in its wheel), so no ``ffmpeg``
binary is needed. numpy and Pillow are imported only by the functions that touch pixels or
samples, so that ``probe`` and a stream-copy ``stitch`` stay cheap to start.

Every failure caused by the media itself (unreadable PNG, corrupt or truncated MP4, clips
that cannot be joined) surfaces as :class:`vidpipe.errors.MediaError` with a sentence the
user can act on; no raw ``av`` exception escapes for a bad input file.

Output files are always MP4 with H.264 (yuv420p, BT.709 tags) and, when there is audio,
AAC at 48 kHz stereo. The moov atom is written at the front (``movflags=faststart``): it
costs one extra copy of the file when it is closed, a few milliseconds for an animatic,
and lets browsers start playing a stitched film before it is fully downloaded.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import av.error

from vidpipe.errors import MediaError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

__all__ = [
    "MediaInfo",
    "Motion",
    "StitchResult",
    "probe",
    "render_clip",
    "stitch",
    "verify",
]

# x264 dominates rendering and re-encoding time. Measured on a 4 s 720p dissolve (2 cores):
# superfast needs ~55% of veryfast's CPU for the same quality (Y-PSNR 48.5 vs 47.2 dB at
# CRF 23) in a ~1.6x larger file, about 1.6 Mbit/s: a good trade for animatics.
_PRESET = "superfast"
# x264's output depends on its thread count, and "auto" depends on the machine's cores.
# A fixed count makes the output independent of the core count (identical re-renders).
_X264_THREADS = 4
# Frames drawn ahead of the encoder by the worker thread.
_RENDER_AHEAD = 3
_AUDIO_RATE = 48_000
_AUDIO_LAYOUT = "stereo"
_AUDIO_BITRATE = 128_000
_AAC_FRAME = 1024
# Stream copy needs each clip's audio to last as long as its video, give or take this.
_COPY_AUDIO_SLACK = Fraction(1, 20)
# Written by every muxer here: moov at the front of the file.
_MP4_OPTIONS = {"movflags": "+faststart"}
# FFmpeg's enum values for BT.709 primaries / transfer / matrix, and limited ("tv") range.
_BT709 = 1
_RANGE_TV = 1
_RANGE_PC = 2
# Decoded frames in these colour spaces (BT.709, unspecified) need no conversion.
_PASS_COLORSPACES = (_BT709, 2)
# Video black in limited-range YUV, used for letterbox bars.
_BLACK_Y = 16
_BLACK_UV = 128


# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Motion:
    """A camera move over one clip, as fractions of the frame.

    The move is applied to a crop window over the (cover-fitted) images and never shows
    anything outside them: when the pan needs room, the images are scaled up just enough,
    so ``zoom_start=1.0`` with a pan is slightly punched in. Zoom below 1.0 is clamped the
    same way. Zoom is interpolated geometrically (constant perceived speed), pan linearly,
    like a Ken Burns move.
    """

    zoom_start: float = 1.0  # 1.0 = full frame; 1.2 = 20% punched in
    zoom_end: float = 1.0
    pan_x: float = 0.0  # camera travel over the clip, fraction of frame width (+ = right)
    pan_y: float = 0.0  # fraction of frame height (+ = down)


@dataclass(frozen=True)
class MediaInfo:
    """What a video file holds, as read by :func:`probe` or decoded by :func:`verify`."""

    duration: float  # seconds (container, or max of streams)
    width: int
    height: int
    fps: float
    video_codec: str
    pix_fmt: str
    video_frames: int  # counted when decoded by verify(); estimated by probe()
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    audio_duration: float | None


@dataclass(frozen=True)
class StitchResult:
    """How :func:`stitch` joined the clips, measured from the file it wrote."""

    duration: float
    mode: str  # "copy" | "reencode" | "crossfade"
    width: int
    height: int
    fps: float
    has_audio: bool


# --------------------------------------------------------------------------------------
# Error handling
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _media_errors(path: Path, doing: str, advice: str) -> Iterator[None]:
    """Turn FFmpeg/IO failures into a MediaError that says what failed and what to do."""
    try:
        yield
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MediaError(f"{path}: cannot {doing} ({detail}). {advice}") from exc


_BAD_INPUT = "The file is corrupt, truncated or not a video: re-generate or re-download it."
_CHECK_DISK = "Check the disk has space and the folder is writable."


# Opening a file makes FFmpeg decode its first frames to fill in details such as the pixel
# format (avformat_find_stream_info): ~20 ms per 720p clip here, most of a stream-copy
# stitch. Readers that do not need those details, or decode anyway, skip it.
_NO_PROBE_DECODE = {"skip_frame": "all"}


def _open_input(path: Path, *, probe_decode: bool = True) -> av.container.InputContainer:
    with _media_errors(path, "open the video", _BAD_INPUT):
        if not path.is_file():
            raise MediaError(
                f"{path}: no such video file. Check the path, or re-generate the clip."
            )
        options = None if probe_decode else dict(_NO_PROBE_DECODE)
        return av.open(str(path), "r", options=options)


def _open_output(path: Path) -> av.container.OutputContainer:
    # The caller may write to a temporary name without a .mp4 suffix: force the muxer.
    with _media_errors(path, "create the output video", "Check the folder exists and is writable."):
        return av.open(str(path), "w", format="mp4", options=dict(_MP4_OPTIONS))


def _remove_partial(path: Path) -> None:
    # A half-written MP4 has no index and would only confuse a later run.
    with contextlib.suppress(OSError):
        path.unlink()


def _truncated(path: Path, found: int, declared: int) -> MediaError:
    return MediaError(
        f"{path}: only {found} of its {declared} video frames could be read: the file is "
        "truncated. Re-generate or re-download it."
    )


# --------------------------------------------------------------------------------------
# probe / verify
# --------------------------------------------------------------------------------------


def _first_video(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream found (or its header is damaged). {_BAD_INPUT}")
    return container.streams.video[0]


def _stream_seconds(stream: av.stream.Stream) -> Fraction | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return Fraction(stream.duration) * stream.time_base


def _video_rate(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(0)


def _container_seconds(container: av.container.InputContainer) -> float | None:
    if container.duration is None:
        return None
    return container.duration / av.time_base


def _info(
    video: Any,
    audio: Any,
    rate: Fraction,
    duration: float,
    frames: int,
    audio_duration: float | None,
) -> MediaInfo:
    """A MediaInfo from opened streams and the measured durations."""
    return MediaInfo(
        duration=duration,
        width=video.codec_context.width,
        height=video.codec_context.height,
        fps=float(rate),
        video_codec=video.codec_context.name,
        pix_fmt=video.codec_context.pix_fmt or "",
        video_frames=frames,
        audio_codec=audio.codec_context.name if audio is not None else None,
        sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        channels=audio.codec_context.channels if audio is not None else None,
        audio_duration=audio_duration,
    )


def probe(path: Path) -> MediaInfo:
    """Read a video's headers and describe its first video and audio streams.

    Nothing is decoded beyond what FFmpeg needs to identify the streams (its first frames).
    ``video_frames`` comes from the container's index when it has one (MP4 does), else it
    is estimated from duration × fps. Raises MediaError when the file cannot be opened or
    has no video stream.
    """
    return _probe(Path(path), probe_decode=True)


def _probe(path: Path, *, probe_decode: bool) -> MediaInfo:
    container = _open_input(path, probe_decode=probe_decode)
    with container, _media_errors(path, "read the video", _BAD_INPUT):
        video = _first_video(container, path)
        rate = _video_rate(video)
        audio = container.streams.audio[0] if container.streams.audio else None
        v_seconds = _stream_seconds(video)
        a_seconds = _stream_seconds(audio) if audio is not None else None
        duration = _container_seconds(container)
        if duration is None:
            duration = float(max((s for s in (v_seconds, a_seconds) if s is not None), default=0))
        frames = video.frames or round(
            float(v_seconds if v_seconds is not None else duration) * rate
        )
        return _info(
            video,
            audio,
            rate,
            duration,
            frames,
            float(a_seconds) if a_seconds is not None else None,
        )


def verify(path: Path) -> MediaInfo:
    """Decode every frame of every audio and video stream; raise MediaError on any failure.

    Besides decoder errors, it catches the failure modes a decoder shrugs off: frames the
    decoder flags as corrupt, and files that end before their index says (a truncated MP4
    with its moov at the front still opens and decodes, just with fewer frames).
    """
    path = Path(path)
    container = _open_input(path, probe_decode=False)  # it decodes everything anyway
    with container, _media_errors(path, "decode the video", _BAD_INPUT):
        video = _first_video(container, path)
        audio = container.streams.audio[0] if container.streams.audio else None
        streams = [s for s in (video, audio) if s is not None]
        for stream in streams:
            # Frame threads make full decodes about twice as fast on two cores.
            stream.codec_context.thread_type = "AUTO"
        frames = 0
        samples = 0
        audio_end = 0  # in audio time base: where the packets say the audio ends
        for packet in container.demux(streams):
            if packet.dts is None and packet.size == 0:
                # The flush packet at the end of each stream: drains the decoder.
                pass
            elif packet.stream is audio and packet.pts is not None:
                audio_end = max(audio_end, packet.pts + (packet.duration or 0))
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                    continue
                if frame.is_corrupt:
                    raise MediaError(
                        f"{path}: frame at {frame.time or 0:.3f}s is corrupt. {_BAD_INPUT}"
                    )
                if isinstance(frame, av.VideoFrame):
                    frames += 1
                else:
                    samples += frame.samples
        if frames == 0:
            raise MediaError(f"{path}: the video stream has no decodable frame. {_BAD_INPUT}")
        if video.frames and frames < video.frames:
            raise _truncated(path, frames, video.frames)
        rate = _video_rate(video)
        audio_duration: float | None = None
        if audio is not None:
            sample_rate = audio.codec_context.sample_rate
            if samples == 0:
                raise MediaError(f"{path}: the audio stream has no decodable sample. {_BAD_INPUT}")
            # AAC decoders output whole 1024-sample frames; the last one is padding past the
            # end the packets declare, so the declared end caps the decoded length.
            audio_duration = samples / sample_rate
            if audio.time_base is not None and audio_end > 0:
                audio_duration = min(audio_duration, float(audio_end * audio.time_base))
            declared = _stream_seconds(audio)
            if (
                declared is not None
                and audio_duration < float(declared) - 2 * _AAC_FRAME / sample_rate
            ):
                raise MediaError(
                    f"{path}: audio stops at {audio_duration:.3f}s of {float(declared):.3f}s; "
                    f"the file is truncated. {_BAD_INPUT}"
                )
        video_seconds = frames / rate if rate else 0.0
        duration = max(float(video_seconds), audio_duration or 0.0)
        return _info(video, audio, rate, duration, frames, audio_duration)


# --------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------


def _add_video_encoder(
    out: av.container.OutputContainer, width: int, height: int, rate: Fraction
) -> av.video.stream.VideoStream:
    stream = out.add_stream("libx264", rate=rate, options={"preset": _PRESET})
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.codec_context.thread_count = _X264_THREADS
    stream.codec_context.time_base = 1 / rate
    # Tag what we feed it (BT.709, limited range) so players convert colours correctly.
    stream.codec_context.colorspace = _BT709
    stream.codec_context.color_primaries = _BT709
    stream.codec_context.color_trc = _BT709
    stream.codec_context.color_range = _RANGE_TV
    return stream


def _add_audio_encoder(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=_AUDIO_RATE)
    stream.layout = _AUDIO_LAYOUT
    stream.format = "fltp"
    stream.bit_rate = _AUDIO_BITRATE
    return stream


class _AudioWriter:
    """Feeds float32 (2, n) blocks to the AAC encoder with continuous sample timestamps."""

    def __init__(self, out: av.container.OutputContainer, stream: av.audio.stream.AudioStream):
        self.out = out
        self.stream = stream
        self.written = 0

    def write(self, samples: np.ndarray) -> None:
        if samples.shape[1] == 0:
            return
        import numpy as np

        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=_AUDIO_LAYOUT
        )
        frame.sample_rate = _AUDIO_RATE
        frame.time_base = Fraction(1, _AUDIO_RATE)
        frame.pts = self.written
        self.written += samples.shape[1]
        # PyAV re-chunks to the encoder's 1024-sample frames through its own FIFO.
        self.out.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.out.mux(self.stream.encode(None))


# --------------------------------------------------------------------------------------
# render_clip
# --------------------------------------------------------------------------------------


def _load_png(data: bytes, which: str) -> Image.Image:
    """Decode an image (PNG, or anything Pillow reads) to 8-bit RGB."""
    import numpy as np
    from PIL import Image, ImageOps

    img: Image.Image
    try:
        opened = Image.open(BytesIO(data))
        opened.load()
        img = ImageOps.exif_transpose(opened) or opened
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(
            f"the {which} image cannot be decoded ({exc}); re-generate it or check it is a "
            "valid PNG/JPEG file"
        ) from exc
    if img.mode.startswith("I"):
        # 16-bit grey: Pillow's convert("RGB") would clip it to white, so scale it down.
        img = Image.fromarray((np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8))
    if "A" in img.getbands() or "transparency" in img.info:
        # Transparent areas become black, as they would look over a video's black.
        rgba = img.convert("RGBA")
        base = Image.new("RGB", rgba.size, (0, 0, 0))
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return img.convert("RGB")


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale ``img`` to cover width×height and crop the centre (no bars, no stretching)."""
    from PIL import Image

    src_w, src_h = img.size
    target = width / height
    if src_w / src_h > target:  # too wide: crop the sides
        crop_w = src_h * target
        box = ((src_w - crop_w) / 2, 0.0, (src_w + crop_w) / 2, float(src_h))
    else:  # too tall: crop top and bottom
        crop_h = src_w / target
        box = (0.0, (src_h - crop_h) / 2, float(src_w), (src_h + crop_h) / 2)
    return img.resize((width, height), Image.Resampling.LANCZOS, box=box)


def _i420_planes(img: Image.Image) -> list[Image.Image]:
    """RGB image → [Y, U, V] 8-bit planes (BT.709, limited range) as Pillow 'L' images."""
    from PIL import Image

    width, height = img.size
    yuv = (
        av.VideoFrame.from_image(img)
        .reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        .to_ndarray()
    )
    flat = yuv.reshape(-1)
    y_size, c_size = width * height, (width // 2) * (height // 2)
    return [
        Image.fromarray(flat[:y_size].reshape(height, width)),
        Image.fromarray(flat[y_size : y_size + c_size].reshape(height // 2, width // 2)),
        Image.fromarray(flat[y_size + c_size :].reshape(height // 2, width // 2)),
    ]


def _ease(t: float) -> float:
    # Smoothstep: the dissolve starts and ends gently instead of with a visible kink.
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class _Window:
    """The visible part of the base image for one frame, in base-image pixels."""

    left: float
    top: float
    right: float
    bottom: float


def _plan_motion(
    motion: Motion, n_frames: int, width: int, height: int
) -> tuple[int, int, list[_Window] | None]:
    """Base-image size and the crop window of every frame (None: no motion at all).

    Geometry in units of the cover-fitted image (1.0 = frame width/height at zoom 1):
    a window of width 1/e centred at 0.5 + c. For it to stay inside the image,
    1/(2e) + |c| <= 1/2, i.e. e >= 1/(1 - 2|c|). The effective zoom e is the requested
    zoom times one extra scale s, chosen as the smallest that satisfies every frame.
    """
    for name in ("zoom_start", "zoom_end"):
        if not getattr(motion, name) > 0:
            raise MediaError(f"motion {name} must be greater than 0, got {getattr(motion, name)}")
    for name in ("pan_x", "pan_y"):
        if not abs(getattr(motion, name)) < 1:
            raise MediaError(
                f"motion {name} must be between -1 and 1 (a fraction of the frame), "
                f"got {getattr(motion, name)}"
            )
    if motion == Motion() or (
        motion.zoom_start == motion.zoom_end
        and motion.zoom_start <= 1
        and not (motion.pan_x or motion.pan_y)
    ):
        return width, height, None
    ts = [i / (n_frames - 1) if n_frames > 1 else 0.0 for i in range(n_frames)]
    ratio = motion.zoom_end / motion.zoom_start
    zooms = [motion.zoom_start * ratio**t for t in ts]
    centres = [(motion.pan_x * (t - 0.5), motion.pan_y * (t - 0.5)) for t in ts]
    extra = max(
        1.0,
        *(1 / (z * (1 - 2 * abs(cx))) for z, (cx, _) in zip(zooms, centres, strict=True)),
        *(1 / (z * (1 - 2 * abs(cy))) for z, (_, cy) in zip(zooms, centres, strict=True)),
    )
    effective = [z * extra for z in zooms]
    # Render the base at the largest zoom's resolution, so the window is never upscaled
    # from a low-resolution copy (capped: beyond 3x, bilinear upscaling is acceptable).
    base_scale = min(max(effective), 3.0)
    base_w = 2 * math.ceil(width * base_scale / 2)
    base_h = 2 * math.ceil(height * base_scale / 2)
    windows = []
    for e, (cx, cy) in zip(effective, centres, strict=True):
        half_w, half_h = 0.5 / e, 0.5 / e
        # Clamp against float rounding so the window never leaves the image.
        left = min(max(0.5 + cx - half_w, 0.0), 1.0 - 2 * half_w)
        top = min(max(0.5 + cy - half_h, 0.0), 1.0 - 2 * half_h)
        windows.append(
            _Window(
                left * base_w,
                top * base_h,
                (left + 2 * half_w) * base_w,
                (top + 2 * half_h) * base_h,
            )
        )
    return base_w, base_h, windows


def _ambient_pad(seed: int, n_samples: int, rate: int = _AUDIO_RATE) -> np.ndarray:
    """A quiet, slowly breathing chord in stereo, float32 (2, n). Same seed, same sound.

    The root and chord come from ``random.Random(seed)`` (stable across Python versions
    and platforms); the voices are sines with a soft second harmonic, each a detuned pair
    (slow chorus beating), with its own slow swell and stereo position. Peak -20 dBFS with
    raised-cosine fades, so hard cuts between clips do not click.
    """
    import numpy as np

    rng = random.Random(seed)
    chords = [
        (0, 7, 16, 23),  # major 9 spread (root, fifth, 10th, 14th)
        (0, 7, 15, 22),  # minor 7 spread
        (0, 7, 14, 19),  # sus2 with octave fifth
        (0, 4, 7, 14),  # add9
        (0, 3, 10, 14),  # minor 9
    ]
    root = 45 + rng.randrange(12)  # A2 .. G#3
    chord = rng.choice(chords)
    t = np.arange(n_samples, dtype=np.float64) / rate

    def sine(freq: float, phase: float) -> np.ndarray:
        # Phase in float64 (long clips), wrapped to one cycle, then a float32 sine:
        # numpy's float32 sin is vectorised and ~15x faster than float64.
        cycles = freq * t + phase / (2 * np.pi)
        return np.sin((2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32))

    out = np.zeros((2, n_samples), dtype=np.float32)
    for index, interval in enumerate(chord):
        freq = 440.0 * 2.0 ** ((root + interval - 69) / 12)
        amp = 1.0 / (1.0 + 0.6 * index)
        swell = 0.65 + 0.35 * sine(rng.uniform(0.05, 0.18), rng.uniform(0, 2 * np.pi))
        voice = np.zeros(n_samples, dtype=np.float32)
        for detune in (0.9985, 1.0015):
            phase = rng.uniform(0, 2 * np.pi)
            voice += sine(freq * detune, phase) + 0.2 * sine(2 * freq * detune, 2 * phase)
        pan = rng.uniform(0.2, 0.8) * np.pi / 2
        voice *= amp * swell
        out[0] += voice * np.float32(np.cos(pan))
        out[1] += voice * np.float32(np.sin(pan))
    peak = float(np.max(np.abs(out))) or 1.0
    out *= np.float32(0.1 / peak)  # -20 dBFS: a bed under a voice-over, never the focus
    fade = min(int(0.25 * rate), n_samples // 4)
    if fade > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))).astype(np.float32)
        out[:, :fade] *= ramp
        out[:, n_samples - fade :] *= ramp[::-1]
    return out


def render_clip(
    start_png: bytes,
    end_png: bytes,
    out_path: Path,
    *,
    duration: float,
    width: int,
    height: int,
    fps: int = 24,
    motion: Motion = Motion(),
    audio_seed: int | None = 0,
) -> None:
    """Render an animatic clip: an eased cross-dissolve from start to end image, with a move.

    Writes an MP4 at ``out_path`` (exactly as named; the caller renames it): H.264
    yuv420p, exactly ``round(duration * fps)`` frames stamped on a 1/fps grid (so the
    duration is exact), and unless ``audio_seed`` is None an AAC stereo 48 kHz ambient pad
    derived from the seed, exactly as long as the video (= ``duration`` whenever
    ``duration * fps`` is whole). Frame 0 is the start image, the last frame the end image.

    Images of any size or aspect are cover-fitted (centre crop, no bars). The output is
    byte-identical for identical inputs. Raises MediaError for an undecodable image or
    invalid parameters (odd width/height, non-positive duration).
    """
    import numpy as np
    from PIL import Image

    out_path = Path(out_path)
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise MediaError(
            f"cannot render {width}x{height}: width and height must be positive even numbers"
        )
    if fps <= 0:
        raise MediaError(f"cannot render at {fps} fps: the frame rate must be positive")
    n_frames = round(duration * fps)
    if n_frames < 1:
        raise MediaError(f"cannot render a {duration}s clip at {fps} fps: it would have no frame")
    base_w, base_h, windows = _plan_motion(motion, n_frames, width, height)
    start = _i420_planes(_cover(_load_png(start_png, "start"), base_w, base_h))
    same = start_png == end_png
    end = start if same else _i420_planes(_cover(_load_png(end_png, "end"), base_w, base_h))
    rate = Fraction(fps)
    pad = (
        _ambient_pad(audio_seed, round(n_frames * _AUDIO_RATE / rate))
        if audio_seed is not None
        else None
    )

    sizes = [(width, height), (width // 2, height // 2), (width // 2, height // 2)]

    def picture(i: int) -> np.ndarray:
        """Frame i as one I420 buffer (h*3/2, w)."""
        weight = 0.0 if same else _ease(i / (n_frames - 1) if n_frames > 1 else 1.0)
        if weight <= 0.0:
            planes = start
        elif weight >= 1.0:
            planes = end
        else:
            planes = [Image.blend(a, b, weight) for a, b in zip(start, end, strict=True)]
        if windows is not None:
            # Blend first, then one resize: resampling is linear, so it is the same
            # picture as moving both images, at half the cost. Pillow's resize takes a
            # fractional source box, so slow moves do not jitter by whole pixels (with
            # BILINEAR: BOX is cheaper but snaps to whole pixels when the scale is near 1).
            w = windows[i]
            planes = [
                plane.resize(
                    size,
                    Image.Resampling.BILINEAR,
                    box=(w.left / k, w.top / k, w.right / k, w.bottom / k),
                )
                for plane, size, k in zip(planes, sizes, (1, 2, 2), strict=True)
            ]
        buf = np.frombuffer(b"".join(p.tobytes() for p in planes), dtype=np.uint8)
        return buf.reshape(height * 3 // 2, width)

    out = _open_output(out_path)
    try:
        with (
            out,
            _media_errors(out_path, "write the clip", _CHECK_DISK),
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            video = _add_video_encoder(out, width, height, rate)
            writer = _AudioWriter(out, _add_audio_encoder(out)) if pad is not None else None
            # Pillow and the encoder both release the GIL: drawing the next frames in a
            # worker thread overlaps with x264, which alone does not keep two cores busy.
            # A short queue bounds memory (a 1080p frame is 3 MB).
            ahead: deque[Future[np.ndarray]] = deque()
            for i in range(n_frames):
                while len(ahead) < _RENDER_AHEAD and i + len(ahead) < n_frames:
                    ahead.append(pool.submit(picture, i + len(ahead)))
                frame = av.VideoFrame.from_ndarray(ahead.popleft().result(), format="yuv420p")
                frame.pts = i
                frame.time_base = video.codec_context.time_base
                out.mux(video.encode(frame))
                if writer is not None and pad is not None:
                    # Interleave: audio up to the end of this frame, so the muxer never
                    # buffers a whole track.
                    upto = round((i + 1) * _AUDIO_RATE / rate)
                    writer.write(pad[:, writer.written : upto])
            out.mux(video.encode(None))
            if writer is not None:
                writer.close()
    except BaseException:
        _remove_partial(out_path)
        raise


# --------------------------------------------------------------------------------------
# stitch
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clip:
    """What stitch needs to know about one input, read from its headers."""

    path: Path
    width: int
    height: int
    rate: Fraction
    seconds: Fraction  # video duration: the clip's length on the film's timeline
    copy_key: tuple[Any, ...]  # equal keys: packets can be concatenated without decoding
    video_copyable: bool
    has_audio: bool
    audio_key: tuple[Any, ...] | None
    audio_in_sync: bool  # audio about as long as the video: needed to copy without drift


def _inspect(path: Path) -> _Clip:
    container = _open_input(path, probe_decode=False)
    with container, _media_errors(path, "read the video", _BAD_INPUT):
        video = _first_video(container, path)
        vcc = video.codec_context
        rate = _video_rate(video)
        seconds = _stream_seconds(video)
        if not seconds:
            if video.frames and rate:
                seconds = Fraction(video.frames) / rate
            elif container.duration:
                seconds = Fraction(container.duration, av.time_base)
            else:
                raise MediaError(f"{path}: the video has no known duration. {_BAD_INPUT}")
        if not rate or not vcc.width or not vcc.height:
            raise MediaError(f"{path}: the video has no frame size or frame rate. {_BAD_INPUT}")
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_key = None
        in_sync = True
        if audio is not None:
            acc = audio.codec_context
            audio_key = (
                acc.name,
                acc.sample_rate,
                acc.channels,
                acc.frame_size,
                audio.time_base,
                bytes(acc.extradata or b""),
            )
            # Stream copy cannot pad a short track with silence, nor insert a gap (an MP4
            # track is contiguous): such clips go through the re-encoding path instead.
            audio_seconds = _stream_seconds(audio)
            in_sync = (
                audio_seconds is not None and abs(audio_seconds - seconds) <= _COPY_AUDIO_SLACK
            )
        # Same SPS/PPS (extradata) is required: the output has one avcC box for all clips.
        # The SPS also fixes the pixel format (unknown here: nothing was decoded).
        video_key = (
            vcc.name,
            vcc.width,
            vcc.height,
            rate,
            video.time_base,
            bytes(vcc.extradata or b""),
        )
        # A copied clip must start with a keyframe, or its first frames reference pictures
        # of the previous clip. Reading the first packet costs next to nothing.
        first_packet = next((p for p in container.demux(video) if p.size), None)
        starts_on_key = first_packet is not None and first_packet.is_keyframe
        return _Clip(
            path=path,
            width=vcc.width,
            height=vcc.height,
            rate=rate,
            seconds=seconds,
            copy_key=video_key,
            video_copyable=vcc.name == "h264"
            and starts_on_key
            and (audio is None or audio.codec_context.name == "aac"),
            has_audio=audio is not None,
            audio_key=audio_key,
            audio_in_sync=in_sync,
        )


def stitch(
    clips: Sequence[Path], out_path: Path, *, crossfade: float = 0.0, audio: bool = True
) -> StitchResult:
    """Join clips into one MP4 at ``out_path`` and report how, measured from the result.

    * ``crossfade == 0`` and every clip has the same H.264/AAC parameters: stream copy
      (mode "copy"), no re-encoding; fast and lossless.
    * otherwise, or when clips differ (size, frame rate, codec, audio present or not):
      decode and re-encode once (mode "reencode"), normalised to the first clip's size
      and frame rate; other aspect ratios are letterboxed/pillarboxed, clips without audio
      contribute silence.
    * ``crossfade > 0``: consecutive clips overlap by ``crossfade`` seconds, video and
      audio both cross-fade (mode "crossfade"); the film is shorter by crossfade × (n-1).
      The crossfade may not exceed half of the shortest clip.

    ``audio=False`` drops audio in every mode; with audio, a film gets an audio track
    when at least one clip has one. Raises MediaError for no clips, an unreadable or
    truncated clip or an impossible crossfade; a partially written output is removed.
    Stream copy does not decode, so damage inside a clip's frames is only caught by
    :func:`verify` (of the clip, or of the film).
    """
    if not clips:
        raise MediaError("nothing to stitch: the list of clips is empty")
    if not crossfade >= 0:
        raise MediaError(f"crossfade must be 0 or more seconds, got {crossfade}")
    out_path = Path(out_path)
    infos = [_inspect(Path(c)) for c in clips]
    if crossfade > 0 and len(infos) > 1:
        shortest = min(infos, key=lambda c: c.seconds)
        if crossfade > float(shortest.seconds) / 2 + 1e-9:
            raise MediaError(
                f"a {crossfade:g}s crossfade is too long: it may be at most half the shortest "
                f"clip ({shortest.path.name}, {float(shortest.seconds):.2f}s); use at most "
                f"{float(shortest.seconds) / 2:.2f}s"
            )
    first = infos[0]
    keys = {(c.copy_key, c.audio_key if audio else None) for c in infos}
    copyable = (
        all(c.video_copyable and (c.audio_in_sync or not audio) for c in infos) and len(keys) == 1
    )
    try:
        if (crossfade == 0 or len(infos) == 1) and copyable:
            mode = "copy"
            _stitch_copy(infos, out_path, audio=audio and first.has_audio)
        else:
            mode = "crossfade" if crossfade > 0 and len(infos) > 1 else "reencode"
            with_audio = audio and any(c.has_audio for c in infos)
            _stitch_reencode(
                infos,
                out_path,
                crossfade=crossfade if mode == "crossfade" else 0.0,
                audio=with_audio,
            )
    except BaseException:
        _remove_partial(out_path)
        raise
    info = _probe(out_path, probe_decode=False)
    return StitchResult(
        duration=info.duration,
        mode=mode,
        width=info.width,
        height=info.height,
        fps=info.fps,
        has_audio=info.audio_codec is not None,
    )


def _stitch_copy(infos: Sequence[_Clip], out_path: Path, *, audio: bool) -> None:
    """Concatenate packets, shifting timestamps: like ``ffmpeg -f concat -c copy``.

    Video: each clip's packets are offset by the durations of the clips before it; its
    DTS values stay monotonic because every clip starts on a keyframe with the same
    reorder delay. Audio: AAC packets carry 1024 samples each, a clip's audio is not a
    whole number of packets, and each clip starts with a priming packet (negative PTS)
    that overlaps the previous clip. MP4 cannot store overlaps or gaps in a track, so the
    packets are laid end to end, and a packet that would start more than half a packet
    before the running end is dropped (in practice each later clip's priming packet, and
    every other clip the first real one). That keeps the audio contiguous and monotonic,
    and within ±512 samples (±11 ms) of the video at every cut, without drift.
    """
    out = _open_output(out_path)
    with out:
        offset = Fraction(0)  # where the current clip starts on the film's timeline, seconds
        out_video: av.video.stream.VideoStream | None = None
        out_audio: av.audio.stream.AudioStream | None = None
        last_video_dts: int | None = None
        audio_end: int | None = None  # running end of written audio, in audio time base
        audio_tb: Fraction | None = None
        last_audio: av.packet.Packet | None = None
        last_audio_end = 0  # where the held-back packet's audio really ends (audio time base)
        for clip in infos:
            container = _open_input(clip.path, probe_decode=False)
            with container, _media_errors(clip.path, "read the clip", _BAD_INPUT):
                video = container.streams.video[0]
                in_audio = container.streams.audio[0] if audio else None
                if out_video is None:
                    out_video = out.add_stream_from_template(video)
                    if in_audio is not None:
                        out_audio = out.add_stream_from_template(in_audio)
                video_tb = video.time_base
                assert video_tb is not None
                # The clip's time origin is its first video frame.
                origin = Fraction(video.start_time or 0) * video_tb
                v_shift = round((offset - origin) / video_tb)
                a_shift = 0
                frame_ticks = 0
                clip_end = 0  # the clip's end on the film's timeline, in audio time base
                if in_audio is not None:
                    audio_tb = in_audio.time_base
                    assert audio_tb is not None
                    a_shift = round((offset - origin) / audio_tb)
                    clip_end = round((offset + clip.seconds) / audio_tb)
                    # Samples per AAC packet: 1024 for AAC-LC, 2048 for HE-AAC.
                    samples = in_audio.codec_context.frame_size or _AAC_FRAME
                    frame_ticks = round(
                        Fraction(samples, in_audio.codec_context.sample_rate) / audio_tb
                    )
                streams = [video] if in_audio is None else [video, in_audio]
                video_packets = 0
                for packet in container.demux(streams):
                    if packet.dts is None or packet.pts is None:
                        continue  # end-of-stream flush packets carry nothing
                    if packet.stream is video:
                        video_packets += 1
                        packet.pts += v_shift
                        packet.dts += v_shift
                        if last_video_dts is not None and packet.dts <= last_video_dts:
                            # Only with unusual reorder delays; the muxer refuses a step back.
                            packet.dts = last_video_dts + 1
                            packet.pts = max(packet.pts, packet.dts)
                        last_video_dts = packet.dts
                        packet.stream = out_video
                        out.mux_one(packet)
                        continue
                    ideal = packet.pts + a_shift
                    if ideal >= clip_end:
                        continue  # audio past the clip's last frame belongs to no one
                    if audio_end is None:
                        audio_end = ideal
                    elif ideal < audio_end - frame_ticks // 2:
                        continue  # overlaps audio already written (priming, see docstring)
                    if last_audio is not None:
                        out.mux_one(last_audio)
                    packet.pts = packet.dts = audio_end
                    packet.stream = out_audio  # type: ignore[assignment]
                    # A decoder turns every packet into a full 1024-sample frame, so that is
                    # how far the audio advances (a clip's short last packet included).
                    original_duration = packet.duration or frame_ticks
                    packet.duration = frame_ticks
                    audio_end += frame_ticks
                    # Hold one packet back: the film's very last packet gets a duration that
                    # ends the track where the last clip's audio really ends.
                    last_audio = packet
                    last_audio_end = ideal + original_duration
                # Copying does not decode, but a file cut short still shows: fewer packets
                # than its index promises.
                if video.frames and video_packets < video.frames:
                    raise _truncated(clip.path, video_packets, video.frames)
            offset += clip.seconds
        if last_audio is not None and last_audio.pts is not None:
            last_audio.duration = min(frame_ticks, max(1, last_audio_end - last_audio.pts))
            with _media_errors(out_path, "write the film", _CHECK_DISK):
                out.mux_one(last_audio)


def _fit_even(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int]:
    """Largest even size with the source's aspect ratio that fits inside dst (letterbox)."""
    scale = min(dst_w / src_w, dst_h / src_h)
    w = min(dst_w, max(2, 2 * round(src_w * scale / 2)))
    h = min(dst_h, max(2, 2 * round(src_h * scale / 2)))
    return w, h


class _Normaliser:
    """Converts decoded frames to the film's size and pixel format (yuv420p, BT.709)."""

    def __init__(self, width: int, height: int):
        self.width = width
        self.height = height

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        import numpy as np

        width, height = self.width, self.height
        if frame.width == width and frame.height == height:
            # The common case (clips from one renderer) passes through untouched. Other
            # pixel formats, full-range or BT.601 frames are converted to what we tag.
            if (
                frame.format.name != "yuv420p"
                or frame.colorspace not in _PASS_COLORSPACES
                or frame.color_range == _RANGE_PC
            ):
                frame = frame.reformat(
                    format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
                )
            return frame
        fit_w, fit_h = _fit_even(frame.width, frame.height, width, height)
        scaled = frame.reformat(
            width=fit_w,
            height=fit_h,
            format="yuv420p",
            dst_colorspace="ITU709",
            dst_color_range="MPEG",
            interpolation="BICUBIC",
        )
        if (fit_w, fit_h) == (width, height):
            return scaled
        # Bars: paste the scaled picture, plane by plane, into a black frame.
        src = scaled.to_ndarray().reshape(-1)
        canvas = np.empty(width * height * 3 // 2, dtype=np.uint8)
        y_size, c_size = width * height, (width // 2) * (height // 2)
        canvas[:y_size] = _BLACK_Y
        canvas[y_size:] = _BLACK_UV
        x0, y0 = (width - fit_w) // 2 // 2 * 2, (height - fit_h) // 2 // 2 * 2
        sy, sc = fit_w * fit_h, (fit_w // 2) * (fit_h // 2)
        dst_y = canvas[:y_size].reshape(height, width)
        dst_y[y0 : y0 + fit_h, x0 : x0 + fit_w] = src[:sy].reshape(fit_h, fit_w)
        for k in range(2):
            dst = canvas[y_size + k * c_size : y_size + (k + 1) * c_size].reshape(
                height // 2, width // 2
            )
            plane = src[sy + k * sc : sy + (k + 1) * sc].reshape(fit_h // 2, fit_w // 2)
            dst[y0 // 2 : y0 // 2 + fit_h // 2, x0 // 2 : x0 // 2 + fit_w // 2] = plane
        out = av.VideoFrame.from_ndarray(canvas.reshape(height * 3 // 2, width), format="yuv420p")
        return out


class _ClipReader:
    """Decodes one clip once: yields its video frames resampled to the film's frame rate
    and, as a side effect, collects its audio (a few MB per clip at most)."""

    def __init__(self, clip: _Clip, n_frames: int, rate: Fraction, n_samples: int, audio: bool):
        self.clip = clip
        self.n_frames = n_frames
        self.rate = rate
        self.n_samples = n_samples
        self.want_audio = audio and clip.has_audio
        self.audio_blocks: list[np.ndarray] = []
        self.audio_start: float | None = None

    def frames(self) -> Iterator[av.VideoFrame]:
        """Exactly n_frames frames: input frames picked by timestamp, repeated or dropped to
        convert the frame rate (an animatic needs no motion interpolation)."""
        clip = self.clip
        container = _open_input(clip.path, probe_decode=False)
        with container, _media_errors(clip.path, "decode the clip", _BAD_INPUT):
            video = container.streams.video[0]
            video.codec_context.thread_type = "AUTO"
            streams: list[av.stream.Stream] = [video]
            resampler = None
            if self.want_audio:
                streams.append(container.streams.audio[0])
                resampler = av.AudioResampler(format="fltp", layout=_AUDIO_LAYOUT, rate=_AUDIO_RATE)
            origin = float(Fraction(video.start_time or 0) * (video.time_base or 1))
            decoded = self._decode(container, streams, video, resampler, origin)
            current = next(decoded, None)
            if current is None:
                raise MediaError(f"{clip.path}: the video has no decodable frame. {_BAD_INPUT}")
            upcoming = next(decoded, None)
            half_in = 0.5 / float(clip.rate)
            for j in range(self.n_frames):
                t = j / float(self.rate)
                # Show the latest input frame that has started by time t (with half an
                # input frame of tolerance against timestamp rounding).
                while upcoming is not None and upcoming[0] <= t + half_in * 0.999:
                    current, upcoming = upcoming, next(decoded, None)
                yield current[1]
            # Drain: the rest of the audio comes after the last frame we needed.
            for _ in decoded:
                pass

    def _decode(
        self,
        container: av.container.InputContainer,
        streams: list[av.stream.Stream],
        video: av.video.stream.VideoStream,
        resampler: av.AudioResampler | None,
        origin: float,
    ) -> Iterator[tuple[float, av.VideoFrame]]:
        decoded = 0
        for packet in container.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    decoded += 1
                    yield ((frame.time or 0.0) - origin, frame)
                elif isinstance(frame, av.AudioFrame) and resampler is not None:
                    if self.audio_start is None and frame.time is not None:
                        self.audio_start = frame.time - origin
                    for out in resampler.resample(frame):
                        self.audio_blocks.append(out.to_ndarray())
        if resampler is not None:
            for out in resampler.resample(None):
                self.audio_blocks.append(out.to_ndarray())
        if video.frames and decoded < video.frames:
            raise _truncated(self.clip.path, decoded, video.frames)

    def audio_samples(self) -> np.ndarray:
        """The clip's audio, float32 (2, n_samples): aligned to its first video frame,
        cut or padded with silence to the clip's length (silence if it has none)."""
        import numpy as np

        out = np.zeros((2, self.n_samples), dtype=np.float32)
        if not self.audio_blocks:
            return out
        data = np.concatenate(self.audio_blocks, axis=1)
        self.audio_blocks = []
        lead = round((self.audio_start or 0.0) * _AUDIO_RATE)
        if lead < 0:
            data, lead = data[:, -lead:], 0
        n = max(0, min(data.shape[1], self.n_samples - lead))
        out[:, lead : lead + n] = data[:, :n]
        return out


def _blend_frames(a: np.ndarray, b: np.ndarray, weight: float) -> av.VideoFrame:
    """Mix two I420 buffers (shape (h*3/2, w)); weight 0 → a, 1 → b.

    Mixing in YUV equals mixing in RGB (the conversion is affine). Pillow's blend is a
    tight C loop, about 5x faster than the same arithmetic in numpy.
    """
    import numpy as np
    from PIL import Image

    mixed = Image.blend(Image.fromarray(a), Image.fromarray(b), weight)
    return av.VideoFrame.from_ndarray(np.asarray(mixed), format="yuv420p")


def _stitch_reencode(
    infos: Sequence[_Clip], out_path: Path, *, crossfade: float, audio: bool
) -> None:
    """Decode every clip once, normalise, blend the overlaps, encode once.

    Memory stays bounded: frames stream from decoder to encoder; only the last
    ``crossfade`` seconds of the previous clip (frames and samples) are held for blending.
    Timing is on the film's frame grid: clip k has round(seconds × fps) frames and exactly
    the matching number of audio samples, so audio cannot drift from video.
    """
    import numpy as np

    first = infos[0]
    rate = first.rate
    width, height = first.width - first.width % 2, first.height - first.height % 2
    n_frames = [max(1, round(c.seconds * rate)) for c in infos]
    overlap = round(Fraction(crossfade) * rate) if crossfade > 0 else 0
    overlap = min(overlap, *(n // 2 for n in n_frames))
    # Audio lengths follow the frame grid (exact for 24/25/30 fps at 48 kHz).
    bounds = np.cumsum([0, *n_frames])
    n_samples = [
        round(int(b1) * _AUDIO_RATE / rate) - round(int(b0) * _AUDIO_RATE / rate)
        for b0, b1 in itertools.pairwise(bounds)
    ]
    overlap_samples = round(overlap * _AUDIO_RATE / rate)
    normalise = _Normaliser(width, height)

    out = _open_output(out_path)
    with out, _media_errors(out_path, "write the film", _CHECK_DISK):
        video = _add_video_encoder(out, width, height, rate)
        writer = _AudioWriter(out, _add_audio_encoder(out)) if audio else None
        index = 0  # output frame number
        tail_frames: list[np.ndarray] = []
        tail_audio: np.ndarray | None = None

        def emit(frame: av.VideoFrame) -> None:
            nonlocal index
            frame.pts = index
            frame.time_base = video.codec_context.time_base
            # Decoded frames remember their I/P/B type, which x264 would obey: let it choose.
            frame.pict_type = 0
            out.mux(video.encode(frame))
            index += 1

        for k, clip in enumerate(infos):
            last = k == len(infos) - 1
            reader = _ClipReader(clip, n_frames[k], rate, n_samples[k], audio)
            head = overlap if k > 0 else 0
            tail_start = n_frames[k] - overlap if not last else n_frames[k]
            new_tail: list[np.ndarray] = []
            for j, frame in enumerate(reader.frames()):
                frame = normalise(frame)
                if j < head:
                    # Linear ramp that never reaches 0 or 1: every overlap frame is a mix.
                    emit(_blend_frames(tail_frames[j], frame.to_ndarray(), (j + 1) / (overlap + 1)))
                elif j >= tail_start:
                    new_tail.append(frame.to_ndarray())
                else:
                    emit(frame)
            tail_frames = new_tail
            if writer is not None:
                samples = reader.audio_samples()
                if tail_audio is not None and overlap_samples:
                    # Equal-power fade: two unrelated sounds keep a constant loudness.
                    ramp = (np.arange(overlap_samples, dtype=np.float32) + 0.5) / overlap_samples
                    fade_in = np.sin(ramp * (np.pi / 2))
                    fade_out = np.cos(ramp * (np.pi / 2))
                    samples[:, :overlap_samples] = (
                        samples[:, :overlap_samples] * fade_in + tail_audio * fade_out
                    )
                keep = samples.shape[1] - (overlap_samples if not last else 0)
                writer.write(samples[:, :keep])
                tail_audio = samples[:, keep:] if not last else None
        out.mux(video.encode(None))
        if writer is not None:
            writer.close()
