"""The local provider's animatic clips: a start and an end keyframe become a short H.264 +
AAC clip with a dissolve and the camera move the motion prompt names.
"""

from __future__ import annotations

import math
import random
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error
from av.video.frame import PictureType

from vidpipe.errors import MediaError
from vidpipe.media import base
from vidpipe.media.base import (
    AUDIO_RATE,
    CHECK_DISK,
    AudioWriter,
    add_audio_encoder,
    add_video_encoder,
    media_errors,
    open_output,
    remove_partial,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


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


def _ambient_pad(seed: int, n_samples: int, rate: int = AUDIO_RATE) -> np.ndarray:
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
    keyframe_edges: float = 0.0,
) -> None:
    """Render an animatic clip: an eased cross-dissolve from start to end image, with a move.

    Writes an MP4 at ``out_path`` (exactly as named; the caller renames it): H.264
    yuv420p, exactly ``round(duration * fps)`` frames stamped on a 1/fps grid (so the
    duration is exact), and unless ``audio_seed`` is None an AAC stereo 48 kHz ambient pad
    derived from the seed, exactly as long as the video (= ``duration`` whenever
    ``duration * fps`` is whole). Frame 0 is the start image, the last frame the end image.

    ``keyframe_edges`` > 0 forces IDR frames that many seconds from each end: where a
    crossfade of that length starts and ends, so a stitch can copy everything between
    the windows (see vidpipe.media.smart).

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
        _ambient_pad(audio_seed, round(n_frames * AUDIO_RATE / rate))
        if audio_seed is not None
        else None
    )

    sizes = [(width, height), (width // 2, height // 2), (width // 2, height // 2)]
    edge = round(keyframe_edges * fps) if keyframe_edges > 0 else 0
    forced = {i for i in (edge, n_frames - edge) if 0 < i < n_frames} if edge else set()

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

    out = open_output(out_path)
    try:
        ahead_n = base.RENDER_AHEAD
        with (
            out,
            media_errors(out_path, "write the clip", CHECK_DISK),
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            video = add_video_encoder(out, width, height, rate)
            # The pad is a quiet bed under an animatic: the fast AAC coder takes about half
            # the default's CPU (~50 ms per second of audio here, a fifth of a 360p clip).
            writer = (
                AudioWriter(out, add_audio_encoder(out, fast=True)) if pad is not None else None
            )
            # Pillow and the encoder both release the GIL: drawing the next frames in a
            # worker thread overlaps with x264, which alone does not keep two cores busy.
            # A short queue bounds memory (a 1080p frame is 3 MB).
            ahead: deque[Future[np.ndarray]] = deque()
            for i in range(n_frames):
                while len(ahead) < ahead_n and i + len(ahead) < n_frames:
                    ahead.append(pool.submit(picture, i + len(ahead)))
                drawn = ahead.popleft().result() if ahead_n else picture(i)
                frame = av.VideoFrame.from_ndarray(drawn, format="yuv420p")
                frame.pts = i
                frame.time_base = video.codec_context.time_base
                if i in forced:
                    frame.pict_type = PictureType.I
                out.mux(video.encode(frame))
                if writer is not None and pad is not None:
                    # Interleave: audio up to the end of this frame, a quarter of a second at
                    # a time, so the muxer never buffers a whole track (and the encoder is
                    # not called, holding the GIL around it, for every frame).
                    upto = round((i + 1) * AUDIO_RATE / rate)
                    if upto - writer.written >= AUDIO_RATE // 4 or i == n_frames - 1:
                        writer.write(pad[:, writer.written : upto])
            out.mux(video.encode(None))
            if writer is not None:
                writer.close()
    except BaseException:
        remove_partial(out_path)
        raise
