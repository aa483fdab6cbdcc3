"""Text for pictures: fonts, measuring, wrapping and fitting lines into a width."""

from __future__ import annotations

from functools import lru_cache

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=32)
def load_font(size: int) -> Font:
    return ImageFont.load_default(size=size)


#: Fonts that draw accented Latin, Greek, Cyrillic and CJK letters, best first. Debian's
#: fonts-wqy-microhei is the small one .ci/run installs; the Noto CJK and Droid fallbacks
#: are what other distributions and desktops usually have. DejaVu (no CJK) comes last.
UNICODE_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


@lru_cache(maxsize=32)
def unicode_font(size: int) -> Font:
    """A font of `size` pixels that covers as much of Unicode as this machine allows.

    The first of :data:`UNICODE_FONTS` that exists (CJK-capable ones first); Pillow's
    built-in font (Latin only) when none does. Captions and panel text use it, so a
    caption in Japanese or with accents is drawn, not shown as boxes.
    """
    from pathlib import Path

    for candidate in UNICODE_FONTS:
        if Path(candidate).is_file():
            try:
                return ImageFont.truetype(candidate, size)
            except OSError:
                continue
    return load_font(size)


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
