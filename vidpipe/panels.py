"""Storyboard panels and contact sheets for the offline ``local`` provider.

The local provider is an animatic renderer, not a model: each scene's start and end
keyframes are drawn here as flat-shaded storyboard panels, and another module turns
each pair into a short clip. Everything is derived from hashes of the arguments, so a
panel is a pure function of its inputs and re-running a job reproduces its frames
byte for byte.

A panel is laid out as a *picture* (the shot) above a *caption bar* (frame label and
caption). Panels carry a small PNG text chunk describing what was drawn where; the
end-frame deriver reads it to know where the subject is and which elements already
exist, and falls back to sensible guesses for PNGs that do not carry it.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageFont, PngImagePlugin

__all__ = ["SheetRow", "contact_sheet", "derive_end_frame", "draw_keyframe", "parse_palette"]

RGB = tuple[int, int, int]
_Box = tuple[float, float, float, float]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

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


# --------------------------------------------------------------------------- framing


@dataclass(frozen=True)
class _Framing:
    key: str
    label: str
    horizon: float  # fraction of picture height
    hero: float  # hero height as a fraction of picture height
    base: float  # where the hero stands, fraction of picture height
    closeness: int  # for push-in between framings
    blur: float = 0.0  # background depth of field, fraction of picture height
    ots: bool = False


_FRAMINGS: dict[str, _Framing] = {
    f.key: f
    for f in (
        _Framing("aerial", "AERIAL", 0.16, 0.14, 0.74, 0),
        _Framing("wide", "WIDE", 0.60, 0.30, 0.86, 1),
        _Framing("high", "HIGH ANGLE", 0.28, 0.34, 0.82, 1),
        _Framing("medium", "MEDIUM", 0.64, 0.58, 0.97, 2),
        _Framing("ots", "OVER THE SHOULDER", 0.62, 0.46, 0.90, 2, blur=0.004, ots=True),
        _Framing("low", "LOW ANGLE", 0.84, 0.80, 0.97, 2),
        _Framing("close", "CLOSE-UP", 0.70, 1.05, 1.28, 3, blur=0.012),
    )
}
# First match wins, so the more specific descriptions come first.
_FRAMING_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("ots", "over the shoulder, over-the-shoulder, ots"),
    ("close", "close-up, close up, closeup, close shot, macro, insert, detail"),
    ("aerial", "aerial, bird's eye, birds eye, bird's-eye, drone, overhead, top-down, top down"),
    ("low", "low angle, low-angle, worm's eye, worms eye"),
    ("high", "high angle, high-angle"),
    ("wide", "wide, establishing, long shot, extreme long, panoramic, vista"),
    ("medium", "medium, mid shot, mid-shot, waist, cowboy, two shot, two-shot"),
)
_FRAMING_RES = tuple(
    (key, re.compile(r"\b(?:" + "|".join(re.escape(k) for k in kws.split(", ")) + r")\b"))
    for key, kws in _FRAMING_KEYWORDS
)
_DUTCH_RE = re.compile(r"\b(?:dutch|canted|tilted)\b")


def _framing(text: str) -> _Framing:
    low = text.lower()
    key = next((k for k, rx in _FRAMING_RES if rx.search(low)), "medium")
    return _FRAMINGS[key]


# --------------------------------------------------------------------------- canvas


@dataclass(frozen=True)
class _Canvas:
    img: Image.Image
    draw: ImageDraw.ImageDraw
    scheme: _Scheme
    horizon: float  # px
    ink: RGB  # colour of the element being drawn

    @property
    def w(self) -> int:
        return self.img.width

    @property
    def h(self) -> int:
        return self.img.height


def _canvas(img: Image.Image, scheme: _Scheme, horizon: float) -> _Canvas:
    # An RGBA draw on an RGB image alpha-blends fills: cheap translucency.
    return _Canvas(img, ImageDraw.Draw(img, "RGBA"), scheme, horizon, scheme.ink)


def _vgradient(size: tuple[int, int], stops: Sequence[RGB]) -> Image.Image:
    """A vertical gradient through ``stops``, evenly spaced from top to bottom."""
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    # One line per row beats resizing a strip: resize is the slowest step on big frames.
    last = len(stops) - 1
    for y in range(h):
        pos = y / max(1, h - 1) * last
        k = min(int(pos), last - 1) if last else 0
        draw.line([(0, y), (w, y)], fill=_mix(stops[k], stops[min(k + 1, last)], pos - k))
    return img


def _alpha(c: RGB, a: float) -> tuple[int, int, int, int]:
    return (c[0], c[1], c[2], round(255 * min(1.0, max(0.0, a))))


# --------------------------------------------------------------------------- elements
# Every drawer takes the canvas, a private RNG and the box it should fill
# (x0, y0, x1, y1 in canvas pixels; subjects stand on y1).

_Drawer = Callable[[_Canvas, random.Random, _Box], None]
_Layer = Literal["sky", "ground", "setting", "subject", "overlay"]


def _sun(c: _Canvas, rng: random.Random, box: _Box) -> None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    r = min(c.w, c.h) * rng.uniform(0.05, 0.075)
    for k in range(6, 0, -1):
        g = r * (1 + k * 0.45)
        c.draw.ellipse((cx - g, cy - g, cx + g, cy + g), fill=_alpha(c.scheme.accent, 0.07))
    c.draw.ellipse(
        (cx - r, cy - r, cx + r, cy + r), fill=_mix(c.scheme.light, c.scheme.accent, 0.25)
    )


def _moon(c: _Canvas, rng: random.Random, box: _Box) -> None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    r = min(c.w, c.h) * rng.uniform(0.04, 0.06)
    c.draw.ellipse(
        (cx - 2 * r, cy - 2 * r, cx + 2 * r, cy + 2 * r), fill=_alpha(c.scheme.light, 0.08)
    )
    c.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_mix(c.scheme.light, WHITE, 0.4))
    for _ in range(3):
        dx, dy, cr = (
            rng.uniform(-0.5, 0.5) * r,
            rng.uniform(-0.5, 0.5) * r,
            r * rng.uniform(0.12, 0.22),
        )
        c.draw.ellipse(
            (cx + dx - cr, cy + dy - cr, cx + dx + cr, cy + dy + cr), fill=_alpha(GREY, 0.25)
        )


def _stars(c: _Canvas, rng: random.Random, box: _Box) -> None:
    dot = max(1.0, c.h * 0.0025)
    for _ in range(70):
        x, y = rng.uniform(0, c.w), rng.uniform(0, c.horizon * 0.85)
        s = dot * rng.uniform(0.6, 1.4)
        c.draw.ellipse((x - s, y - s, x + s, y + s), fill=_alpha(WHITE, rng.uniform(0.35, 0.9)))


def _cloud_bank(
    c: _Canvas, rng: random.Random, box: _Box, colour: RGB, alpha: float, n: int
) -> None:
    x0, y0, x1, y1 = box
    for _ in range(n):
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        cw, ch = c.w * rng.uniform(0.12, 0.26), c.h * rng.uniform(0.05, 0.09)
        for _ in range(4):
            dx, dy = rng.uniform(-0.5, 0.5) * cw, rng.uniform(-0.35, 0.2) * ch
            rw, rh = cw * rng.uniform(0.3, 0.55), ch * rng.uniform(0.5, 0.9)
            c.draw.ellipse(
                (cx + dx - rw, cy + dy - rh, cx + dx + rw, cy + dy + rh), fill=_alpha(colour, alpha)
            )


def _clouds(c: _Canvas, rng: random.Random, box: _Box) -> None:
    _cloud_bank(c, rng, (0, c.h * 0.04, c.w, c.horizon * 0.55), c.scheme.light, 0.22, 4)


def _storm(c: _Canvas, rng: random.Random, box: _Box) -> None:
    dark = _mix(c.scheme.ink, c.scheme.sky_top, 0.35)
    _cloud_bank(c, rng, (-0.1 * c.w, -0.05 * c.h, 1.1 * c.w, c.horizon * 0.35), dark, 0.55, 9)
    _cloud_bank(c, rng, (0, c.horizon * 0.2, c.w, c.horizon * 0.55), dark, 0.3, 4)


def _birds(c: _Canvas, rng: random.Random, box: _Box) -> None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    width = max(2, round(c.h * 0.004))
    for _ in range(rng.randint(3, 6)):
        x, y = cx + rng.uniform(-0.12, 0.12) * c.w, cy + rng.uniform(-0.06, 0.06) * c.h
        s = c.h * rng.uniform(0.012, 0.022)
        c.draw.line(
            [(x - s, y - s * 0.5), (x, y), (x + s, y - s * 0.5)], fill=c.scheme.ink, width=width
        )


def _ground_band(c: _Canvas, top: RGB, bottom: RGB, box: _Box) -> None:
    x0, y0, x1, y1 = (round(v) for v in box)
    if y1 > y0 and x1 > x0:
        c.img.paste(_vgradient((x1 - x0, y1 - y0), [top, bottom]), (x0, y0))


def _sea(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    # Water mirrors the sky: lighter at the horizon, sky-top coloured up close.
    top = _mix(_mix(s.sky_bottom, s.sky_top, 0.45), BLACK, 0.15)
    _ground_band(c, top, _mix(s.ground_near, s.sky_top, 0.45), box)
    x0, y0, x1, y1 = box
    for _ in range(40):
        t = rng.random() ** 1.6
        y = y0 + (y1 - y0) * t
        x, length = rng.uniform(x0, x1), c.w * (0.015 + 0.1 * t)
        width = max(1, round(c.h * (0.002 + 0.004 * t)))
        c.draw.line([(x, y), (x + length, y)], fill=_alpha(s.light, 0.25 + 0.25 * t), width=width)


def _desert(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    sand = _mix(s.accent, s.light, 0.35)
    _ground_band(c, _mix(sand, s.sky_bottom, 0.3), _mix(sand, s.ground_near, 0.55), box)
    x0, y0, x1, y1 = box
    for k in range(3):
        y = y0 + (y1 - y0) * (0.2 + 0.3 * k)
        amp, phase = (y1 - y0) * 0.08, rng.uniform(0, math.tau)
        pts = [
            (x, y + amp * math.sin(phase + x / c.w * math.tau * 1.3)) for x in _steps(x0, x1, 24)
        ]
        c.draw.polygon(
            [*pts, (x1, y1), (x0, y1)], fill=_alpha(_mix(sand, s.ink, 0.15 + 0.15 * k), 0.5)
        )


def _field(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    grass = _mix(s.ground_far, (70, 120, 50), 0.35)
    _ground_band(c, grass, _mix(grass, BLACK, 0.5), box)
    x0, y0, x1, y1 = box
    width = max(1, round(c.h * 0.003))
    for _ in range(90):
        t = rng.random()
        x, y = rng.uniform(x0, x1), y0 + (y1 - y0) * t
        blade = c.h * (0.006 + 0.03 * t)
        c.draw.line([(x, y), (x + blade * 0.3, y - blade)], fill=_alpha(s.light, 0.2), width=width)


def _road(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    _, y0, _, y1 = box
    vx = rng.uniform(0.4, 0.6) * c.w
    tarmac = _mix(s.ink, GREY, 0.25)
    c.draw.polygon(
        [(vx - c.w * 0.01, y0), (vx + c.w * 0.01, y0), (c.w * 0.85, y1), (c.w * 0.15, y1)],
        fill=tarmac,
    )
    for k in range(8):
        t0, t1 = (k / 8) ** 2, ((k + 0.5) / 8) ** 2
        ya, yb = y0 + (y1 - y0) * t0, y0 + (y1 - y0) * t1
        xa, xb = vx + (c.w * 0.5 - vx) * t0, vx + (c.w * 0.5 - vx) * t1
        c.draw.line(
            [(xa, ya), (xb, yb)],
            fill=_alpha(s.accent, 0.8),
            width=max(1, round(c.h * 0.006 * (t1 + 0.2))),
        )


def _mountains(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    x0, _, x1, y1 = box
    for layer in range(2):
        peak = c.h * (0.22 - 0.08 * layer)
        colour = _mix(_mix(s.sky_bottom, s.ink, 0.35 + 0.3 * layer), s.sky_top, 0.15)
        pts, x = [(x0, y1)], x0
        while x < x1:
            pts.append((x, y1 - peak * rng.uniform(0.15, 0.45)))
            x += c.w * rng.uniform(0.06, 0.14)
            pts.append((x, y1 - peak * rng.uniform(0.6, 1.0)))
            x += c.w * rng.uniform(0.06, 0.14)
        c.draw.polygon([*pts, (x1, y1)], fill=colour)


def _hills(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    x0, _, x1, y1 = box
    for layer in range(2):
        amp, base = c.h * (0.05 + 0.03 * layer), y1 - c.h * (0.06 - 0.04 * layer)
        phase, freq = rng.uniform(0, math.tau), rng.uniform(1.2, 2.4)
        pts = [
            (x, base - amp * (1 + math.sin(phase + freq * math.tau * x / c.w)))
            for x in _steps(x0, x1, 32)
        ]
        c.draw.polygon(
            [(x0, y1), *pts, (x1, y1)], fill=_mix(s.ground_far, s.sky_bottom, 0.35 - 0.2 * layer)
        )


def _city(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    x0, _, x1, y1 = box
    for layer in range(2):
        colour = _mix(s.ink, s.sky_bottom, 0.45 - 0.3 * layer)
        x = x0 - rng.uniform(0, 0.05) * c.w
        while x < x1:
            bw, bh = (
                c.w * rng.uniform(0.03, 0.07),
                c.h * rng.uniform(0.08, 0.3) * (1.2 - 0.3 * layer),
            )
            c.draw.rectangle((x, y1 - bh, x + bw, y1), fill=colour)
            if layer and rng.random() < 0.8:
                _windows(c, rng, (x, y1 - bh, x + bw, y1))
            x += bw + c.w * rng.uniform(0, 0.01)


def _windows(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    step = max(4.0, c.h * 0.018)
    lit = _alpha(c.scheme.accent, 0.85)
    y = y0 + step
    while y < y1 - step:
        x = x0 + step * 0.6
        while x < x1 - step * 0.6:
            if rng.random() < 0.35:
                c.draw.rectangle((x, y, x + step * 0.45, y + step * 0.55), fill=lit)
            x += step
        y += step


def _forest(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    x0, _, x1, y1 = box
    for layer in range(2):
        colour = _mix(_mix(s.ink, (30, 70, 40), 0.3), s.sky_bottom, 0.4 - 0.3 * layer)
        x = x0 - c.w * 0.02
        while x < x1:
            tw, th = (
                c.w * rng.uniform(0.025, 0.045),
                c.h * rng.uniform(0.1, 0.2) * (1 + 0.3 * layer),
            )
            base = y1 + c.h * 0.01 * layer
            c.draw.polygon([(x - tw, base), (x, base - th), (x + tw, base)], fill=colour)
            x += tw * rng.uniform(0.9, 1.5)


def _cliff(c: _Canvas, rng: random.Random, box: _Box) -> None:
    # The hero stands on a cliff: box is the cliff top under the hero.
    x0, y0, x1, y1 = box
    s = c.scheme
    left = x0 <= 0  # the cliff juts out from the left edge, its face looking right
    edge, outer, out = (x1, x0, 1) if left else (x0, x1, -1)
    # A ragged face that leans out toward the sea as it goes down.
    face = [
        (edge + out * c.w * (0.06 * t + rng.uniform(-0.015, 0.015)), y0 + (y1 - y0) * t)
        for t in _steps(0, 1, 7)
    ]
    c.draw.polygon([(outer, y0), *face, (outer, y1)], fill=_mix(s.ink, s.ground_far, 0.35))
    shade = [(x - out * c.w * 0.03, y) for x, y in face]
    c.draw.polygon([*face, *reversed(shade)], fill=_alpha(BLACK, 0.25))
    c.draw.line(
        [(outer, y0), face[0]], fill=_alpha(s.accent, 0.6), width=max(1, round(c.h * 0.005))
    )


def _interior(c: _Canvas, rng: random.Random, box: _Box) -> None:
    s = c.scheme
    wall_top, wall_bottom = _mix(s.ink, s.sky_top, 0.5), _mix(s.ground_far, s.sky_bottom, 0.45)
    floor = _mix(s.ground_near, s.accent, 0.12)
    _ground_band(c, wall_top, wall_bottom, (0, 0, c.w, c.horizon))
    _ground_band(c, _mix(floor, s.light, 0.15), _mix(floor, BLACK, 0.5), (0, c.horizon, c.w, c.h))
    wx = rng.uniform(0.15, 0.6) * c.w
    ww, wh = c.w * 0.22, c.horizon * 0.45
    wy = c.horizon * 0.2
    c.img.paste(_vgradient((round(ww), round(wh)), [s.light, s.sky_bottom]), (round(wx), round(wy)))
    frame = max(2, round(c.h * 0.008))
    c.draw.rectangle((wx, wy, wx + ww, wy + wh), outline=s.ink, width=frame)
    c.draw.line([(wx + ww / 2, wy), (wx + ww / 2, wy + wh)], fill=s.ink, width=frame)
    c.draw.polygon(
        [(wx, wy + wh), (wx + ww, wy + wh), (wx + ww * 1.6, c.h), (wx - ww * 0.3, c.h)],
        fill=_alpha(s.light, 0.08),
    )
    for k in range(-6, 7):
        c.draw.line(
            [(c.w / 2 + k * c.w * 0.08, c.horizon), (c.w / 2 + k * c.w * 0.35, c.h)],
            fill=_alpha(BLACK, 0.15),
        )


def _steps(a: float, b: float, n: int) -> list[float]:
    return [a + (b - a) * i / n for i in range(n + 1)]


# Subjects: drawn with c.ink so the same shape serves as silhouette and rim light.


def _person(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    h, cx = y1 - y0, (x0 + x1) / 2
    r = h * 0.075
    c.draw.ellipse((cx - r, y0, cx + r, y0 + 2.1 * r), fill=c.ink)
    sh, hip = y0 + 2.4 * r, y0 + h * 0.55
    half = h * 0.13
    c.draw.rounded_rectangle((cx - half, sh, cx + half, hip), radius=half * 0.6, fill=c.ink)
    stride = h * rng.uniform(0.02, 0.09)
    leg = max(2.0, h * 0.045)
    for side in (-1, 1):
        hx = cx + side * half * 0.5
        c.draw.line(
            [(hx, hip - leg), (hx + side * stride, y1 - leg / 2)], fill=c.ink, width=round(leg * 2)
        )
        ax = cx + side * half * 0.9
        swing = side * rng.uniform(0.0, 0.1) * h
        c.draw.line(
            [(ax, sh + leg), (ax + swing, y0 + h * 0.52)], fill=c.ink, width=round(leg * 1.5)
        )


def _crowd(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    n = rng.randint(3, 5)
    for i in range(n):
        s = rng.uniform(0.75, 1.0)
        w = (x1 - x0) / n
        px = x0 + w * i
        _person(c, rng, (px, y1 - (y1 - y0) * s, px + w, y1 + (1 - s) * (y1 - y0) * 0.1))


def _car(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    wheel = h * 0.22
    body_top = y0 + h * 0.42
    c.draw.rounded_rectangle((x0, body_top, x1, y1 - wheel * 0.6), radius=h * 0.12, fill=c.ink)
    c.draw.polygon(
        [
            (x0 + w * 0.2, body_top + 1),
            (x0 + w * 0.32, y0),
            (x0 + w * 0.7, y0),
            (x0 + w * 0.82, body_top + 1),
        ],
        fill=c.ink,
    )
    glass = _alpha(_mix(c.scheme.sky_bottom, c.ink, 0.35), 0.9)
    c.draw.polygon(
        [
            (x0 + w * 0.27, body_top),
            (x0 + w * 0.35, y0 + h * 0.1),
            (x0 + w * 0.49, y0 + h * 0.1),
            (x0 + w * 0.49, body_top),
        ],
        fill=glass,
    )
    c.draw.polygon(
        [
            (x0 + w * 0.52, body_top),
            (x0 + w * 0.52, y0 + h * 0.1),
            (x0 + w * 0.67, y0 + h * 0.1),
            (x0 + w * 0.76, body_top),
        ],
        fill=glass,
    )
    for wx in (x0 + w * 0.22, x0 + w * 0.78):
        c.draw.ellipse((wx - wheel, y1 - 2 * wheel, wx + wheel, y1), fill=_mix(c.ink, BLACK, 0.5))
        c.draw.ellipse(
            (wx - wheel * 0.4, y1 - wheel * 1.4, wx + wheel * 0.4, y1 - wheel * 0.6),
            fill=_mix(c.ink, GREY, 0.4),
        )
    lamp = h * 0.08
    c.draw.ellipse(
        (x1 - lamp * 2.2, body_top + lamp, x1 - lamp * 0.2, body_top + lamp * 2.6),
        fill=c.scheme.light,
    )


def _robot(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h, cx = x1 - x0, y1 - y0, (x0 + x1) / 2
    head = h * 0.2
    c.draw.line([(cx, y0), (cx, y0 + h * 0.06)], fill=c.ink, width=max(2, round(h * 0.015)))
    c.draw.ellipse(
        (cx - h * 0.02, y0 - h * 0.02, cx + h * 0.02, y0 + h * 0.02), fill=c.scheme.accent
    )
    c.draw.rounded_rectangle(
        (cx - w * 0.28, y0 + h * 0.06, cx + w * 0.28, y0 + h * 0.06 + head),
        radius=head * 0.2,
        fill=c.ink,
    )
    eye_y = y0 + h * 0.06 + head * 0.45
    for side in (-1, 1) if rng.random() < 0.6 else (0,):
        ex = cx + side * w * 0.12
        c.draw.ellipse(
            (ex - head * 0.12, eye_y - head * 0.12, ex + head * 0.12, eye_y + head * 0.12),
            fill=c.scheme.accent,
        )
    body_top, body_bottom = y0 + h * 0.3, y0 + h * 0.68
    c.draw.rounded_rectangle(
        (x0 + w * 0.1, body_top, x1 - w * 0.1, body_bottom), radius=w * 0.08, fill=c.ink
    )
    c.draw.rectangle(
        (cx - w * 0.12, body_top + h * 0.08, cx + w * 0.12, body_top + h * 0.14),
        fill=_alpha(c.scheme.accent, 0.6),
    )
    for side in (-1, 1):
        c.draw.rectangle(
            (cx + side * w * 0.2 - w * 0.08, body_bottom, cx + side * w * 0.2 + w * 0.08, y1),
            fill=c.ink,
        )
        ax = cx + side * w * 0.45
        c.draw.rectangle((ax - w * 0.06, body_top, ax + w * 0.06, body_top + h * 0.32), fill=c.ink)


def _tree(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h, cx = x1 - x0, y1 - y0, (x0 + x1) / 2
    c.draw.rectangle((cx - w * 0.06, y0 + h * 0.5, cx + w * 0.06, y1), fill=c.ink)
    if rng.random() < 0.5:
        for k in range(3):
            top, bottom = y0 + h * 0.22 * k, y0 + h * (0.35 + 0.22 * k)
            c.draw.polygon(
                [(cx, top), (cx + w * (0.3 + 0.1 * k), bottom), (cx - w * (0.3 + 0.1 * k), bottom)],
                fill=c.ink,
            )
    else:
        for _ in range(5):
            bx, by = cx + rng.uniform(-0.25, 0.25) * w, y0 + rng.uniform(0.15, 0.4) * h
            r = w * rng.uniform(0.22, 0.32)
            c.draw.ellipse((bx - r, by - r, bx + r, by + r), fill=c.ink)


def _house(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    eave = y0 + h * 0.4
    c.draw.polygon([(x0 - w * 0.05, eave), ((x0 + x1) / 2, y0), (x1 + w * 0.05, eave)], fill=c.ink)
    c.draw.rectangle((x0 + w * 0.04, eave, x1 - w * 0.04, y1), fill=c.ink)
    c.draw.rectangle((x0 + w * 0.62, y0 + h * 0.05, x0 + w * 0.74, eave - h * 0.05), fill=c.ink)
    lit = c.scheme.accent
    for wx in (0.18, 0.44):
        c.draw.rectangle(
            (x0 + w * wx, eave + h * 0.12, x0 + w * (wx + 0.14), eave + h * 0.3), fill=lit
        )
    c.draw.rectangle(
        (x0 + w * 0.7, eave + h * 0.22, x0 + w * 0.84, y1), fill=_mix(c.ink, BLACK, 0.4)
    )


def _tower(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h, cx = x1 - x0, y1 - y0, (x0 + x1) / 2
    top, gallery = y0 + h * 0.22, y0 + h * 0.16
    c.draw.polygon(
        [(cx - w * 0.5, y1), (cx - w * 0.3, top), (cx + w * 0.3, top), (cx + w * 0.5, y1)],
        fill=c.ink,
    )
    stripe = _mix(c.ink, c.scheme.light, 0.35)
    for k in (0.3, 0.6):
        ya, yb = top + (y1 - top) * k, top + (y1 - top) * (k + 0.12)
        ia, ib = 0.3 + 0.2 * k, 0.3 + 0.2 * (k + 0.12)
        c.draw.polygon(
            [(cx - w * ia, ya), (cx + w * ia, ya), (cx + w * ib, yb), (cx - w * ib, yb)],
            fill=stripe,
        )
    c.draw.rectangle((cx - w * 0.42, gallery, cx + w * 0.42, top), fill=c.ink)
    c.draw.rectangle((cx - w * 0.24, y0 + h * 0.07, cx + w * 0.24, gallery), fill=c.scheme.accent)
    c.draw.polygon(
        [(cx - w * 0.32, y0 + h * 0.07), (cx, y0), (cx + w * 0.32, y0 + h * 0.07)], fill=c.ink
    )


def _boat(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    deck = y1 - h * 0.25
    c.draw.polygon([(x0, deck), (x1, deck), (x1 - w * 0.15, y1), (x0 + w * 0.1, y1)], fill=c.ink)
    mast = x0 + w * rng.uniform(0.4, 0.55)
    c.draw.line([(mast, y0), (mast, deck)], fill=c.ink, width=max(2, round(h * 0.02)))
    c.draw.polygon(
        [
            (mast + w * 0.02, y0 + h * 0.05),
            (mast + w * 0.02, deck - h * 0.06),
            (x1 - w * 0.1, deck - h * 0.06),
        ],
        fill=c.scheme.light,
    )
    c.draw.polygon(
        [
            (mast - w * 0.02, y0 + h * 0.15),
            (mast - w * 0.02, deck - h * 0.06),
            (x0 + w * 0.15, deck - h * 0.06),
        ],
        fill=_mix(c.scheme.light, c.scheme.accent, 0.4),
    )


def _animal(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    body = (x0 + w * 0.15, y0 + h * 0.3, x1 - w * 0.2, y0 + h * 0.65)
    c.draw.ellipse(body, fill=c.ink)
    hx = x1 - w * 0.14
    c.draw.line(
        [(x1 - w * 0.3, y0 + h * 0.45), (hx, y0 + h * 0.2)], fill=c.ink, width=round(h * 0.14)
    )
    c.draw.ellipse((hx - h * 0.14, y0 + h * 0.05, hx + h * 0.14, y0 + h * 0.3), fill=c.ink)
    c.draw.polygon(
        [(hx - h * 0.1, y0 + h * 0.1), (hx - h * 0.05, y0 - h * 0.04), (hx, y0 + h * 0.08)],
        fill=c.ink,
    )
    leg = max(2, round(h * 0.07))
    for lx in (0.25, 0.38, 0.62, 0.72):
        c.draw.line(
            [(x0 + w * lx, y0 + h * 0.55), (x0 + w * lx + rng.uniform(-0.03, 0.03) * w, y1)],
            fill=c.ink,
            width=leg,
        )
    c.draw.line(
        [(x0 + w * 0.17, y0 + h * 0.4), (x0, y0 + h * rng.uniform(0.2, 0.6))], fill=c.ink, width=leg
    )


def _castle(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    wall = y0 + h * 0.4
    c.draw.rectangle((x0 + w * 0.1, wall, x1 - w * 0.1, y1), fill=c.ink)
    for tx in (0.0, 0.4, 0.8):
        top = y0 + (h * 0.15 if tx == 0.4 else h * 0.25)
        c.draw.rectangle((x0 + w * tx, top, x0 + w * (tx + 0.2), y1), fill=c.ink)
        c.draw.polygon(
            [
                (x0 + w * (tx - 0.02), top),
                (x0 + w * (tx + 0.1), top - h * 0.15),
                (x0 + w * (tx + 0.22), top),
            ],
            fill=c.ink,
        )
        c.draw.rectangle(
            (x0 + w * (tx + 0.08), top + h * 0.1, x0 + w * (tx + 0.12), top + h * 0.18),
            fill=c.scheme.accent,
        )
    c.draw.chord(
        (x0 + w * 0.42, y1 - h * 0.3, x0 + w * 0.58, y1 + h * 0.1),
        180,
        360,
        fill=_mix(c.ink, BLACK, 0.5),
    )


def _rocket(c: _Canvas, rng: random.Random, box: _Box) -> None:
    x0, y0, x1, y1 = box
    w, h, cx = x1 - x0, y1 - y0, (x0 + x1) / 2
    c.draw.ellipse((cx - w * 0.25, y0, cx + w * 0.25, y1 - h * 0.1), fill=c.ink)
    for side in (-1, 1):
        c.draw.polygon(
            [
                (cx + side * w * 0.2, y1 - h * 0.4),
                (cx + side * w * 0.5, y1 - h * 0.05),
                (cx + side * w * 0.15, y1 - h * 0.15),
            ],
            fill=c.ink,
        )
    c.draw.ellipse(
        (cx - w * 0.1, y0 + h * 0.25, cx + w * 0.1, y0 + h * 0.25 + w * 0.2), fill=c.scheme.accent
    )
    c.draw.polygon(
        [(cx - w * 0.15, y1 - h * 0.12), (cx, y1 + h * 0.12), (cx + w * 0.15, y1 - h * 0.12)],
        fill=c.scheme.light,
    )


def _prop(c: _Canvas, rng: random.Random, box: _Box) -> None:
    # Unknown nouns get an abstract shape: the animatic only needs *something* there.
    x0, y0, x1, y1 = box
    w, h, cx = x1 - x0, y1 - y0, (x0 + x1) / 2
    shapes: tuple[Callable[[], None], ...] = (
        lambda: c.draw.rectangle((cx - w * 0.3, y0, cx + w * 0.3, y1), fill=c.ink),
        lambda: c.draw.ellipse((cx - w * 0.5, y1 - w, cx + w * 0.5, y1), fill=c.ink),
        lambda: c.draw.polygon([(x0, y1), (cx, y0), (x1, y1)], fill=c.ink),
        lambda: c.draw.chord((x0, y0, x1, y1 + h), 180, 360, fill=c.ink),
        lambda: c.draw.polygon(
            [(cx, y0), (x1, y0 + h * 0.45), (cx, y1), (x0, y0 + h * 0.45)], fill=c.ink
        ),
    )
    rng.choice(shapes)()


def _rain(c: _Canvas, rng: random.Random, box: _Box) -> None:
    slant = c.h * 0.02
    width = max(1, round(c.h * 0.0025))
    for _ in range(220):
        x, y = rng.uniform(-0.05, 1.05) * c.w, rng.uniform(-0.05, 1.0) * c.h
        length = c.h * rng.uniform(0.03, 0.07)
        c.draw.line(
            [(x, y), (x - slant, y + length)], fill=_alpha(c.scheme.light, 0.28), width=width
        )


def _snow(c: _Canvas, rng: random.Random, box: _Box) -> None:
    for _ in range(160):
        x, y, r = rng.uniform(0, c.w), rng.uniform(0, c.h), c.h * rng.uniform(0.002, 0.006)
        c.draw.ellipse((x - r, y - r, x + r, y + r), fill=_alpha(WHITE, 0.7))


def _fog(c: _Canvas, rng: random.Random, box: _Box) -> None:
    for _ in range(6):
        y, band = rng.uniform(0.3, 1.0) * c.h, c.h * rng.uniform(0.05, 0.12)
        c.draw.rectangle((0, y - band, c.w, y + band), fill=_alpha(c.scheme.light, 0.1))


def _lightning(c: _Canvas, rng: random.Random, box: _Box) -> None:
    # Strike on the far side of the subject, never through it.
    away = 0.25 if (box[0] + box[2]) / 2 > c.w / 2 else 0.75
    x, y = (away + rng.uniform(-0.12, 0.12)) * c.w, 0.0
    pts = [(x, y)]
    while y < c.horizon * 0.9:
        x, y = x + rng.uniform(-0.04, 0.04) * c.w, y + rng.uniform(0.05, 0.1) * c.h
        pts.append((x, y))
    c.draw.line(pts, fill=_alpha(c.scheme.light, 0.35), width=max(3, round(c.h * 0.012)))
    c.draw.line(pts, fill=_mix(c.scheme.light, WHITE, 0.6), width=max(1, round(c.h * 0.004)))


def _beam(c: _Canvas, rng: random.Random, box: _Box) -> None:
    # A beam from near the top of the box (a lamp) across the frame, dipping toward
    # the horizon: flat from a lamp on the skyline, steep from a light overhead.
    x0, y0, x1, _ = box
    cx, cy = (x0 + x1) / 2, y0 + (box[3] - y0) * 0.1
    side = 1 if cx < c.w / 2 else -1
    far = cx + side * c.w * 0.9
    spread = c.h * rng.uniform(0.08, 0.14)
    drop = (c.horizon - cy) * 0.35 + c.h * rng.uniform(-0.04, 0.04)
    c.draw.polygon(
        [(cx, cy), (far, cy + drop - spread), (far, cy + drop + spread)],
        fill=_alpha(c.scheme.light, 0.16),
    )
    c.draw.polygon(
        [(cx, cy), (far, cy + drop - spread * 0.4), (far, cy + drop + spread * 0.4)],
        fill=_alpha(c.scheme.light, 0.16),
    )


@dataclass(frozen=True)
class _Kind:
    layer: _Layer
    draw: _Drawer
    aspect: float = 1.0  # width / height, for subjects


_KINDS: dict[str, _Kind] = {
    "sun": _Kind("sky", _sun),
    "moon": _Kind("sky", _moon),
    "stars": _Kind("sky", _stars),
    "clouds": _Kind("sky", _clouds),
    "storm": _Kind("sky", _storm),
    "birds": _Kind("sky", _birds),
    "sea": _Kind("ground", _sea),
    "desert": _Kind("ground", _desert),
    "field": _Kind("ground", _field),
    "road": _Kind("ground", _road),
    "mountains": _Kind("setting", _mountains),
    "hills": _Kind("setting", _hills),
    "city": _Kind("setting", _city),
    "forest": _Kind("setting", _forest),
    "cliff": _Kind("setting", _cliff),
    "interior": _Kind("setting", _interior),
    "person": _Kind("subject", _person, 0.42),
    "crowd": _Kind("subject", _crowd, 1.4),
    "car": _Kind("subject", _car, 2.3),
    "robot": _Kind("subject", _robot, 0.62),
    "tree": _Kind("subject", _tree, 0.7),
    "house": _Kind("subject", _house, 1.15),
    "tower": _Kind("subject", _tower, 0.3),
    "boat": _Kind("subject", _boat, 1.2),
    "animal": _Kind("subject", _animal, 1.4),
    "castle": _Kind("subject", _castle, 1.2),
    "rocket": _Kind("subject", _rocket, 0.38),
    "rain": _Kind("overlay", _rain),
    "snow": _Kind("overlay", _snow),
    "fog": _Kind("overlay", _fog),
    "lightning": _Kind("overlay", _lightning),
    "beam": _Kind("overlay", _beam),
}
# Words that name each kind; a plural also finds its singular.
_KIND_WORDS: dict[str, str] = {
    "sun": "sun sunlight sunrise sunset sunny",
    "moon": "moon moonlight moonlit moonrise",
    "stars": "star starry galaxy milky constellation",
    "clouds": "cloud cloudy sky",
    "storm": "storm stormy thunder thunderstorm tempest overcast",
    "birds": "bird gull seagull crow flock",
    "sea": "sea ocean water lake river beach bay harbor harbour wave shore coast surf",
    "desert": "desert dune sand canyon",
    "field": "field meadow grass prairie farm garden park lawn",
    "road": "road street highway avenue alley lane path track",
    "mountains": "mountain peak alps volcano ridge summit",
    "hills": "hill valley countryside",
    "city": "city skyline town downtown building skyscraper metropolis village rooftops",
    "forest": "forest woods jungle pines trees woodland",
    "cliff": "cliff bluff ledge cliffside headland",
    "interior": "room kitchen office bedroom interior hallway corridor bar cafe studio lab laboratory library apartment classroom warehouse indoors inside diner",
    "person": "person man woman girl boy child kid detective astronaut soldier hero heroine stranger figure traveler traveller explorer knight she he chef scientist pilot runner dancer king queen keeper wizard",
    "crowd": "people crowd family friends couple team villagers",
    "car": "car truck taxi van bus jeep vehicle cab",
    "robot": "robot android droid mech machine cyborg",
    "tree": "tree oak pine palm willow",
    "house": "house cabin cottage home hut farmhouse barn shop church",
    "tower": "lighthouse tower spire beacon",
    "boat": "boat ship sailboat yacht ferry canoe vessel sail",
    "animal": "dog cat horse fox wolf deer animal cow lion tiger bear",
    "castle": "castle fortress palace citadel temple",
    "rocket": "rocket spaceship spacecraft shuttle missile",
    "rain": "rain raining rainy downpour drizzle rainfall",
    "snow": "snow snowing snowy snowfall blizzard snowflakes",
    "fog": "fog foggy mist misty haze hazy smoke",
    "lightning": "lightning thunderbolt bolt flash",
    "beam": "beam searchlight spotlight headlights sweeps",
}
_KIND_OF: dict[str, str] = {w: k for k, words in _KIND_WORDS.items() for w in words.split()}
_LAYER_ORDER: tuple[_Layer, ...] = ("sky", "ground", "setting", "subject", "overlay")

_STOPWORDS = frozenset(
    " ".join(
        (
            "a an the of on in at to and or with from into onto over under by for as is are",
            "was were be its it his her their our your this that these those then than very",
            "slowly quickly toward towards across through behind beside near far up down out",
            "off away while during shot scene camera view frame",
        )
    ).split()
)


# Some subjects make no sense on dry grass: when the prompt names no ground, imply one.
_IMPLIES: dict[str, str] = {"boat": "sea", "tower": "sea", "cliff": "sea", "rocket": "desert"}


def _singulars(word: str) -> tuple[str, ...]:
    # Crude but enough for nouns in prompts: "waves", "buses", not "glass".
    if word.endswith("ss") or not word.endswith("s"):
        return (word,)
    return (word, word[:-1], word[:-2]) if word.endswith("es") else (word, word[:-1])


def _kinds_in(text: str) -> list[str]:
    found: list[str] = []
    for word in _words(text):
        kind = next((_KIND_OF[w] for w in _singulars(word) if w in _KIND_OF), None)
        if kind and kind not in found:
            found.append(kind)
    if not any(_KINDS[k].layer == "ground" for k in found):
        implied = next((_IMPLIES[k] for k in found if k in _IMPLIES), None)
        found += [implied] if implied else []
    return found


def _prop_word(text: str) -> str:
    content = [w for w in _words(text) if len(w) > 3 and w not in _STOPWORDS and w not in _MOOD_OF]
    return content[0] if content else "object"


# --------------------------------------------------------------------------- composition


@dataclass(frozen=True)
class _Plan:
    framing: _Framing
    kinds: tuple[str, ...]
    moods: tuple[str, ...]
    hero_side: int  # -1 left third, +1 right third
    horizon: float  # fraction of picture height
    seed_key: str
    prop_word: str


# Indoors these would fill the room; the window already stands for the outside.
_OUTDOOR_ONLY = frozenset({"cliff", "mountains", "hills", "rain", "snow", "lightning"})


def _plan(prompt: str, framing: str, seed: int) -> _Plan:
    fr = _framing(framing)
    kinds = _kinds_in(prompt)
    if "interior" in kinds:
        kinds = [k for k in kinds if k not in _OUTDOOR_ONLY and _KINDS[k].layer != "sky"]
    if not any(_KINDS[k].layer == "subject" for k in kinds):
        kinds.append("prop")
    rng = _rng("plan", prompt, framing, seed)
    horizon = fr.horizon + rng.uniform(-0.05, 0.05)
    moods = tuple(_moods(_words(prompt)))
    key = f"{prompt}\x1e{seed}"
    return _Plan(fr, tuple(kinds), moods, rng.choice((-1, 1)), horizon, key, _prop_word(prompt))


def _layer(kind: str) -> _Layer:
    return _KINDS[kind].layer if kind in _KINDS else "subject"


def _layered(kinds: Iterable[str]) -> list[str]:
    order = {layer: i for i, layer in enumerate(_LAYER_ORDER)}
    # An interior replaces the whole backdrop, so it goes under the other settings.
    return sorted(kinds, key=lambda k: (order[_layer(k)], k != "interior"))


def _kind_seed(plan: _Plan, kind: str) -> int:
    return _digest("kind", kind, plan.seed_key, plan.prop_word if kind == "prop" else "")


def _draw_kind(c: _Canvas, kind: str, box: _Box, seed: int) -> None:
    (_KINDS[kind].draw if kind in _KINDS else _prop)(c, random.Random(seed), box)


def _subject_boxes(plan: _Plan, w: float, h: float, subjects: Sequence[str]) -> list[_Box]:
    """Hero on a rule-of-thirds line, the others smaller and further back on the other side."""
    fr = plan.framing
    rng = _rng("boxes", plan.seed_key)
    boxes: list[_Box] = []
    for i, kind in enumerate(subjects):
        aspect = _KINDS[kind].aspect if kind in _KINDS else 0.8
        bh = fr.hero * h * (1.0 if i == 0 else 0.55 ** min(i, 2) * rng.uniform(0.9, 1.1))
        bw = min(bh * aspect, w * (0.7 if i == 0 else 0.35))
        bh = bw / aspect
        side = plan.hero_side * (1 if i == 0 else -1)
        offset = (0.12 if fr.key == "close" else 0.19) if i < 2 else rng.uniform(0.25, 0.4)
        cx = (0.5 + side * offset + rng.uniform(-0.04, 0.04)) * w
        cx = min(max(cx, bw / 2 + w * 0.03), w * 0.97 - bw / 2)  # keep it in frame
        base = fr.base * h if i == 0 else plan.horizon * h + (fr.base - plan.horizon) * h * 0.45
        boxes.append((cx - bw / 2, base - bh, cx + bw / 2, base))
    return boxes


def _sky_box(plan: _Plan, w: float, h: float, i: int) -> _Box:
    # Sky elements sit on the side away from the hero so they do not hide it.
    rng = _rng("sky", plan.seed_key, i)
    side = -plan.hero_side if i % 2 == 0 else plan.hero_side
    cx = (0.5 + side * rng.uniform(0.18, 0.34)) * w
    cy = max(0.08, plan.horizon * rng.uniform(0.25, 0.65)) * h
    return (cx - 1, cy - 1, cx + 1, cy + 1)


# Subjects are the edges the eye follows, so only they pay for anti-aliasing: each is
# drawn at twice the size in a crop around its box, then box-reduced back in place.
_AA = 2


def _subject_region(box: _Box, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    # Room for what drawers put just outside their box: rim light, ears, flames.
    px, py = 0.1 * (box[2] - box[0]) + 4, 0.14 * (box[3] - box[1]) + 4
    x0, y0 = max(0, math.floor(box[0] - px)), max(0, math.floor(box[1] - py))
    x1, y1 = min(size[0], math.ceil(box[2] + px)), min(size[1], math.ceil(box[3] + py))
    return (x0, y0, x1, y1) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


def _local(box: _Box, region: tuple[int, int, int, int]) -> _Box:
    x0, y0 = region[0], region[1]
    return ((box[0] - x0) * _AA, (box[1] - y0) * _AA, (box[2] - x0) * _AA, (box[3] - y0) * _AA)


def _rim_box(box: _Box) -> _Box:
    # The rim-light copy peeks out up and to the right of the silhouette.
    nudge = (box[2] - box[0]) * 0.02 + _AA
    return (box[0] + nudge, box[1] - nudge * 0.6, box[2] + nudge, box[3])


def _subject_passes(c: _Canvas, kind: str, box: _Box, seed: int, rim: RGB, ink: RGB) -> None:
    _draw_kind(replace(c, ink=rim), kind, _rim_box(box), seed)
    _draw_kind(replace(c, ink=ink), kind, box, seed)


def _draw_subject(c: _Canvas, kind: str, box: _Box, seed: int, depth: float) -> None:
    region = _subject_region(box, c.img.size)
    if region is None:
        return
    x0, y0, x1, y1 = region
    big = c.img.crop(region).resize(((x1 - x0) * _AA, (y1 - y0) * _AA), Image.Resampling.NEAREST)
    s = c.scheme
    sub = _canvas(big, s, (c.horizon - y0) * _AA)
    rim = _mix(s.accent, s.light, 0.3)
    _subject_passes(sub, kind, _local(box, region), seed, rim, _mix(s.ink, s.sky_bottom, depth))
    c.img.paste(big.reduce(_AA), (x0, y0))


_MASK_SCHEME = _Scheme(WHITE, WHITE, WHITE, WHITE, WHITE, WHITE, WHITE, WHITE)


def _subject_mask(
    kind: str, box: _Box, seed: int, region: tuple[int, int, int, int]
) -> Image.Image:
    """The subject's exact silhouette (rim included) over ``region``, as an L mask.

    Drawers only ever use their box and the scheme, so redrawing in white on black
    reproduces the pixels the subject covers.
    """
    x0, y0, x1, y1 = region
    big = Image.new("RGB", ((x1 - x0) * _AA, (y1 - y0) * _AA))
    _subject_passes(_canvas(big, _MASK_SCHEME, 0), kind, _local(box, region), seed, WHITE, WHITE)
    # Translucent parts (glass, glow) still belong to the subject.
    return big.reduce(_AA).convert("L").point([min(255, v * 3) for v in range(256)])


class _Shot(NamedTuple):
    picture: Image.Image
    hero: _Box  # pixels
    hero_kind: str
    lamps: list[_Box]  # subjects a beam can come from, best first


def _compose(plan: _Plan, scheme: _Scheme, size: tuple[int, int]) -> _Shot:
    """Draw the picture and say where its subjects ended up."""
    w, h = size
    fr = plan.framing
    horizon = plan.horizon * h
    img = _vgradient((w, h), [scheme.sky_top, scheme.sky_bottom, scheme.sky_bottom])
    c = _canvas(img, scheme, horizon)
    _ground_band(c, scheme.ground_far, scheme.ground_near, (0, horizon, w, h))
    subjects = [k for k in plan.kinds if _layer(k) == "subject"]
    boxes = _subject_boxes(plan, w, h, subjects)
    if "cliff" in plan.kinds:
        boxes[0] = _onto_cliff(boxes[0], horizon, h)
    hero = boxes[0]
    lamps = [b for k, b in sorted(zip(subjects, boxes, strict=True), key=_lamp_rank) if k in _LAMPS]
    # Where each non-subject layer draws; subjects use their own boxes.
    areas: dict[_Layer, _Box] = {
        "ground": (0, horizon, w, h),
        "setting": (0, 0, w, horizon),
        "overlay": hero,
    }
    special = {"cliff": _cliff_box(hero, w, h), "beam": _beam_source(lamps, hero, w)}
    sky_i = 0
    for kind in _layered(plan.kinds):
        layer = _layer(kind)
        if layer == "subject" and fr.blur and c.img is img:
            c = _canvas(_depth_blur(img, fr.blur), scheme, horizon)
        if layer == "sky":
            _draw_kind(c, kind, _sky_box(plan, w, h, sky_i), _kind_seed(plan, kind))
            sky_i += 1
        elif layer == "subject":
            i = subjects.index(kind)
            _draw_subject(c, kind, boxes[i], _kind_seed(plan, kind), 0.0 if i == 0 else 0.25)
        else:
            _draw_kind(c, kind, special.get(kind, areas[layer]), _kind_seed(plan, kind))
    if fr.ots:
        _shoulder(c, plan)
    return _Shot(c.img, hero, subjects[0], lamps)


# Subjects that carry a lamp a beam can come from, best first.
_LAMPS = ("tower", "car", "rocket")


def _lamp_rank(item: tuple[str, _Box]) -> int:
    return _LAMPS.index(item[0]) if item[0] in _LAMPS else len(_LAMPS)


def _beam_source(lamps: Sequence[_Box], hero: _Box, w: float) -> _Box:
    if lamps:
        return lamps[0]
    # No lamp in shot: an off-screen light, high on the side away from the subject.
    x = w * (0.02 if (hero[0] + hero[2]) / 2 > w / 2 else 0.98)
    return (x, 0.0, x, 0.0)


def _onto_cliff(hero: _Box, horizon: float, h: float) -> _Box:
    lift = (hero[3] - horizon) + h * 0.12
    return (hero[0], hero[1] - lift, hero[2], hero[3] - lift)


def _cliff_box(hero: _Box, w: float, h: float) -> _Box:
    cx = (hero[0] + hero[2]) / 2
    half = (hero[2] - hero[0]) * 0.9 + w * 0.05
    return (0, hero[3], cx + half, h) if cx < w / 2 else (cx - half, hero[3], w, h)


def _depth_blur(img: Image.Image, amount: float) -> Image.Image:
    # Blur a quarter-size copy: the same look at a fraction of the cost.
    small = img.reduce(4).filter(ImageFilter.GaussianBlur(max(1.0, img.height * amount / 4)))
    return small.resize(img.size, Image.Resampling.BILINEAR)


def _shoulder(c: _Canvas, plan: _Plan) -> None:
    # Over-the-shoulder: a dark, out-of-focus head and shoulder framing one side.
    cx = c.w * (0.5 - plan.hero_side * 0.42)
    colour = _mix(c.scheme.ink, BLACK, 0.5)
    c.draw.ellipse((cx - c.w * 0.3, c.h * 0.62, cx + c.w * 0.3, c.h * 1.5), fill=colour)
    c.draw.ellipse((cx - c.w * 0.11, c.h * 0.2, cx + c.w * 0.11, c.h * 0.8), fill=colour)


# --------------------------------------------------------------------------- finishing


@lru_cache(maxsize=16)
def _vignette_mask(size: tuple[int, int], strength: float) -> Image.Image:
    lut = [round(255 * strength * (v / 255) ** 2.2) for v in range(256)]
    return Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR).point(lut)


def _vignette(img: Image.Image, colour: RGB, strength: float = 0.45) -> Image.Image:
    return Image.composite(
        Image.new("RGB", img.size, colour), img, _vignette_mask(img.size, strength)
    )


@lru_cache(maxsize=32)
def _font(size: int) -> _Font:
    return ImageFont.load_default(size=size)


def _text_width(font: _Font, text: str) -> float:
    return float(font.getlength(text))


def _wrap(text: str, font: _Font, max_w: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        while _text_width(font, word) > max_w and len(word) > 1:
            cut = max(
                1,
                next(
                    (i for i in range(len(word), 0, -1) if _text_width(font, word[:i]) <= max_w), 1
                ),
            )
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        trial = f"{current} {word}" if current else word
        if _text_width(font, trial) <= max_w:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def _fit_text(text: str, max_w: float, max_lines: int, size: int) -> tuple[_Font, list[str]]:
    """Shrink the font a little before truncating: a complete caption beats a big one."""
    for s in range(size, max(8, round(size * 0.75)) - 1, -1):
        font = _font(s)
        lines = _wrap(text, font, max_w)
        if len(lines) <= max_lines:
            return font, lines
    lines = lines[:max_lines]
    last = lines[-1]
    while last and _text_width(font, last + "...") > max_w:
        last = last[:-1].rstrip()
    lines[-1] = last + "..."
    return font, lines


@dataclass(frozen=True)
class _BarLayout:
    height: int
    font_size: int
    lines: int
    pad: int


def _bar_layout(size: tuple[int, int]) -> _BarLayout:
    # The bar height depends on the size only, so the deriver can strip it from any panel.
    w, h = size
    font_size = max(11, round(min(w, h) * 0.034))
    lines = 3 if h > w * 1.2 else 2
    pad = max(4, round(font_size * 0.55))
    line_h = round(font_size * 1.25)
    return _BarLayout(pad * 2 + lines * line_h, font_size, lines, pad)


def _draw_caption_bar(
    img: Image.Image, caption: str, label: tuple[str, str], scheme: _Scheme
) -> None:
    w, h = img.size
    bar = _bar_layout(img.size)
    top = h - bar.height
    d = ImageDraw.Draw(img)
    d.rectangle((0, top, w, h), fill=scheme.bar)
    d.rectangle((0, top, w, top + max(2, bar.pad // 3)), fill=scheme.accent)
    small = _font(max(9, round(bar.font_size * 0.62)))
    chip_w = round(max(_text_width(small, t) for t in label)) + bar.pad * 2
    chip_top = top + bar.pad + max(2, bar.pad // 3)
    d.rounded_rectangle(
        (bar.pad, chip_top, bar.pad + chip_w, h - bar.pad),
        radius=bar.pad // 2,
        fill=_mix(scheme.bar, WHITE, 0.12),
    )
    line_h = round(small.size * 1.25) if isinstance(small, ImageFont.FreeTypeFont) else 12
    for i, text in enumerate(label):
        colour = scheme.accent if i == 0 else _mix(WHITE, scheme.bar, 0.3)
        d.text(
            (bar.pad * 2, chip_top + bar.pad // 2 + i * line_h),
            text,
            font=small,
            fill=_readable(colour, scheme.bar),
        )
    text_x = bar.pad * 3 + chip_w
    font, lines = _fit_text(
        caption.strip() or "(no caption)", w - text_x - bar.pad, bar.lines, bar.font_size
    )
    line_h = round(bar.font_size * 1.25)
    block = line_h * len(lines)
    y = top + (bar.height - block) // 2 + max(1, bar.pad // 6)
    for i, line in enumerate(lines):
        d.text((text_x, y + i * line_h), line, font=font, fill=(245, 245, 240))


def _readable(colour: RGB, background: RGB) -> RGB:
    return colour if abs(_lum(colour) - _lum(background)) > 90 else _mix(colour, WHITE, 0.6)


def _encode(img: Image.Image, meta: dict[str, object]) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(_META_KEY, json.dumps(meta, sort_keys=True, separators=(",", ":")))
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info, compress_level=_PNG_LEVEL)
    return buf.getvalue()


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    if w < _MIN_SIDE or h < _MIN_SIDE:
        raise ValueError(f"panel size {w}x{h} is too small (minimum {_MIN_SIDE}x{_MIN_SIDE})")
    return int(w), int(h)


def _dutch(img: Image.Image, seed_key: str) -> Image.Image:
    angle = _rng("dutch", seed_key).choice((-1, 1)) * 8.0
    w, h = img.size
    # Rotate, then crop in just enough that no empty corner shows.
    rad = math.radians(abs(angle))
    zoom = math.cos(rad) + math.sin(rad) * max(w / h, h / w)
    rotated = img.rotate(angle, resample=Image.Resampling.BILINEAR)
    cw, ch = w / zoom, h / zoom
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    return rotated.resize((w, h), Image.Resampling.BILINEAR, box=box)


# --------------------------------------------------------------------------- keyframes


def draw_keyframe(
    *,
    prompt: str,
    caption: str,
    palette: Sequence[str],
    framing: str,
    size: tuple[int, int],
    seed: int,
) -> bytes:
    """Draw a start keyframe as a storyboard panel and return it as PNG bytes.

    The picture is built from the prompt's words (recognised nouns such as *sun*,
    *city*, *sea*, *person* or *lighthouse* become simple shapes; an unknown subject
    becomes an abstract prop), laid out for ``framing`` ("wide establishing shot",
    "close-up", "aerial", "low angle", "over the shoulder"...; unknown means
    medium; "dutch" tilts it), coloured from ``palette`` (see :func:`parse_palette`)
    and finished with a vignette and a caption bar holding a frame label and
    ``caption``. The same arguments always give the same bytes; different seeds
    recompose the shot.
    """
    w, h = _check_size(size)
    bar = _bar_layout((w, h))
    plan = _plan(prompt, framing, seed)
    scheme = _apply_moods(_scheme(parse_palette(palette)), plan.moods)
    picture, hero, hero_kind, lamps = _compose(plan, scheme, (w, h - bar.height))
    meta: dict[str, object] = {"v": 1, "bar": bar.height, "framing": plan.framing.key}
    meta["hero"] = _fractions(hero, picture.size)
    meta["lamps"] = [_fractions(b, picture.size) for b in lamps if b != hero]
    meta["horizon"] = round(plan.horizon, 5)
    meta["kinds"] = sorted(plan.kinds)
    if _DUTCH_RE.search(framing.lower()):
        picture = _dutch(picture, plan.seed_key)
    else:
        # A tilted picture no longer matches a redrawn silhouette, so only an
        # upright one tells the deriver how to redraw its subject.
        meta["hero_kind"], meta["hero_seed"] = hero_kind, _kind_seed(plan, hero_kind)
    picture = _vignette(picture, _mix(scheme.ink, BLACK, 0.5))
    return _finish(picture, (w, h), caption, ("START", plan.framing.label), scheme, meta)


def _fractions(box: _Box, size: tuple[int, int]) -> list[float]:
    return [round(v / d, 5) for v, d in zip(box, size * 2, strict=True)]


def _finish(
    picture: Image.Image,
    size: tuple[int, int],
    caption: str,
    label: tuple[str, str],
    scheme: _Scheme,
    meta: dict[str, object],
) -> bytes:
    panel = Image.new("RGB", size, scheme.bar)
    panel.paste(picture, (0, 0))
    _draw_caption_bar(panel, caption, label, scheme)
    return _encode(panel, meta)


def _read_meta(img: Image.Image) -> dict[str, object]:
    raw = img.info.get(_META_KEY)
    if not isinstance(raw, str):
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) and meta.get("v") == 1 else {}


def _meta_float(meta: dict[str, object], key: str, default: float) -> float:
    value = meta.get(key)
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _meta_box(raw: object, size: tuple[int, int]) -> _Box | None:
    if not (isinstance(raw, list) and len(raw) == 4):
        return None
    if not all(isinstance(v, int | float) for v in raw):
        return None
    x0, y0, x1, y1 = (float(v) for v in raw)
    return (x0 * size[0], y0 * size[1], x1 * size[0], y1 * size[1])


def _meta_hero(meta: dict[str, object], size: tuple[int, int]) -> _Box:
    box = _meta_box(meta.get("hero"), size)
    if box is None:
        # Unknown provenance: assume a centred subject, which is where most shots put it.
        return (0.35 * size[0], 0.3 * size[1], 0.65 * size[0], 0.95 * size[1])
    return box


def _meta_lamps(meta: dict[str, object], size: tuple[int, int]) -> list[_Box]:
    raw = meta.get("lamps")
    boxes = [_meta_box(item, size) for item in raw] if isinstance(raw, list) else []
    return [b for b in boxes if b is not None]


# Motion words in the end prompt: (horizontal direction, scale of the subject).
_MOTION: dict[str, tuple[float, float]] = {
    "left": (-1.0, 1.0),
    "leftward": (-1.0, 1.0),
    "right": (1.0, 1.0),
    "rightward": (1.0, 1.0),
    "toward": (0.0, 1.3),
    "towards": (0.0, 1.3),
    "approaches": (0.0, 1.3),
    "closer": (0.0, 1.3),
    "away": (0.0, 0.88),
    "recedes": (0.0, 0.88),
    "distance": (0.0, 0.88),
}


def _motion(words: Sequence[str], rng: random.Random) -> tuple[float, float]:
    direction, scale = rng.choice((-1.0, 1.0)), rng.uniform(1.1, 1.2)
    for word in words:
        d, s = _MOTION.get(word, (0.0, 1.0))
        direction, scale = d or direction, scale if s == 1.0 else s
    return direction, scale


def _hstrip_fill(picture: Image.Image, region: tuple[int, int, int, int]) -> Image.Image:
    """Guess the background behind ``region`` from the columns either side of it.

    Skies and grounds are vertical gradients, so stretching the neighbouring
    columns across (blended left to right) recreates them almost exactly.
    """
    x0, y0, x1, y1 = region
    size = (x1 - x0, y1 - y0)
    # Average a band of columns, not one, so a lit window beside the subject does
    # not become a streak across the hole.
    band = max(2, (x1 - x0) // 12)
    sides = [(max(0, x0 - band), x0), (x1, min(picture.width, x1 + band))]
    columns = [
        picture.crop((a, y0, b, y1))
        .resize((1, size[1]), Image.Resampling.BOX)
        .resize(size, Image.Resampling.NEAREST)
        for a, b in sides
        if b > a
    ]
    if not columns:
        blurred = picture.crop(region).reduce(8).filter(ImageFilter.GaussianBlur(4))
        return blurred.resize(size, Image.Resampling.BILINEAR)
    if len(columns) == 1:
        return columns[0]
    ramp = Image.frombytes("L", (256, 1), bytes(range(256))).resize(size, Image.Resampling.BILINEAR)
    return Image.composite(columns[1], columns[0], ramp)


def _rect_mask(size: tuple[int, int]) -> Image.Image:
    w, h = size
    inset = max(2, round(min(w, h) * 0.06))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (inset, inset, w - inset, h - inset), radius=inset * 2, fill=255
    )
    return mask.filter(ImageFilter.BoxBlur(inset))


def _move_hero(
    picture: Image.Image, hero: _Box, meta: dict[str, object], direction: float, scale: float
) -> _Box:
    """Move and rescale the subject in place; return its new box.

    With the start's metadata the silhouette is redrawn as a mask, the subject is
    lifted out, the hole filled with the background either side, and the subject
    pasted back moved and scaled. Without it, the subject's patch can only grow in
    place, so the grown copy covers the original and no ghost is left.
    """
    region = _subject_region(hero, picture.size)
    if region is None:
        return hero
    x0, y0, x1, y1 = region
    patch = picture.crop(region)
    kind, seed = meta.get("hero_kind"), meta.get("hero_seed")
    bw = hero[2] - hero[0]
    if isinstance(kind, str) and isinstance(seed, int):
        mask = _subject_mask(kind, hero, seed, region)
        picture.paste(
            _hstrip_fill(picture, region), (x0, y0), mask.filter(ImageFilter.MaxFilter(5))
        )
        # Small moves keep the new subject over most of the old one, so little of
        # the guessed background shows.
        dx = direction * min(bw * 0.3, picture.width * 0.08)
        if bw > picture.width * 0.3:
            dx *= 0.3  # a frame-filling subject mostly grows rather than travels
    else:
        mask = _rect_mask(patch.size)
        scale = max(scale, 1.12)
        dx = direction * bw * (scale - 1) * 0.4
    # Scale about the subject's feet, so it stays on the ground as it moves; feet
    # below the frame (close-ups) would swing the visible part up, so clamp them.
    fx, fy = (hero[0] + hero[2]) / 2, min(hero[3], float(picture.height))
    nfx, nfy = fx + dx, fy + (scale - 1) * (hero[3] - hero[1]) * 0.12
    nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    ox, oy = round(nfx - (fx - x0) * scale), round(nfy - (fy - y0) * scale)
    picture.paste(
        patch.resize((nw, nh), Image.Resampling.BILINEAR),
        (ox, oy),
        mask.resize((nw, nh), Image.Resampling.BILINEAR),
    )
    return (
        nfx - (fx - hero[0]) * scale,
        nfy - (fy - hero[1]) * scale,
        nfx + (hero[2] - fx) * scale,
        nfy + (hero[3] - fy) * scale,
    )


def _push_in(
    picture: Image.Image, size: tuple[int, int], hero: _Box, zoom: float
) -> tuple[Image.Image, Callable[[_Box], _Box]]:
    """Cover-fit ``picture`` into ``size``, zoomed by ``zoom`` toward the hero.

    Returns the image and the map from boxes in the old picture to the new one.
    """
    sw, sh = picture.size
    tw, th = size
    cover = max(tw / sw, th / sh) * zoom
    cw, ch = tw / cover, th / cover
    hx, hy = (hero[0] + hero[2]) / 2, (hero[1] + hero[3]) / 2
    cx, cy = sw / 2 + (hx - sw / 2) * 0.3, sh / 2 + (hy - sh / 2) * 0.3
    left = min(max(0.0, cx - cw / 2), sw - cw)
    top = min(max(0.0, cy - ch / 2), sh - ch)
    out = picture.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
    sx, sy = tw / cw, th / ch

    def to_new(box: _Box) -> _Box:
        return (
            (box[0] - left) * sx,
            (box[1] - top) * sy,
            (box[2] - left) * sx,
            (box[3] - top) * sy,
        )

    return out, to_new


@lru_cache(maxsize=8)
def _vramp(size: tuple[int, int], top: float, bottom: float) -> Image.Image:
    lut = [round(255 * (top + (bottom - top) * i / 255)) for i in range(256)]
    return Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR).point(lut)


def _light_shift(img: Image.Image, colour: RGB, top: float, bottom: float) -> Image.Image:
    return Image.composite(Image.new("RGB", img.size, colour), img, _vramp(img.size, top, bottom))


def _shift_colour(
    moods: Sequence[str], scheme: _Scheme, colours: Sequence[RGB], rng: random.Random
) -> RGB:
    targets: dict[str, RGB] = {
        "night": _mix(scheme.ink, (10, 20, 60), 0.3),
        "dusk": scheme.accent,
        "dawn": _mix(scheme.light, scheme.accent, 0.4),
        "day": scheme.light,
        "storm": _mix(scheme.ink, GREY, 0.4),
    }
    return targets[moods[-1]] if moods else rng.choice(list(colours))


def derive_end_frame(
    start_png: bytes,
    *,
    prompt: str,
    caption: str,
    palette: Sequence[str],
    framing: str,
    size: tuple[int, int],
    seed: int,
) -> bytes:
    """Evolve a start panel into the end panel of the same shot and return PNG bytes.

    Works on the start picture's own pixels (its caption bar removed): the subject
    moves and changes scale (motion words such as "left", "toward" or "away" in
    ``prompt`` steer it), the camera pushes in toward it (further when ``framing``
    is closer than the start's), the light shifts toward a palette colour ("night",
    "dusk", "dawn"... pick which), and elements of ``prompt`` that the start frame
    lacked are added. The caption bar is redrawn with ``caption``. A start image of
    another size is cover-fitted to ``size``. Deterministic.
    """
    w, h = _check_size(size)
    with Image.open(io.BytesIO(start_png)) as opened:
        meta = _read_meta(opened)
        start = opened.convert("RGB")
    bar = _bar_layout((w, h))
    cut = round(_meta_float(meta, "bar", _bar_layout(start.size).height))
    picture = start.crop((0, 0, start.width, max(1, start.height - cut)))

    plan = _plan(prompt, framing, seed)
    rng = _rng("end", plan.seed_key)
    colours = parse_palette(palette)
    scheme = _apply_moods(_scheme(colours), plan.moods)

    hero = _move_hero(picture, _meta_hero(meta, picture.size), meta, *_motion(_words(prompt), rng))
    start_framing = _FRAMINGS.get(str(meta.get("framing")), _FRAMINGS["medium"])
    closer = max(0, plan.framing.closeness - start_framing.closeness)
    # Gentle by default: the clip renderer adds its own pan and zoom on top.
    zoom = 1.035 + 0.1 * closer + rng.uniform(0.0, 0.02)
    img, to_new = _push_in(picture, (w, h - bar.height), hero, zoom)
    start_horizon = _meta_float(meta, "horizon", plan.horizon) * picture.height
    horizon = min(0.95, max(0.05, to_new((0, start_horizon, 0, start_horizon))[1] / img.height))
    lamps = [to_new(b) for b in _meta_lamps(meta, picture.size)]
    hero = to_new(hero)
    # A named time of day earns a stronger shift than the arbitrary drift we pick otherwise.
    strength = 1.0 if plan.moods else 0.65
    shift = _shift_colour(plan.moods, scheme, colours, rng)
    img = _light_shift(img, shift, 0.16 * strength, 0.04 * strength)

    old_kinds = meta.get("kinds")
    had = {str(k) for k in old_kinds} if isinstance(old_kinds, list) else None
    lit = [hero] if meta.get("hero_kind") in _LAMPS else []
    added = _add_elements(img, plan, scheme, (hero, [*lit, *lamps]), had, horizon)

    meta_out = dict(meta)
    meta_out.update(
        v=1,
        bar=bar.height,
        framing=plan.framing.key,
        hero=_fractions(hero, img.size),
        lamps=[_fractions(b, img.size) for b in lamps],
        horizon=round(horizon, 5),
        kinds=sorted((had or set()) | set(added)),
    )
    return _finish(img, (w, h), caption, ("END", plan.framing.label), scheme, meta_out)


# Settings that can be added in front of an existing picture, as a dark foreground.
_FOREGROUND = frozenset({"sea", "field", "desert", "forest", "hills"})


def _add_elements(
    img: Image.Image,
    plan: _Plan,
    scheme: _Scheme,
    subject: tuple[_Box, list[_Box]],
    had: set[str] | None,
    horizon: float,
) -> list[str]:
    """Draw, in place, what the end prompt brings that the start frame lacked.

    Only additive layers go over an existing picture: sky elements away from the
    subject, new subjects on its other side, weather on top, and a few settings as a
    dark foreground (nothing can be slipped *behind* what is already there).
    """
    hero, lamps = subject
    if had is None:
        # Unknown start: redrawing a subject that may already be there would duplicate it.
        new = [k for k in plan.kinds if _layer(k) in ("sky", "overlay")]
    else:
        new = [
            k for k in plan.kinds if k not in had and (_layer(k) != "setting" or k in _FOREGROUND)
        ]
        new = [k for k in new if k != "prop" and (_layer(k) != "ground" or k in _FOREGROUND)]
    w, h = img.size
    c = _canvas(img, scheme, horizon * h)
    end_plan = replace(
        plan, hero_side=1 if (hero[0] + hero[2]) / 2 > w / 2 else -1, horizon=horizon
    )
    subjects = [k for k in new if _layer(k) == "subject"]
    boxes = _subject_boxes(end_plan, w, h, ["prop", *subjects])[1:]
    front = replace(c, scheme=_foreground_scheme(scheme), horizon=h * 0.9)
    sky_i = 0
    for kind in _layered(new):
        layer, seed = _layer(kind), _kind_seed(plan, kind)
        if layer == "sky":
            _draw_kind(c, kind, _sky_box(end_plan, w, h, sky_i), seed)
            sky_i += 1
        elif layer == "subject":
            _draw_subject(c, kind, boxes[subjects.index(kind)], seed, 0.15)
        elif layer == "overlay":
            source = _beam_source(lamps, hero, w) if kind == "beam" else hero
            _draw_kind(c, kind, source, seed)
        else:
            _draw_kind(
                front, kind, (0, h * 0.9, w, h) if layer == "ground" else (0, 0, w, h * 0.97), seed
            )
    return new


def _foreground_scheme(s: _Scheme) -> _Scheme:
    dark = _mix(s.ink, BLACK, 0.2)
    return replace(
        s,
        sky_top=dark,
        sky_bottom=_mix(dark, s.sky_bottom, 0.2),
        ground_far=dark,
        ground_near=_mix(dark, BLACK, 0.5),
    )


# --------------------------------------------------------------------------- contact sheet


@dataclass(frozen=True)
class SheetRow:
    """One scene on a contact sheet."""

    index: int
    caption: str
    start_png: Path | None  # None when missing
    end_png: Path | None
    note: str | None = None  # e.g. "gap: rai_filtered" shown in the row


_PAPER: RGB = (244, 241, 234)
_INK: RGB = (34, 34, 38)
_FAINT: RGB = (150, 146, 138)
_NOTE: RGB = (190, 70, 30)


def _load(path: Path | None) -> Image.Image | None:
    if path is None:
        return None
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError):
        return None


def _thumb_size(images: Sequence[Image.Image | None], thumb_width: int) -> tuple[int, int]:
    # Both thumbnails of a row share one box; portrait shots get a narrower box so a
    # 9:16 row is not three times as tall as a 16:9 one.
    ref = next((im for im in images if im is not None), None)
    aspect = ref.width / ref.height if ref else 16 / 9
    tw, th = thumb_width, round(thumb_width / aspect)
    cap = round(thumb_width * 1.25)
    if th > cap:
        tw, th = round(cap * aspect), cap
    return tw, th


def _thumb(im: Image.Image | None, size: tuple[int, int]) -> Image.Image:
    tile = Image.new("RGB", size, _mix(_PAPER, _FAINT, 0.25))
    w, h = size
    if im is not None:
        # Fit inside the row's box without distortion, should the pair disagree.
        scale = min(w / im.width, h / im.height)
        fit = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        tile.paste(
            im.resize(fit, Image.Resampling.LANCZOS, reducing_gap=2.0),
            ((w - fit[0]) // 2, (h - fit[1]) // 2),
        )
        return tile
    d = ImageDraw.Draw(tile)
    d.line([(0, 0), (w, h)], fill=_FAINT, width=2)
    d.line([(0, h), (w, 0)], fill=_FAINT, width=2)
    font = _font(max(11, w // 16))
    half = _text_width(font, "missing") / 2 + 6
    d.rectangle((w / 2 - half, h / 2 - w / 28 - 4, w / 2 + half, h / 2 + w / 28 + 4), fill=_PAPER)
    d.text((w / 2, h / 2), "missing", font=font, fill=_INK, anchor="mm")
    return tile


def _arrow(d: ImageDraw.ImageDraw, x0: float, x1: float, y: float) -> None:
    d.line([(x0, y), (x1 - 8, y)], fill=_FAINT, width=3)
    d.polygon([(x1, y), (x1 - 12, y - 8), (x1 - 12, y + 8)], fill=_FAINT)


# Sheet geometry in pixels: margins, space around rows, the arrow between thumbnails,
# and the line heights of the body and note text.
_PAD, _GAP, _ARROW, _LINE, _NOTE_LINE = 28, 18, 44, 23, 20


@dataclass(frozen=True)
class _SheetLayout:
    thumb_width: int
    text_width: int

    @property
    def width(self) -> int:
        return _PAD * 2 + self.thumb_width * 2 + _ARROW + _GAP + self.text_width

    @property
    def text_x(self) -> int:
        return _PAD + self.thumb_width * 2 + _ARROW + _GAP


@dataclass(frozen=True)
class _LaidRow:
    row: SheetRow
    thumbs: list[Image.Image]
    caption: list[str]
    note: list[str]

    @property
    def height(self) -> int:
        text = (
            30 + len(self.caption) * _LINE + (len(self.note) * _NOTE_LINE + 18 if self.note else 0)
        )
        return max(self.thumbs[0].height + 34, text) + _GAP * 2


def _lay_out_row(row: SheetRow, layout: _SheetLayout) -> _LaidRow:
    images = [_load(row.start_png), _load(row.end_png)]
    size = _thumb_size(images, layout.thumb_width)
    caption = _wrap(row.caption.strip() or "(no caption)", _font(17), layout.text_width)[:12]
    note = _wrap(row.note, _font(15), layout.text_width - 16) if row.note else []
    return _LaidRow(row, [_thumb(im, size) for im in images], caption, note)


def _draw_row(sheet: Image.Image, item: _LaidRow, layout: _SheetLayout, y: int) -> None:
    d = ImageDraw.Draw(sheet)
    d.line([(_PAD, y), (layout.width - _PAD, y)], fill=_mix(_PAPER, _FAINT, 0.5), width=1)
    top = y + _GAP
    d.text((_PAD, top), f"Scene {item.row.index}", font=_font(20), fill=_INK)
    ty, x = top + 32, _PAD
    for k, thumb in enumerate(item.thumbs):
        sheet.paste(thumb, (x, ty))
        d.rectangle((x - 1, ty - 1, x + thumb.width, ty + thumb.height), outline=_INK, width=1)
        d.text((x + 4, ty + thumb.height + 2), ("start", "end")[k], font=_font(15), fill=_FAINT)
        if k == 0:
            _arrow(d, x + thumb.width + 8, x + thumb.width + _ARROW - 8, ty + thumb.height / 2)
        x += thumb.width + _ARROW
    ly = top + 32
    for line in item.caption:
        d.text((layout.text_x, ly), line, font=_font(17), fill=_INK)
        ly += _LINE
    if item.note:
        ly += 10
        d.rectangle(
            (layout.text_x, ly - 4, layout.text_x + 4, ly + len(item.note) * _NOTE_LINE), fill=_NOTE
        )
        for line in item.note:
            d.text((layout.text_x + 12, ly), line, font=_font(15), fill=_NOTE)
            ly += _NOTE_LINE


def contact_sheet(rows: Sequence[SheetRow], *, title: str, thumb_width: int = 320) -> bytes:
    """Lay out scenes as a storyboard contact sheet and return it as PNG bytes.

    A title header, then one row per scene: "Scene N", start and end thumbnails
    (aspect kept; a missing or unreadable image becomes a placeholder) joined by an
    arrow, and the wrapped caption and note beside them. Width is fixed by
    ``thumb_width``; height grows with the rows.
    """
    tw = max(80, thumb_width)
    layout = _SheetLayout(tw, round(tw * 1.15))
    title_lines = _wrap(title.strip() or "Storyboard", _font(34), layout.width - 2 * _PAD)[:3]
    laid = [_lay_out_row(row, layout) for row in rows]
    header = _PAD + len(title_lines) * 42 + 30
    sheet = Image.new("RGB", (layout.width, header + sum(r.height for r in laid) + _PAD), _PAPER)
    d = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        d.text((_PAD, _PAD + i * 42), line, font=_font(34), fill=_INK)
    count = f"{len(rows)} scene{'s' if len(rows) != 1 else ''}"
    d.text((_PAD, _PAD + len(title_lines) * 42), count, font=_font(17), fill=_FAINT)
    y = header
    for item in laid:
        _draw_row(sheet, item, layout, y)
        y += item.height
    buf = io.BytesIO()
    # A deliverable people open, unlike the panels: worth a little more compression.
    sheet.save(buf, "PNG", compress_level=3)
    return buf.getvalue()
