"""The offline storyboard planner: a storyboard from the idea, with no model.

It is the storyboard capability of the `local` provider, and what `vidpipe render` and
`vidpipe validate` use to fill scene templates when no real storyboard exists yet. It is
deterministic for (idea, style, scene count, clip length, seed): it splits the idea into
story beats, gives each beat a shot size and a camera move, and chains the frames so
that each scene starts exactly where the previous one ended.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_LOOKS: dict[str, dict[str, Any]] = {
    "cinematic": {
        "visual_style": "cinematic live action, anamorphic widescreen look, shallow depth of field, fine film grain",
        "color_palette": [
            "teal #1f5f6b",
            "amber #e0a030",
            "deep navy #14213d",
            "warm skin tones #c98b6b",
            "soft cream #f2e8cf",
        ],
        "camera_style": "35mm and 50mm lenses, motivated camera moves, eye-level framing, rule of thirds",
        "lighting": "golden-hour key light with soft practicals and gentle haze",
        "mood": "hopeful and grand",
    },
    "anime": {
        "visual_style": "hand-drawn anime, clean line art, cel shading, painted backgrounds",
        "color_palette": [
            "sky blue #6ec6ff",
            "sakura pink #f6a5c0",
            "leaf green #7bc96f",
            "sunset orange #ff9a3c",
            "ink #22223b",
        ],
        "camera_style": "flat 2D staging, dramatic low angles, slow pans across painted backgrounds",
        "lighting": "bright daylight with soft bloom and lens flares",
        "mood": "earnest and wistful",
    },
    "watercolor": {
        "visual_style": "watercolor illustration, soft bleeding edges, visible paper texture",
        "color_palette": [
            "wash blue #8fb8de",
            "sage #a3b18a",
            "ochre #d4a373",
            "rose #e5989b",
            "paper white #fbf8f1",
        ],
        "camera_style": "gentle drifting camera, wide compositions with generous negative space",
        "lighting": "diffuse, even light as on a bright overcast day",
        "mood": "calm and dreamy",
    },
    "noir": {
        "visual_style": "1940s film noir, high-contrast black and white, hard shadows, venetian-blind light",
        "color_palette": ["black #0b0b0b", "charcoal #3a3a3a", "silver #bdbdbd", "white #f5f5f5"],
        "camera_style": "low angles, Dutch tilts, slow push-ins on faces, deep focus",
        "lighting": "single hard key light, rain-slick reflections, smoke",
        "mood": "tense and fatalistic",
    },
    "documentary": {
        "visual_style": "observational documentary, natural textures, handheld realism",
        "color_palette": [
            "earth brown #7f5539",
            "olive #6b705c",
            "sky grey #adb5bd",
            "muted blue #577590",
        ],
        "camera_style": "handheld medium shots, long lenses for wildlife, slow tracking",
        "lighting": "available natural light",
        "mood": "curious and grounded",
    },
    "claymation": {
        "visual_style": "stop-motion claymation, handmade plasticine figures, miniature sets",
        "color_palette": ["clay red #d1495b", "mustard #edae49", "teal #00798c", "cream #f4f1de"],
        "camera_style": "locked-off miniature set shots, small dolly moves, macro lens",
        "lighting": "warm tabletop studio lighting with soft shadows",
        "mood": "playful and warm",
    },
    "cyberpunk": {
        "visual_style": "neon cyberpunk city at night, wet streets, holographic signage without legible text",
        "color_palette": [
            "neon magenta #ff2a6d",
            "electric cyan #05d9e8",
            "violet #7b2cbf",
            "midnight #01012b",
        ],
        "camera_style": "wide-angle low shots, slow crane moves between towers, rain in the foreground",
        "lighting": "neon rim light, volumetric fog, reflections",
        "mood": "electric and lonely",
    },
    "pixel": {
        "visual_style": "16-bit pixel art, crisp pixels, limited palette, parallax layers",
        "color_palette": [
            "pixel blue #3b5dc9",
            "pixel green #38b764",
            "pixel yellow #ffcd75",
            "pixel dark #1a1c2c",
        ],
        "camera_style": "side-on orthographic framing, smooth horizontal scrolling",
        "lighting": "flat lighting with dithered gradients",
        "mood": "nostalgic and upbeat",
    },
}
_ALIASES = {
    "film noir": "noir",
    "pixel art": "pixel",
    "stop motion": "claymation",
    "watercolour": "watercolor",
}

_MOVES = [
    ("slow push in", "closer, the subject now fills more of the frame"),
    ("pull out", "wider, revealing more of the surroundings"),
    ("pan right", "the view has travelled to the right"),
    ("pan left", "the view has travelled to the left"),
    ("tilt up", "the view has risen toward the sky"),
    ("tilt down", "the view has lowered toward the ground"),
    ("dolly in", "nearer, with the background compressed"),
    ("static locked-off shot", "the same framing, the action completed"),
]
_MIDDLE_SHOTS = [
    "medium shot",
    "low-angle medium shot",
    "over-the-shoulder medium shot",
    "medium close-up",
]


@dataclass(frozen=True)
class _Beat:
    role: str
    text: str


def plan(
    idea: str,
    *,
    scenes: int,
    style: str = "cinematic",
    clip_duration: int = 4,
    seed: int | None = None,
    assets: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """A storyboard dict valid against `schemas/storyboard.schema.json`.

    Each scene shows the `assets` ({name, kind, description}) its part of the idea names
    (``coffee-cup`` as "coffee cup"); one the idea never names is shown where a producer
    would expect it: a character, product, location or style in every scene, a logo in
    the last one.
    """
    rng = random.Random(_stable_seed(idea, style, scenes, clip_duration, seed))
    guide = style_guide(style)
    beats = _beats(idea, scenes)
    moves = [rng.choice(_MOVES) for _ in range(scenes)]
    shots = [_shot(i, scenes, rng) for i in range(scenes)]
    palette = ", ".join(c.split(" #")[0] for c in guide["color_palette"][:3])
    out = []
    previous_end: str | None = None
    for i, beat in enumerate(beats):
        move, change = moves[i]
        look = f"{guide['visual_style'][:1].upper()}{guide['visual_style'][1:]}; {guide['lighting']}; palette of {palette}"
        start = previous_end or f"{shots[i].capitalize()} of {_clause(beat.text)}. {look}."
        end = f"{shots[i].capitalize()}, {change}: {_clause(beat.text)} at the end of the moment. {look}."
        nxt = beats[i + 1] if i + 1 < len(beats) else None
        scene: dict[str, Any] = {}
        if assets:
            scene["assets"] = _assets_in(beat.text, idea, assets, last=i == len(beats) - 1)
        out.append(
            scene
            | {
                "scene_index": i,
                "scene_description": f"{beat.role.capitalize()}: {beat.text}",
                "start_frame_prompt": start,
                "end_frame_prompt": end,
                "video_motion_prompt": f"{move.capitalize()} over {clip_duration} seconds as {_clause(beat.text)}.",
                "transition_notes": (
                    f"Cut on the shared frame into the {nxt.role}: {_clause(nxt.text)}."
                    if nxt
                    else "Final shot: hold on the last frame."
                ),
            }
        )
        previous_end = end
    return {"style_guide": guide, "scenes": out}


def style_guide(style: str) -> dict[str, Any]:
    """The style guide for a named style; unknown styles get a palette derived from the name."""
    key = style.strip().lower()
    for alias, target in _ALIASES.items():
        if alias in key:
            key = target
    for name, look in _LOOKS.items():
        if name in key:
            return {
                **look,
                "visual_style": f"{style}: {look['visual_style']}"
                if key != name
                else look["visual_style"],
                "continuity_rules": _CONTINUITY,
            }
    rng = random.Random(_stable_seed(key))
    hues = [rng.random() for _ in range(4)]
    import colorsys

    palette = []
    for n, hue in enumerate(hues):
        r, g, b = colorsys.hls_to_rgb(hue, 0.35 + 0.12 * n, 0.55)
        palette.append(f"tone {n + 1} #{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return {
        "visual_style": f"{style}, applied consistently to every frame",
        "color_palette": palette,
        "camera_style": "clear compositions, eye-level framing, smooth motivated camera moves",
        "lighting": "soft key light with gentle contrast",
        "mood": "focused",
        "continuity_rules": _CONTINUITY,
    }


_CONTINUITY = (
    "same main subject, wardrobe, props and setting in every scene; time of day moves forward only"
)


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


_STOPS = ".!?;。！？"


def _sentences(idea: str) -> list[str]:
    """The idea's sentences, each keeping its own final stop (captions show where they end)."""
    text = " ".join(idea.split())
    parts = re.split(r"(?<=[.!?;])\s+|(?<=[。！？])\s*|\s+(?:and then|then)\s+", text)
    return [p.strip() for p in parts if p.strip(" " + _STOPS)]


def _joined(sentences: Sequence[str]) -> str:
    """Sentences as one text: a sentence without a stop gets one before the next begins."""
    out = []
    for k, sentence in enumerate(sentences):
        last = k == len(sentences) - 1
        if not last and sentence[-1] not in _STOPS:
            sentence += "。" if re.search(r"[\u3000-\u9fff]$", sentence) else "."
        out.append(sentence)
    return "".join(
        s if k == 0 or out[k - 1][-1] in "。！？" else " " + s for k, s in enumerate(out)
    )


def _words_of(name: str) -> str:
    return re.sub(r"[-_]+", " ", name).lower()


def _assets_in(
    text: str, idea: str, assets: Sequence[Mapping[str, str]], *, last: bool
) -> list[str]:
    here, everywhere = text.lower(), idea.lower()
    out = []
    for asset in assets:
        words = _words_of(asset["name"])
        if words in everywhere:
            if words in here:
                out.append(asset["name"])
        elif asset["kind"] != "logo" or last:
            out.append(asset["name"])
    return out


def _beats(idea: str, n: int) -> list[_Beat]:
    sentences = _sentences(idea) or [idea.strip() or "an untitled idea"]
    roles = [_role(i, n) for i in range(n)]
    if len(sentences) >= n:
        # Group consecutive sentences so every scene gets a contiguous part of the script.
        bounds = [round(i * len(sentences) / n) for i in range(n + 1)]
        texts = [_joined(sentences[bounds[i] : bounds[i + 1]]) for i in range(n)]
    else:
        texts = []
        for i in range(n):
            sentence = sentences[min(len(sentences) - 1, i * len(sentences) // n)]
            texts.append(_elaborate(sentence, roles[i], i, n))
    return [_Beat(role, text) for role, text in zip(roles, texts, strict=True)]


def _role(i: int, n: int) -> str:
    if n == 1:
        return "single shot"
    if i == 0:
        return "opening"
    if i == n - 1:
        return "resolution"
    if i == round((n - 1) * 0.66) and n > 3:
        return "turning point"
    return "development"


_ELABORATIONS = {
    "opening": "{s}, introduced in its world",
    "development": "{s}, the action building ({k} of {n})",
    "turning point": "{s}, at its most intense moment",
    "resolution": "{s}, coming to rest as the story resolves",
    "single shot": "{s}",
}


def _elaborate(sentence: str, role: str, i: int, n: int) -> str:
    text = _ELABORATIONS[role].format(s=sentence.rstrip(_STOPS), k=i + 1, n=n)
    # The stop the sentence ended with ends the elaborated one too.
    return text + sentence[-1] if sentence[-1] in _STOPS and sentence[-1] != ";" else text


def _shot(i: int, n: int, rng: random.Random) -> str:
    if i == 0:
        return "wide establishing shot"
    if i == n - 1:
        return "wide shot"
    return rng.choice(_MIDDLE_SHOTS)


def _clause(text: str) -> str:
    """A sentence as a clause: no final stop, lower-case start (unless an acronym or a name)."""
    text = text.strip().rstrip(_STOPS)
    first = text.split(" ", 1)[0]
    if first in ("A", "An", "The", "She", "He", "They", "It", "We", "I") and first != "I":
        return first.lower() + text[len(first) :]
    return text
