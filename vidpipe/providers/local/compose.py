"""Composing a shot: which elements a prompt names, where each goes, in which layer."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from PIL import Image, ImageFilter

from vidpipe.providers.local.palette import (
    _MOOD_OF,
    BLACK,
    RGB,
    WHITE,
    _Box,
    _digest,
    _mix,
    _moods,
    _rng,
    _Scheme,
    _words,
)
from vidpipe.providers.local.scenery import (
    _animal,
    _beam,
    _birds,
    _boat,
    _Canvas,
    _canvas,
    _car,
    _castle,
    _city,
    _cliff,
    _clouds,
    _crowd,
    _desert,
    _Drawer,
    _field,
    _fog,
    _forest,
    _Framing,
    _framing,
    _ground_band,
    _hills,
    _house,
    _interior,
    _Layer,
    _lightning,
    _moon,
    _mountains,
    _person,
    _prop,
    _rain,
    _road,
    _robot,
    _rocket,
    _sea,
    _snow,
    _stars,
    _storm,
    _sun,
    _tower,
    _tree,
    _vgradient,
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
