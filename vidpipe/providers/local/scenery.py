"""The elements a panel is drawn from (sky, ground, buildings, people, vehicles, weather),
each a function that draws into a box of the canvas.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw

from vidpipe.providers.local.palette import BLACK, GREY, RGB, WHITE, _Box, _mix, _Scheme

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
