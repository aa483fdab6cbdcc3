"""Captions: one cue per scene, timed to the scene's span in the final cut; WebVTT and SRT
files, and the same text drawn into the picture.

A scene's cue starts on the first frame its clip shows (inside the crossfade from the
previous scene, if any) and ends where the next scene's cue starts; the last ends with
its clip. Times are on the film's frame grid, so a cue starts on a frame boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av
    from PIL import Image

#: Title-safe area: text stays inside the middle 80% of the width and height.
TITLE_SAFE = 0.10


@dataclass(frozen=True)
class Cue:
    """A caption on the film's timeline: from frame `start` up to (not including) `end`."""

    index: int  # the scene's index
    start: int
    end: int
    text: str

    def seconds(self, rate: Fraction) -> tuple[float, float]:
        return float(self.start / rate), float(self.end / rate)


def scene_cues(
    scenes: Sequence[tuple[int, int, str]], crossfade_frames: int, offset: int = 0
) -> list[Cue]:
    """Cues for clips laid end to end: (scene index, frames, text) in film order.

    Consecutive clips overlap by `crossfade_frames`; `offset` frames come before the first
    (an intro card).
    """
    cues = []
    at = offset
    for k, (index, frames, text) in enumerate(scenes):
        start = at - (crossfade_frames if k > 0 else 0)
        cues.append(Cue(index, start, start + frames, text))
        at = start + frames
    # A cue ends where the next one starts: players show one caption at a time.
    return [
        Cue(c.index, c.start, cues[i + 1].start if i + 1 < len(cues) else c.end, c.text)
        for i, c in enumerate(cues)
    ]


def shifted(cues: Sequence[Cue], frames: int) -> list[Cue]:
    """The same cues `frames` later (an intro card before the film)."""
    return [Cue(c.index, c.start + frames, c.end + frames, c.text) for c in cues]


def _clock(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _one_line(text: str) -> str:
    # A blank line ends a cue in both formats; "-->" would start a timing line in VTT.
    return " ".join(text.split()).replace("-->", "->")


def webvtt(cues: Sequence[Cue], rate: Fraction) -> str:
    """The cues as a WebVTT file."""
    out = ["WEBVTT", ""]
    for cue in cues:
        start, end = cue.seconds(rate)
        out += [f"scene-{cue.index}", f"{_clock(start, '.')} --> {_clock(end, '.')}"]
        out += [_one_line(cue.text), ""]
    return "\n".join(out)


def srt(cues: Sequence[Cue], rate: Fraction) -> str:
    """The cues as a SubRip (.srt) file."""
    out = []
    for n, cue in enumerate(cues, start=1):
        start, end = cue.seconds(rate)
        out += [str(n), f"{_clock(start, ',')} --> {_clock(end, ',')}", _one_line(cue.text), ""]
    return "\n".join(out)


class Burner:
    """Draws cues into frames: white text on a translucent band, bottom centre, inside the
    title-safe area, in a font that covers accented and CJK letters."""

    def __init__(self, cues: Sequence[Cue], width: int, height: int):
        self.cues = sorted(cues, key=lambda c: c.start)
        self.width = width
        self.height = height
        self._overlays: dict[int, tuple[Image.Image, int, int]] = {}

    def _overlay(self, cue: Cue) -> tuple[Image.Image, int, int]:
        from PIL import Image, ImageDraw

        from vidpipe.media.text import unicode_font, wrap

        if cue.start in self._overlays:
            return self._overlays[cue.start]
        safe_w = self.width * (1 - 2 * TITLE_SAFE)
        size = max(12, round(min(self.width, self.height) * 0.06))
        font = unicode_font(size)
        pad = max(4, size // 3)
        lines = wrap(_one_line(cue.text), font, safe_w - 2 * pad)[:3]
        line_h = round(size * 1.3)
        widths = [font.getlength(line) for line in lines] or [0.0]
        box_w = min(round(safe_w), round(max(widths)) + 2 * pad)
        box_h = line_h * len(lines) + 2 * pad
        band = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 150))
        draw = ImageDraw.Draw(band)
        for i, line in enumerate(lines):
            x = (box_w - font.getlength(line)) / 2
            draw.text((x, pad + i * line_h), line, font=font, fill=(255, 255, 255, 255))
        x0 = (self.width - box_w) // 2
        y0 = round(self.height * (1 - TITLE_SAFE)) - box_h
        self._overlays[cue.start] = (band, x0, y0)
        return self._overlays[cue.start]

    def __call__(self, frame: av.VideoFrame, index: int) -> av.VideoFrame:
        """Frame number `index` of the film, with the caption showing then drawn in."""
        import av

        cue = next((c for c in self.cues if c.start <= index < c.end), None)
        if cue is None or not cue.text.strip():
            return frame
        band, x0, y0 = self._overlay(cue)
        picture = frame.reformat(
            format="rgb24", src_colorspace="ITU709", src_color_range="MPEG"
        ).to_image()
        picture.paste(band, (x0, y0), band)
        out = av.VideoFrame.from_image(picture)
        return out.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
