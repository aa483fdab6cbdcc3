"""Shared by every media module: encoder settings, error handling, opening and writing files.

Everything goes through PyAV (the FFmpeg libraries bundled in its wheel), so no ``ffmpeg``
binary is needed. Every failure caused by the media itself (unreadable PNG, corrupt or
truncated MP4, clips that cannot be joined) surfaces as :class:`vidpipe.errors.MediaError`
with a sentence the user can act on; no raw ``av`` exception escapes for a bad input file.

Output files are always MP4 with H.264 (yuv420p, BT.709 tags) and, when there is audio,
AAC at 48 kHz stereo. The moov atom is written at the front (``movflags=faststart``): it
costs one extra copy of the file when it is closed, a few milliseconds for an animatic,
and lets browsers start playing a stitched film before it is fully downloaded.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import av
import av.error

from vidpipe.errors import MediaError

if TYPE_CHECKING:
    import numpy as np


# x264 dominates rendering and re-encoding time. Measured on a 4 s 720p dissolve (2 cores):
# superfast needs ~55% of veryfast's CPU for the same quality (Y-PSNR 48.5 vs 47.2 dB at
# CRF 23) in a ~1.6x larger file, about 1.6 Mbit/s: a good trade for animatics.
PRESET = "superfast"
# x264's output depends on its thread count, and "auto" depends on the machine's cores.
# A fixed count makes the output independent of the core count (identical re-renders).
X264_THREADS = 4
# Frames drawn ahead of the encoder by the worker thread.
RENDER_AHEAD = 3
AUDIO_RATE = 48_000
AUDIO_LAYOUT = "stereo"
AUDIO_BITRATE = 128_000
AAC_FRAME = 1024
# Stream copy needs each clip's audio to last as long as its video, give or take this.
COPY_AUDIO_SLACK = Fraction(1, 20)
# Written by every muxer here: moov at the front of the file.
MP4_OPTIONS = {"movflags": "+faststart"}
# FFmpeg's enum values for BT.709 primaries / transfer / matrix, and limited ("tv") range.
BT709 = 1
RANGE_TV = 1
RANGE_PC = 2
# Decoded frames in these colour spaces (BT.709, unspecified) need no conversion.
PASS_COLORSPACES = (BT709, 2)
# Video black in limited-range YUV, used for letterbox bars.
BLACK_Y = 16
BLACK_UV = 128


# Records here are NamedTuples: a frozen dataclass compiles its methods from source when
# its module is imported, ~2 ms each, paid by every command that touches media.
class MediaInfo(NamedTuple):
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


# --------------------------------------------------------------------------------------
# Error handling
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def media_errors(path: Path, doing: str, advice: str) -> Iterator[None]:
    """Turn FFmpeg/IO failures into a MediaError that says what failed and what to do."""
    try:
        yield
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MediaError(f"{path}: cannot {doing} ({detail}). {advice}") from exc


BAD_INPUT = "The file is corrupt, truncated or not a video: re-generate or re-download it."
CHECK_DISK = "Check the disk has space and the folder is writable."


# Opening a file makes FFmpeg open decoders and decode its first frames to fill in
# details such as the pixel format and the audio frame size (avformat_find_stream_info):
# ~20 ms per 720p clip here, most of a stream-copy stitch. Readers that do not need those
# details, or decode anyway (with decoders of their own, unaffected by these options),
# skip it: no decoder is opened, and as the pixel format then stays unknown, FFmpeg
# would read packets in search of it for up to 5 s of stream (all of a 4 s clip) were
# it not told to stop after 0.1 s. An MP4's headers give sizes, rates and durations.
NO_PROBE_DECODE = {"skip_frame": "all", "analyzeduration": "100000", "codec_whitelist": "none"}


def open_input(path: Path, *, probe_decode: bool = True) -> av.container.InputContainer:
    with media_errors(path, "open the video", BAD_INPUT):
        if not path.is_file():
            raise MediaError(
                f"{path}: no such video file. Check the path, or re-generate the clip."
            )
        options = None if probe_decode else dict(NO_PROBE_DECODE)
        return av.open(str(path), "r", options=options)


def open_output(path: Path, *, sorted_by_time: bool = False) -> av.container.OutputContainer:
    """An MP4 to write. ``sorted_by_time``: the muxer holds packets until every stream
    has caught up, however far one lags (FFmpeg otherwise stops waiting after 10 s), so
    the file's layout does not depend on when a background encoder delivers."""
    options = dict(MP4_OPTIONS)
    if sorted_by_time:
        options["max_interleave_delta"] = "0"
    # The caller may write to a temporary name without a .mp4 suffix: force the muxer.
    with media_errors(path, "create the output video", "Check the folder exists and is writable."):
        return av.open(str(path), "w", format="mp4", options=options)


def remove_partial(path: Path) -> None:
    # A half-written MP4 has no index and would only confuse a later run.
    with contextlib.suppress(OSError):
        path.unlink()


def _truncated(path: Path, found: int, declared: int) -> MediaError:
    return MediaError(
        f"{path}: only {found} of its {declared} video frames could be read: the file is "
        "truncated. Re-generate or re-download it."
    )


# --------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------


def add_video_encoder(
    out: av.container.OutputContainer, width: int, height: int, rate: Fraction
) -> av.video.stream.VideoStream:
    # forced-idr: a frame marked I by the caller becomes an IDR, so a copy can start there
    # (the renderer marks the crossfade edges); without such marks it changes nothing.
    stream = out.add_stream("libx264", rate=rate, options={"preset": PRESET, "forced-idr": "1"})
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.codec_context.thread_count = X264_THREADS
    stream.codec_context.time_base = 1 / rate
    # Tag what we feed it (BT.709, limited range) so players convert colours correctly.
    stream.codec_context.colorspace = BT709
    stream.codec_context.color_primaries = BT709
    stream.codec_context.color_trc = BT709
    stream.codec_context.color_range = RANGE_TV
    return stream


def add_audio_encoder(
    out: av.container.OutputContainer, *, fast: bool = False
) -> av.audio.stream.AudioStream:
    # FFmpeg's default AAC coder (twoloop) costs more than a smart stitch's video: the
    # "fast" coder takes under half its CPU (42 s of stereo: 0.50 s vs 1.12 s here).
    options = {"aac_coder": "fast"} if fast else {}
    stream = out.add_stream("aac", rate=AUDIO_RATE, options=options)
    stream.layout = AUDIO_LAYOUT
    stream.format = "fltp"
    stream.bit_rate = AUDIO_BITRATE
    return stream


class AudioWriter:
    """Feeds float32 (2, n) blocks to the AAC encoder with continuous sample timestamps.

    ``background=True`` encodes in a thread of its own (FFmpeg's encoder runs without
    the interpreter lock) while the caller goes on with the video; packets are still
    muxed by the caller's thread, in order. Use it as a context manager then, so the
    thread is done with the encoder before the container is closed, even on failure.
    """

    def __init__(
        self,
        out: av.container.OutputContainer,
        stream: av.audio.stream.AudioStream,
        *,
        background: bool = False,
    ):
        self.out = out
        self.stream = stream
        self.written = 0
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[Future[list[av.Packet]]] = deque()
        if background:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidpipe-aac")

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def write(self, samples: np.ndarray) -> None:
        if samples.shape[1] == 0:
            return
        import numpy as np

        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout=AUDIO_LAYOUT
        )
        frame.sample_rate = AUDIO_RATE
        frame.time_base = Fraction(1, AUDIO_RATE)
        frame.pts = self.written
        first = self.written == 0
        self.written += samples.shape[1]
        # PyAV re-chunks to the encoder's 1024-sample frames through its own FIFO.
        if self.pool is None or first:
            # (The first block is encoded here: it opens the encoder, in the muxing thread.)
            self.out.mux(self.stream.encode(frame))
            return
        self.pending.append(self.pool.submit(self.stream.encode, frame))
        while self.pending and (self.pending[0].done() or len(self.pending) > 2):
            self.out.mux(self.pending.popleft().result())

    def close(self) -> None:
        if self.pool is not None:
            self.pending.append(self.pool.submit(self.stream.encode, None))
            while self.pending:
                self.out.mux(self.pending.popleft().result())
            return
        self.out.mux(self.stream.encode(None))
