"""Audio for the finish step: decode to arrays, lay a music bed, duck it, measure and set
loudness.

Everything is float32 stereo at 48 kHz, shaped (2, n). Loudness is measured with FFmpeg's
``ebur128`` filter (ITU-R BS.1770-4: K-weighting, gating, true peak from 4x oversampling)
through PyAV; peaks are held down with FFmpeg's ``alimiter`` run at 192 kHz, so what it
limits is close to the true (inter-sample) peak, not just the sample peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error

from vidpipe.errors import MediaError
from vidpipe.media.base import AUDIO_LAYOUT, AUDIO_RATE, media_errors, open_input

if TYPE_CHECKING:
    import numpy as np

#: Quieter than this the meter reports no loudness at all (BS.1770's absolute gate).
SILENCE_LUFS = -70.0
#: The limiter works at 4x the rate so that it sees inter-sample peaks.
OVERSAMPLED = 4 * AUDIO_RATE
BAD_AUDIO = "The file is corrupt or not an audio file: replace it."


@dataclass(frozen=True)
class Loudness:
    """A measurement: integrated loudness (LUFS) and true peak (dBTP)."""

    integrated_lufs: float
    true_peak_db: float

    @property
    def silent(self) -> bool:
        return self.integrated_lufs <= SILENCE_LUFS


def samples_for(frames: int, rate: Fraction) -> int:
    """Audio samples that last exactly `frames` video frames at `rate` (rounded)."""
    return round(Fraction(frames) * AUDIO_RATE / rate)


def decode_audio(path: Path, *, what: str = "audio") -> np.ndarray | None:
    """The first audio stream of a file as float32 (2, n) at 48 kHz; None if it has none."""
    import numpy as np

    container = open_input(path)
    with container, media_errors(path, f"read the {what}", BAD_AUDIO):
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=AUDIO_LAYOUT, rate=AUDIO_RATE)
        blocks: list[np.ndarray] = []
        start: float | None = None
        for frame in container.decode(stream):
            if start is None and frame.time is not None:
                start = frame.time
            blocks.extend(out.to_ndarray() for out in resampler.resample(frame))
        blocks.extend(out.to_ndarray() for out in resampler.resample(None))
    if not blocks:
        return np.zeros((2, 0), dtype=np.float32)
    data = np.concatenate(blocks, axis=1).astype(np.float32, copy=False)
    # Streams that start late (not the AAC priming) keep their offset as leading silence.
    lead = round((start or 0.0) * AUDIO_RATE)
    if lead > 0:
        data = np.concatenate([np.zeros((2, lead), dtype=np.float32), data], axis=1)
    return data


def fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """Cut or pad with silence to exactly `n` samples."""
    import numpy as np

    if samples.shape[1] >= n:
        return samples[:, :n]
    return np.concatenate([samples, np.zeros((2, n - samples.shape[1]), np.float32)], axis=1)


def fades(samples: np.ndarray, fade_in: float, fade_out: float) -> np.ndarray:
    """Linear fades in and out over the given seconds (in place; returns the array)."""
    import numpy as np

    n = samples.shape[1]
    for seconds, head in ((fade_in, True), (fade_out, False)):
        k = min(n, round(seconds * AUDIO_RATE))
        if k <= 0:
            continue
        ramp = (np.arange(k, dtype=np.float32) + 0.5) / k
        if head:
            samples[:, :k] *= ramp
        else:
            samples[:, n - k :] *= ramp[::-1]
    return samples


def music_bed(music: np.ndarray, n: int, fade: float) -> np.ndarray:
    """The music looped (or trimmed) to `n` samples, faded in at the start and out at the end."""
    import numpy as np

    if music.shape[1] == 0:
        raise MediaError("the music file holds no sound; use another file")
    repeats = math.ceil(n / music.shape[1])
    bed = np.tile(music, (1, repeats))[:, :n].copy() if repeats > 1 else music[:, :n].copy()
    return fades(fit_length(bed, n), fade, fade)


def duck_gain(program: np.ndarray, duck_db: float) -> np.ndarray:
    """Per-sample gain for the music: ``-duck_db`` while the program has sound, 0 dB else.

    An envelope follower: the program's level in 20 ms windows, a threshold 40 dB under
    its loudest window (and never below -60 dBFS), then a gain that falls in 50 ms and
    recovers in 400 ms — the attack and release of a broadcast ducker — interpolated to
    every sample.
    """
    import numpy as np

    n = program.shape[1]
    if duck_db <= 0 or n == 0:
        return np.ones(n, dtype=np.float32)
    window = AUDIO_RATE // 50
    count = math.ceil(n / window)
    mono = fit_length(program, count * window).mean(axis=0).reshape(count, window)
    rms = np.sqrt(np.mean(mono * mono, axis=1)) + 1e-12
    level = 20 * np.log10(rms)
    threshold = max(-60.0, float(level.max()) - 40.0)
    target = np.where(level > threshold, -duck_db, 0.0)
    attack = 1 - math.exp(-1 / (0.050 * 50))
    release = 1 - math.exp(-1 / (0.400 * 50))
    smooth = np.empty(count)
    current = 0.0
    for i, wanted in enumerate(target):
        current += (wanted - current) * (attack if wanted < current else release)
        smooth[i] = current
    centres = (np.arange(count) + 0.5) * window
    gain_db = np.interp(np.arange(n), centres, smooth)
    return (10 ** (gain_db / 20)).astype(np.float32)


def _graph(filters: list[tuple[str, str]], rate: int) -> av.filter.Graph:
    graph = av.filter.Graph()
    node = graph.add_abuffer(
        format="fltp", sample_rate=rate, layout=AUDIO_LAYOUT, time_base=Fraction(1, rate)
    )
    for name, args in filters:
        nxt = graph.add(name, args)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    return graph


def _run(graph: av.filter.Graph, samples: np.ndarray) -> list[av.AudioFrame]:
    """Push `samples` through a graph in 1 s blocks; return every frame it gives back."""
    import numpy as np

    out: list[av.AudioFrame] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
                assert isinstance(frame, av.AudioFrame)
                out.append(frame)
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    block = AUDIO_RATE
    for start in range(0, samples.shape[1], block):
        chunk = np.ascontiguousarray(samples[:, start : start + block], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=AUDIO_LAYOUT)
        frame.sample_rate = AUDIO_RATE
        frame.time_base = Fraction(1, AUDIO_RATE)
        frame.pts = start
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return out


def measure(samples: np.ndarray) -> Loudness:
    """Integrated loudness and true peak of `samples`, by FFmpeg's ebur128 meter."""
    if samples.shape[1] == 0:
        return Loudness(SILENCE_LUFS, -math.inf)
    frames = _run(_graph([("ebur128", "metadata=1:peak=true")], AUDIO_RATE), samples)
    integrated = SILENCE_LUFS
    peak = 0.0
    for frame in frames:
        meta = frame.metadata
        if "lavfi.r128.I" in meta:
            integrated = float(meta["lavfi.r128.I"])
        if "lavfi.r128.true_peak" in meta:
            peak = max(peak, float(meta["lavfi.r128.true_peak"]))
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    return Loudness(max(SILENCE_LUFS, integrated), peak_db)


def limit(samples: np.ndarray, ceiling_db: float) -> np.ndarray:
    """Hold true peaks under `ceiling_db` dBTP: FFmpeg's look-ahead limiter at 192 kHz."""
    import numpy as np

    level = 10 ** (ceiling_db / 20)
    graph = _graph(
        [
            ("aresample", f"{OVERSAMPLED}"),
            # level=0: no make-up gain (the loudness is set before); latency=1: the
            # look-ahead delay is removed, so the audio stays in sync with the picture.
            ("alimiter", f"limit={level:.6f}:attack=2:release=50:level=0:latency=1"),
            ("aresample", f"{AUDIO_RATE}"),
            ("aformat", "sample_fmts=fltp:channel_layouts=stereo"),
        ],
        AUDIO_RATE,
    )
    frames = _run(graph, samples)
    data = np.concatenate([f.to_ndarray() for f in frames], axis=1).astype(np.float32)
    return fit_length(data, samples.shape[1])


def normalise(
    samples: np.ndarray, target_lufs: float, true_peak_db: float, *, margin_db: float = 0.5
) -> tuple[np.ndarray, Loudness]:
    """Set the integrated loudness to `target_lufs` with true peaks under `true_peak_db`.

    A gain brings the loudness to the target; where that pushes peaks over the ceiling (less
    `margin_db`, headroom for the AAC encoder), the limiter holds them and the loudness is
    measured again and corrected — twice at most, each pass gets closer. Silence is left
    as it is. Returns the samples and their loudness as measured at the end.
    """
    found = measure(samples)
    if found.silent:
        return samples, found
    ceiling = true_peak_db - margin_db
    out = samples
    for _ in range(3):
        gain = target_lufs - found.integrated_lufs
        out = out * (10 ** (gain / 20))
        if found.true_peak_db + gain > ceiling:
            out = limit(out, ceiling)
        found = measure(out)
        if abs(found.integrated_lufs - target_lufs) < 0.2 and found.true_peak_db <= ceiling + 0.1:
            break
    return out.astype("float32", copy=False), found
