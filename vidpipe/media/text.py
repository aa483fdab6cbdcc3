"""Text for pictures: fonts, measuring, wrapping and fitting lines into a width.

Captions come from prompts in any language, so text is drawn in a font that covers
accented Latin and CJK (:func:`unicode_font`). Pillow's built-in font has no CJK glyphs
and draws a box for each (``東京`` → ``☐☐``); a system font is looked up instead. CI
installs one (Debian ``fonts-wqy-microhei``); without any, text falls back to Pillow's
font and non-Latin letters show as boxes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import lru_cache

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: Text a caption font must draw without a replacement box.
COVERAGE_PROBE = "café 東京"

#: Fonts tried first, in order: Debian's (fonts-wqy-microhei is the small one .ci/run
#: installs), then where other distributions and desktops keep Noto CJK and the like; then
#: whatever fontconfig knows for Japanese.
_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)

#: Without any CJK font, one that at least draws accented Latin (no CJK: boxes for those).
_LATIN_FALLBACKS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def missing_glyphs(font: Font, text: str) -> list[str]:
    """The characters of `text` that `font` draws as its replacement glyph (a box).

    A font draws every character it lacks with the same ``.notdef`` glyph, so a character
    whose mask equals that of a private-use code point (which no font here defines) is
    missing.
    """
    notdef = font.getmask("\ue000")
    blank = (bytes(notdef), notdef.size)
    out = []
    for ch in dict.fromkeys(text):
        if ch.isspace():
            continue
        mask = font.getmask(ch)
        if (bytes(mask), mask.size) == blank:
            out.append(ch)
    return out


def _font_files() -> Iterator[str]:
    """Candidate font files in order: fontconfig is asked only when no known file will
    do (fc-list is a process spawned by every process that draws text)."""
    yield from _CANDIDATES
    yield from _fontconfig_files()


def _fontconfig_files() -> list[str]:
    """Font files fontconfig offers for Japanese text (empty without fontconfig)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        listed = subprocess.run(
            [fc_list, ":lang=ja", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line.strip().rstrip(":") for line in listed.splitlines() if line.strip())


@lru_cache(maxsize=1)
def unicode_font_path() -> str | None:
    """The first installed font that draws :data:`COVERAGE_PROBE` without boxes; else one
    that draws its accented Latin; else None."""
    for path in _font_files():
        if not os.path.isfile(path):
            continue
        try:
            font = ImageFont.truetype(path, 20)
        except OSError:
            continue
        if not missing_glyphs(font, COVERAGE_PROBE):
            return path
    for path in _LATIN_FALLBACKS:
        if os.path.isfile(path):
            return path
    return None


@lru_cache(maxsize=32)
def unicode_font(size: int) -> Font:
    """A font of `size` pixels covering accented Latin and CJK, else Pillow's built-in font."""
    path = unicode_font_path()
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


def load_font(size: int) -> Font:
    """The font every picture's text is drawn in."""
    return unicode_font(size)


def text_width(font: Font, text: str) -> float:
    return float(font.getlength(text))


def wrap(text: str, font: Font, max_w: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        while text_width(font, word) > max_w and len(word) > 1:
            cut = max(
                1,
                next(
                    (i for i in range(len(word), 0, -1) if text_width(font, word[:i]) <= max_w), 1
                ),
            )
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        trial = f"{current} {word}" if current else word
        if text_width(font, trial) <= max_w:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def fit_text(text: str, max_w: float, max_lines: int, size: int) -> tuple[Font, list[str]]:
    """Shrink the font a little before truncating: a complete caption beats a big one."""
    for s in range(size, max(8, round(size * 0.75)) - 1, -1):
        font = load_font(s)
        lines = wrap(text, font, max_w)
        if len(lines) <= max_lines:
            return font, lines
    lines = lines[:max_lines]
    last = lines[-1]
    while last and text_width(font, last + "...") > max_w:
        last = last[:-1].rstrip()
    lines[-1] = last + "..."
    return font, lines
