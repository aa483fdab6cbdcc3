"""Storyboard panels for the offline ``local`` provider.

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

import io
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont, PngImagePlugin

from vidpipe.media.text import fit_text, load_font, text_width
from vidpipe.providers.local.compose import (
    _LAMPS,
    _beam_source,
    _compose,
    _draw_kind,
    _draw_subject,
    _kind_seed,
    _layer,
    _layered,
    _Plan,
    _plan,
    _sky_box,
    _subject_boxes,
    _subject_mask,
    _subject_region,
    _vignette,
)
from vidpipe.providers.local.palette import (
    _META_KEY,
    _MIN_SIDE,
    _PNG_LEVEL,
    BLACK,
    GREY,
    RGB,
    WHITE,
    _apply_moods,
    _Box,
    _lum,
    _mix,
    _rng,
    _Scheme,
    _scheme,
    _words,
    parse_palette,
)
from vidpipe.providers.local.scenery import _DUTCH_RE, _FRAMINGS, _canvas


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
    small = load_font(max(9, round(bar.font_size * 0.62)))
    chip_w = round(max(text_width(small, t) for t in label)) + bar.pad * 2
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
    font, lines = fit_text(
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
    # Pasted assets moved with the picture; the provider pastes this scene's own again.
    meta_out.pop("assets", None)
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
