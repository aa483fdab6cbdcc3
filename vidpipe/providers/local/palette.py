"""Colours for the local provider's panels: palettes parsed from the style guide, schemes
and moods. Everything is derived from hashes of the arguments (never `hash()`, which is
salted per process), so a panel is a pure function of its inputs.
"""

from __future__ import annotations

import colorsys
import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from PIL import ImageColor

RGB = tuple[int, int, int]
_Box = tuple[float, float, float, float]

# Speed over size: these PNGs are intermediates, and zlib's higher levels cost
# several times the drawing time on textured images.
_PNG_LEVEL = 1
_META_KEY = "vidpipe-panel"
_MIN_SIDE = 64


# --------------------------------------------------------------------------- hashing


def _digest(*parts: object) -> int:
    # hashlib, not hash(): str hashes are salted per process.
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_digest(*parts))


_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


# --------------------------------------------------------------------------- colour


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    t = min(1.0, max(0.0, t))
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _lum(c: RGB) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _sat(c: RGB) -> float:
    return colorsys.rgb_to_hsv(*(v / 255 for v in c))[1]


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


BLACK: RGB = (0, 0, 0)
WHITE: RGB = (255, 255, 255)
GREY: RGB = (128, 128, 128)

# Common palette words that CSS (and so ImageColor) does not know.
_EXTRA_COLOURS: dict[str, RGB] = {
    "amber": (255, 191, 0),
    "rust": (183, 65, 14),
    "cream": (255, 253, 208),
    "charcoal": (54, 69, 79),
    "mustard": (225, 173, 1),
    "burgundy": (128, 0, 32),
    "ochre": (204, 119, 34),
    "sepia": (112, 66, 20),
    "mint": (152, 255, 152),
    "sage": (178, 172, 136),
    "peach": (255, 203, 164),
    "rose": (255, 0, 127),
    "emerald": (80, 200, 120),
    "ruby": (224, 17, 95),
    "sapphire": (15, 82, 186),
    "jade": (0, 168, 107),
    "copper": (184, 115, 51),
    "bronze": (205, 127, 50),
    "scarlet": (255, 36, 0),
    "mauve": (224, 176, 255),
    "lilac": (200, 162, 200),
    "taupe": (72, 60, 50),
    "cerulean": (0, 123, 167),
    "cobalt": (0, 71, 171),
    "vermilion": (227, 66, 52),
    "neon": (57, 255, 20),
    "slate": (112, 128, 144),
}

# A modifier word shifts the next colour in the same palette entry.
_MODIFIERS: dict[str, tuple[RGB, float]] = {
    "deep": (BLACK, 0.35),
    "dark": (BLACK, 0.35),
    "light": (WHITE, 0.35),
    "pale": (WHITE, 0.45),
    "soft": (WHITE, 0.25),
    "muted": (GREY, 0.35),
    "dusty": (GREY, 0.3),
    "faded": (GREY, 0.4),
}

_HEX_RE = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})(?![0-9a-fA-F])")


def _colour_word(word: str) -> RGB | None:
    if word in _EXTRA_COLOURS:
        return _EXTRA_COLOURS[word]
    if word in ImageColor.colormap:
        r, g, b = ImageColor.getrgb(word)[:3]
        return (r, g, b)
    return None


def _named_colours(entry: str) -> list[RGB]:
    words = _words(entry)
    found: list[RGB] = []
    modifier: tuple[RGB, float] | None = None
    i = 0
    while i < len(words):
        # Two-word names first so "sky blue" is skyblue, not blue.
        pair = _colour_word(words[i] + words[i + 1]) if i + 1 < len(words) else None
        single = _colour_word(words[i])
        colour, step = (pair, 2) if pair else (single, 1)
        if colour is None:
            modifier = _MODIFIERS.get(words[i], modifier)
            i += 1
            continue
        if modifier:
            colour = _mix(colour, *modifier)
            modifier = None
        found.append(colour)
        i += step
    return found


def _fallback_palette(text: str) -> list[RGB]:
    # An analogous scheme plus a complementary accent: always harmonious, and
    # different texts still get visibly different palettes.
    rng = _rng("palette", text)
    hue = rng.random()
    return [
        _hsv(hue, 0.55, 0.22),
        _hsv(hue + 0.06, 0.45, 0.45),
        _hsv(hue - 0.05, 0.35, 0.70),
        _hsv(hue + 0.5, 0.75, 0.95),
        _hsv(hue + 0.02, 0.12, 0.92),
    ]


def parse_palette(palette: Sequence[str]) -> list[tuple[int, int, int]]:
    """Extract RGB colours from free-text palette entries, in order, without duplicates.

    Per entry, hex codes win ("deep teal #0f4c5c" gives only #0f4c5c); otherwise every
    word (or two-word name such as "sky blue") that Pillow's ``ImageColor`` or a
    small table of common paint names knows is used, shifted by modifiers such as
    "deep" or "pale". When nothing at all is recognised, a palette is derived from a
    hash of the text so that the same style guide always looks the same.
    """
    found: list[RGB] = []
    for entry in palette:
        hexes = _HEX_RE.findall(entry)
        colours = [_rgb(ImageColor.getrgb(h)) for h in hexes] if hexes else _named_colours(entry)
        found.extend(c for c in colours if c not in found)
    return found or _fallback_palette("\n".join(palette))


def _rgb(colour: tuple[int, ...]) -> RGB:
    return (colour[0], colour[1], colour[2])


@dataclass(frozen=True)
class _Scheme:
    """Palette colours assigned to the roles a panel needs."""

    sky_top: RGB
    sky_bottom: RGB
    ground_far: RGB
    ground_near: RGB
    ink: RGB  # subject silhouettes
    accent: RGB  # lamps, windows, rim light
    light: RGB  # sun, highlights
    bar: RGB  # caption bar


def _scheme(colours: Sequence[RGB]) -> _Scheme:
    by_lum = sorted(colours, key=_lum)
    dark, light = by_lum[0], by_lum[-1]
    mid = by_lum[len(by_lum) // 2]
    accent = max(colours, key=lambda c: (_sat(c) * (0.4 + _lum(c) / 255), c))
    if len(colours) == 1:
        dark, light = _mix(dark, BLACK, 0.55), _mix(light, WHITE, 0.55)
    if _lum(light) - _lum(dark) < 60:
        dark, light = _mix(dark, BLACK, 0.4), _mix(light, WHITE, 0.4)
    return _Scheme(
        sky_top=_mix(dark, mid, 0.35),
        sky_bottom=_mix(_mix(mid, light, 0.55), accent, 0.2),
        ground_far=_mix(_mix(dark, mid, 0.5), BLACK, 0.25),
        ground_near=_mix(dark, BLACK, 0.45),
        ink=_mix(dark, BLACK, 0.6),
        accent=accent,
        light=_mix(light, WHITE, 0.35),
        bar=_mix(dark, BLACK, 0.78),
    )


# Time of day and weather recolour the sky: (top target, amount, bottom target, amount).
_MoodFn = Callable[[_Scheme], tuple[RGB, float, RGB, float]]
_MOODS: dict[str, _MoodFn] = {
    "night": lambda s: (BLACK, 0.6, s.sky_top, 0.55),
    "dusk": lambda s: (s.ink, 0.3, s.accent, 0.55),
    "dawn": lambda s: (s.sky_bottom, 0.2, s.light, 0.5),
    "day": lambda s: (WHITE, 0.25, WHITE, 0.35),
    "storm": lambda s: (GREY, 0.45, GREY, 0.35),
}
_MOOD_WORDS: dict[str, str] = {
    "night": "night midnight nighttime moonlit darkness dark",
    "dusk": "dusk sunset evening twilight golden",
    "dawn": "dawn sunrise morning daybreak",
    "day": "day noon midday sunny daylight bright",
    "storm": "storm stormy overcast rain rainy fog foggy gloomy grey",
}
_MOOD_OF = {w: mood for mood, words in _MOOD_WORDS.items() for w in words.split()}


def _moods(words: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(_MOOD_OF[w] for w in words if w in _MOOD_OF))


def _apply_moods(s: _Scheme, moods: Sequence[str]) -> _Scheme:
    for mood in moods:
        top, ta, bottom, ba = _MOODS[mood](s)
        s = replace(s, sky_top=_mix(s.sky_top, top, ta), sky_bottom=_mix(s.sky_bottom, bottom, ba))
    if "night" in moods:
        s = replace(s, ground_far=_mix(s.ground_far, BLACK, 0.4))
    return s
