"""Finish a stitched film: intro and outro cards, a music bed, loudness, burnt-in captions.

One pass decodes the stitched film and encodes the finished one (H.264 + AAC, the film's
size and frame rate): the intro card's frames, the film's (captions drawn in when asked),
the outro's. Cards are normalised to the film: an image is held for its seconds, a video
card's frames are resampled to the film's rate, and either is fitted to the film's size
with bars (``pad``) or by cutting the edges (``crop``); a card without sound is silent.

The sound is assembled as arrays on the same frame grid (so it cannot drift): the cards'
and the film's own audio, then the music looped or trimmed to the whole length, faded,
set to the program's loudness and ducked under it, then the mix brought to the target
loudness with true peaks under the ceiling — checked after an AAC round trip, since the
encoder moves peaks a little.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av

from vidpipe.errors import MediaError
from vidpipe.media.audio import (
    Loudness,
    decode_audio,
    duck_gain,
    fades,
    fit_length,
    measure,
    music_bed,
    normalise,
    samples_for,
)
from vidpipe.media.base import (
    BAD_INPUT,
    CHECK_DISK,
    AudioWriter,
    add_audio_encoder,
    add_video_encoder,
    media_errors,
    open_input,
    open_output,
    remove_partial,
)
from vidpipe.media.captions import Burner, Cue, shifted
from vidpipe.media.probe import _first_video, _probe, _stream_seconds, _video_rate

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

#: AAC moves true peaks by a few tenths of a dB: the mix is checked after a round trip.
AAC_ATTEMPTS = 3


@dataclass(frozen=True)
class Card:
    """An intro or outro: an image held for `seconds`, or a video file played whole."""

    image: Path | None = None
    video: Path | None = None
    seconds: float = 2.0
    fade: float = 0.0
    fit: str = "pad"  # pad | crop


@dataclass(frozen=True)
class Music:
    """A music bed under the whole film."""

    file: Path
    duck_db: float = 12.0
    fade: float = 1.0


@dataclass(frozen=True)
class FinishResult:
    """What :func:`finish` wrote, measured from the file."""

    duration: float
    width: int
    height: int
    rate: Fraction
    intro_frames: int
    film_frames: int
    outro_frames: int
    cues: list[Cue] = field(default_factory=list)  # on the finished film's timeline
    loudness: Loudness | None = None  # of the written audio; None without audio

    @property
    def fps(self) -> float:
        return float(self.rate)


def finish(
    film: Path,
    out_path: Path,
    *,
    intro: Card | None = None,
    outro: Card | None = None,
    music: Music | None = None,
    target_lufs: float = -14.0,
    true_peak_db: float = -1.0,
    cues: Sequence[Cue] = (),
    burn: bool = False,
) -> FinishResult:
    """Write the finished film to `out_path`; `cues` are frames of the stitched `film`.

    Raises MediaError for an unreadable input; a partially written output is removed.
    """
    import numpy as np

    width, height, rate = _film_format(film)
    film_sound = decode_audio(film, what="stitched film's audio")
    intro_plan = _card(intro, width, height, rate, "intro") if intro is not None else None
    outro_plan = _card(outro, width, height, rate, "outro") if outro is not None else None
    bed = _music(music) if music is not None else None
    sounds = [
        intro_plan[1] if intro_plan else None,
        film_sound,
        outro_plan[1] if outro_plan else None,
    ]
    intro_frames = intro_plan[2] if intro_plan else 0
    outro_frames = outro_plan[2] if outro_plan else 0
    final_cues = shifted(cues, intro_frames)
    burner = Burner(final_cues, width, height) if burn and final_cues else None
    try:
        out = open_output(out_path)
        with out, media_errors(out_path, "write the finished film", CHECK_DISK):
            video = add_video_encoder(out, width, height, rate)
            # Every stream is declared before the first packet is written.
            has_audio = bed is not None or any(s is not None for s in sounds)
            writer = AudioWriter(out, add_audio_encoder(out)) if has_audio else None
            written = 0

            def emit(frames: Iterator[av.VideoFrame]) -> int:
                nonlocal written
                count = 0
                for frame in frames:
                    frame.pts = written
                    frame.time_base = video.codec_context.time_base
                    frame.pict_type = 0  # let x264 choose, not the decoder's frame types
                    out.mux(video.encode(frame))
                    written += 1
                    count += 1
                return count

            if intro_plan is not None:
                emit(intro_plan[0])
            film_frames = emit(_film_frames(film, burner, intro_frames))
            if outro_plan is not None:
                emit(outro_plan[0])
            out.mux(video.encode(None))
            if writer is not None:
                lengths = (intro_frames, film_frames, outro_frames)
                program = np.concatenate(
                    [
                        fit_length(s if s is not None else np.zeros((2, 0), np.float32), n)
                        for s, n in zip(
                            sounds, (samples_for(k, rate) for k in lengths), strict=True
                        )
                    ],
                    axis=1,
                )
                mix = _mix(program, bed, music) if bed is not None and music else program
                writer.write(_loud(mix, target_lufs, true_peak_db))
                writer.close()
    except BaseException:
        remove_partial(out_path)
        raise
    info = _probe(out_path, probe_decode=False)
    loudness = measure(decode_audio(out_path)) if info.audio_codec else None  # type: ignore[arg-type]
    return FinishResult(
        duration=info.duration,
        width=width,
        height=height,
        rate=rate,
        intro_frames=intro_frames,
        film_frames=film_frames,
        outro_frames=outro_frames,
        cues=list(final_cues),
        loudness=loudness,
    )


def _film_format(film: Path) -> tuple[int, int, Fraction]:
    container = open_input(film, probe_decode=False)
    with container, media_errors(film, "read the stitched film", BAD_INPUT):
        video = _first_video(container, film)
        rate = _video_rate(video)
        width, height = video.codec_context.width, video.codec_context.height
    if not rate or not width or not height:
        raise MediaError(f"{film}: the video has no frame size or frame rate. {BAD_INPUT}")
    return width - width % 2, height - height % 2, rate


def _yuv(picture: Image.Image) -> av.VideoFrame:
    frame = av.VideoFrame.from_image(picture.convert("RGB"))
    return frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")


def _film_frames(film: Path, burner: Burner | None, first: int) -> Iterator[av.VideoFrame]:
    """The stitched film's frames in order, with captions drawn in by `burner`."""
    container = open_input(film, probe_decode=False)
    with container, media_errors(film, "decode the stitched film", BAD_INPUT):
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            yield burner(frame, first + i) if burner is not None else frame


# -- cards ----------------------------------------------------------------------------------


def fitted(picture: Image.Image, width: int, height: int, fit: str) -> Image.Image:
    """`picture` at the film's size: letterboxed/pillarboxed (`pad`) or cut to fill (`crop`)."""
    from PIL import Image

    picture = picture.convert("RGB")
    if picture.size == (width, height):
        return picture
    scale = (max if fit == "crop" else min)(width / picture.width, height / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    scaled = picture.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    canvas.paste(scaled, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def _fade_weight(i: int, n: int, fade_frames: float) -> float:
    if fade_frames <= 0:
        return 1.0
    return max(0.0, min(1.0, (i + 0.5) / fade_frames, (n - i - 0.5) / fade_frames))


def _faded(picture: Image.Image, weight: float) -> Image.Image:
    from PIL import Image

    if weight >= 1.0:
        return picture
    return Image.blend(Image.new("RGB", picture.size, (0, 0, 0)), picture, weight)


def _card(
    card: Card, width: int, height: int, rate: Fraction, what: str
) -> tuple[Iterator[av.VideoFrame], np.ndarray | None, int]:
    """(frames, sound or None, frame count) of an intro or outro card."""
    fade_frames = float(card.fade * rate)
    if card.image is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(card.image) as source:
                picture = fitted(source, width, height, card.fit)
        except (OSError, UnidentifiedImageError) as exc:
            raise MediaError(
                f"{card.image}: cannot read the {what} image ({exc}); use a PNG or JPEG file"
            ) from exc
        n = max(1, round(card.seconds * rate))

        def held() -> Iterator[av.VideoFrame]:
            plain = _yuv(picture)
            for i in range(n):
                weight = _fade_weight(i, n, fade_frames)
                yield plain if weight >= 1.0 else _yuv(_faded(picture, weight))

        return held(), None, n
    assert card.video is not None
    seconds = _video_seconds(card.video, what)
    n = max(1, round(seconds * rate))
    sound = decode_audio(card.video, what=f"{what} video's audio")
    if sound is not None:
        sound = fit_length(sound, samples_for(n, rate))
        fades(sound, card.fade, card.fade)
    return _video_card(card, width, height, rate, n, fade_frames, what), sound, n


def _video_seconds(path: Path, what: str) -> Fraction:
    container = open_input(path, probe_decode=False)
    with container, media_errors(path, f"read the {what} video", BAD_INPUT):
        video = _first_video(container, path)
        seconds = _stream_seconds(video)
        if not seconds and container.duration:
            seconds = Fraction(container.duration, av.time_base)
    if not seconds:
        raise MediaError(f"{path}: the {what} video has no known duration. {BAD_INPUT}")
    return seconds


def _video_card(
    card: Card, width: int, height: int, rate: Fraction, n: int, fade_frames: float, what: str
) -> Iterator[av.VideoFrame]:
    """Exactly `n` frames of a video card at the film's rate: input frames picked by time."""
    assert card.video is not None
    container = open_input(card.video, probe_decode=False)
    with container, media_errors(card.video, f"decode the {what} video", BAD_INPUT):
        stream = container.streams.video[0]
        origin = float(Fraction(stream.start_time or 0) * (stream.time_base or 1))
        decoded = (((f.time or 0.0) - origin, f) for f in container.decode(stream))
        current = next(decoded, None)
        if current is None:
            raise MediaError(f"{card.video}: the {what} video has no frame. {BAD_INPUT}")
        upcoming = next(decoded, None)
        picture: Image.Image | None = None
        shown: object = None
        for j in range(n):
            t = j / float(rate)
            while upcoming is not None and upcoming[0] <= t + 1e-6:
                current, upcoming = upcoming, next(decoded, None)
            if current[1] is not shown:
                rgb = current[1].reformat(format="rgb24", src_colorspace="ITU709")
                picture = fitted(rgb.to_image(), width, height, card.fit)
                shown = current[1]
            assert picture is not None
            yield _yuv(_faded(picture, _fade_weight(j, n, fade_frames)))


# -- sound ----------------------------------------------------------------------------------


def _music(music: Music) -> np.ndarray:
    sound = decode_audio(music.file, what="music")
    if sound is None or sound.shape[1] == 0:
        raise MediaError(f"{music.file}: the music file has no sound; use an audio file")
    return sound


def _mix(program: np.ndarray, music: np.ndarray, settings: Music) -> np.ndarray:
    """The music bed under the program: as loud as the program, ducked while it speaks."""
    n = program.shape[1]
    bed = music_bed(music, n, settings.fade)
    spoken = measure(program)
    own = measure(bed)
    if not spoken.silent and not own.silent:
        bed = bed * (10 ** ((spoken.integrated_lufs - own.integrated_lufs) / 20))
    gain = duck_gain(program, settings.duck_db) if not spoken.silent else None
    result: np.ndarray = program + (bed * gain if gain is not None else bed)
    return result


def _loud(mix: np.ndarray, target_lufs: float, true_peak_db: float) -> np.ndarray:
    """The mix at the target loudness, its true peak under the ceiling after AAC."""
    margin = 0.5
    out = mix
    for _ in range(AAC_ATTEMPTS):
        out, found = normalise(mix, target_lufs, true_peak_db, margin_db=margin)
        if found.silent:
            return out
        after = measure(_aac_round_trip(out))
        if after.true_peak_db <= true_peak_db:
            break
        margin += after.true_peak_db - true_peak_db + 0.2
    return out


def _aac_round_trip(samples: np.ndarray) -> np.ndarray:
    """`samples` as they come back from our AAC encoder (in memory)."""
    import numpy as np

    from vidpipe.media.base import AUDIO_LAYOUT, AUDIO_RATE

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        writer = AudioWriter(out, add_audio_encoder(out))
        writer.write(samples)
        writer.close()
    buffer.seek(0)
    blocks: list[np.ndarray] = []
    with av.open(buffer, "r", format="mp4") as container:
        resampler = av.AudioResampler(format="fltp", layout=AUDIO_LAYOUT, rate=AUDIO_RATE)
        for frame in container.decode(audio=0):
            blocks.extend(f.to_ndarray() for f in resampler.resample(frame))
    return np.concatenate(blocks, axis=1) if blocks else samples[:, :0]
