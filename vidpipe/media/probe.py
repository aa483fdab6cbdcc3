"""Probe a video file's headers, or decode it whole to verify it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import av.error

from vidpipe.errors import MediaError
from vidpipe.media.base import (
    AAC_FRAME,
    BAD_INPUT,
    MediaInfo,
    _truncated,
    media_errors,
    open_input,
)

if TYPE_CHECKING:
    pass


# --------------------------------------------------------------------------------------
# probe / verify
# --------------------------------------------------------------------------------------


def _first_video(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream found (or its header is damaged). {BAD_INPUT}")
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
    container = open_input(path, probe_decode=probe_decode)
    with container, media_errors(path, "read the video", BAD_INPUT):
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
    container = open_input(path, probe_decode=False)  # it decodes everything anyway
    with container, media_errors(path, "decode the video", BAD_INPUT):
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
                        f"{path}: frame at {frame.time or 0:.3f}s is corrupt. {BAD_INPUT}"
                    )
                if isinstance(frame, av.VideoFrame):
                    frames += 1
                else:
                    samples += frame.samples
        if frames == 0:
            raise MediaError(f"{path}: the video stream has no decodable frame. {BAD_INPUT}")
        if video.frames and frames < video.frames:
            raise _truncated(path, frames, video.frames)
        rate = _video_rate(video)
        audio_duration: float | None = None
        if audio is not None:
            sample_rate = audio.codec_context.sample_rate
            if samples == 0:
                raise MediaError(f"{path}: the audio stream has no decodable sample. {BAD_INPUT}")
            # AAC decoders output whole 1024-sample frames; the last one is padding past the
            # end the packets declare, so the declared end caps the decoded length.
            audio_duration = samples / sample_rate
            if audio.time_base is not None and audio_end > 0:
                audio_duration = min(audio_duration, float(audio_end * audio.time_base))
            declared = _stream_seconds(audio)
            if (
                declared is not None
                and audio_duration < float(declared) - 2 * AAC_FRAME / sample_rate
            ):
                raise MediaError(
                    f"{path}: audio stops at {audio_duration:.3f}s of {float(declared):.3f}s; "
                    f"the file is truncated. {BAD_INPUT}"
                )
        video_seconds = frames / rate if rate else 0.0
        duration = max(float(video_seconds), audio_duration or 0.0)
        return _info(video, audio, rate, duration, frames, audio_duration)
