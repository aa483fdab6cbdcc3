"""Assets in the offline preview: reference sheets, and asset images composited into panels.

The local provider cannot *generate* a likeness, so it shows the asset itself: each scene's
reference images are pasted into its panels — a character standing where the subject is,
a product in the subject's place (or beside the character), a logo on a card in a corner,
a location under the whole picture, a style as a light wash. A character is always the
same picture, so its colour and silhouette stay the same in every scene. Where an asset
has no image, its reference sheet is drawn here: a flat figure (character), package
(product), badge (logo), landscape (location) or swatches (style) in the colours its
description names (else colours derived from its name), on a transparent background.

Where each asset was pasted is written into the panel's metadata (``assets``: name, kind,
box in panel pixels), so tests and the end-frame deriver can find it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

from vidpipe.media.text import fit_text
from vidpipe.providers.base import ReferenceImage
from vidpipe.providers.local.palette import _META_KEY, _PNG_LEVEL, parse_palette

Box = tuple[int, int, int, int]

SHEET_SIZE = 512


def _colours(name: str, description: str) -> list[tuple[int, int, int]]:
    named = parse_palette([description]) if description else []
    fallback = parse_palette([f"asset {name}"])  # a hash-derived palette: stable per name
    return [*named, *fallback]


def draw_sheet(name: str, kind: str, description: str) -> bytes:
    """A reference sheet for an asset that has only a description (PNG, transparent)."""
    s = SHEET_SIZE
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c = _colours(name, description)
    main, second = c[0], c[1] if len(c) > 1 else c[0]
    if kind == "character":
        # Head, torso, arms and legs: one silhouette, the same in every scene.
        d.ellipse((s * 0.40, s * 0.06, s * 0.60, s * 0.26), fill=(*second, 255))
        d.rounded_rectangle((s * 0.32, s * 0.27, s * 0.68, s * 0.62), s // 20, fill=(*main, 255))
        d.rounded_rectangle((s * 0.22, s * 0.29, s * 0.31, s * 0.58), s // 30, fill=(*main, 255))
        d.rounded_rectangle((s * 0.69, s * 0.29, s * 0.78, s * 0.58), s // 30, fill=(*main, 255))
        d.rounded_rectangle((s * 0.35, s * 0.60, s * 0.48, s * 0.96), s // 30, fill=(*second, 255))
        d.rounded_rectangle((s * 0.52, s * 0.60, s * 0.65, s * 0.96), s // 30, fill=(*second, 255))
    elif kind == "product":
        d.rounded_rectangle((s * 0.28, s * 0.12, s * 0.72, s * 0.92), s // 14, fill=(*main, 255))
        d.rectangle((s * 0.28, s * 0.42, s * 0.72, s * 0.62), fill=(*second, 255))
    elif kind == "logo":
        d.ellipse((s * 0.1, s * 0.1, s * 0.9, s * 0.9), fill=(*main, 255))
        initials = "".join(part[:1] for part in name.replace("_", "-").split("-")[:2]).upper()
        font, lines = fit_text(initials or name[:2].upper(), s * 0.6, 1, round(s * 0.35))
        text = lines[0] if lines else ""
        left, top, right, bottom = d.textbbox((0, 0), text, font=font)
        d.text(((s - right - left) / 2, (s - bottom - top) / 2), text, font=font, fill=second)
    elif kind == "location":
        d.rectangle((0, 0, s, s * 0.6), fill=(*second, 255))
        d.polygon([(0, s * 0.6), (s * 0.35, s * 0.3), (s * 0.7, s * 0.6)], fill=(*main, 255))
        d.rectangle((0, s * 0.6, s, s), fill=(*main, 255))
    else:  # style: the colours it names, as swatches
        for i, colour in enumerate(c[:4]):
            d.rectangle((s * i / 4, 0, s * (i + 1) / 4, s), fill=(*colour, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGBA")


def _fit(img: Image.Image, box: Box) -> tuple[Image.Image, Box]:
    """`img` scaled to fit inside `box`, centred horizontally and standing on its bottom."""
    x0, y0, x1, y1 = box
    scale = min((x1 - x0) / img.width, (y1 - y0) / img.height)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    left = x0 + ((x1 - x0) - w) // 2
    top = y1 - h
    return img.resize((w, h), Image.Resampling.LANCZOS), (left, top, left + w, top + h)


def _paste(panel: Image.Image, img: Image.Image, box: Box) -> Box:
    fitted, placed = _fit(img, box)
    panel.paste(fitted, placed[:2], fitted)
    return placed


def composite(png: bytes, references: Sequence[ReferenceImage]) -> bytes:
    """Paste the assets' images into a panel (see the module docstring); PNG bytes back."""
    if not references:
        return png
    with Image.open(io.BytesIO(png)) as opened:
        meta: dict[str, Any] = {}
        raw = opened.info.get(_META_KEY)
        if isinstance(raw, str):
            try:
                meta = json.loads(raw)
            except ValueError:
                meta = {}
        panel = opened.convert("RGBA")
    w, h = panel.size
    bar = int(meta.get("bar", 0)) if isinstance(meta.get("bar"), int) else 0
    ph = h - bar  # the picture above the caption bar
    hero = meta.get("hero")
    if isinstance(hero, list) and len(hero) == 4:
        hx0, hy0, hx1, hy1 = (float(v) for v in hero)
        hero_box = (round(hx0 * w), round(hy0 * ph), round(hx1 * w), round(hy1 * ph))
    else:
        hero_box = (round(w * 0.35), round(ph * 0.3), round(w * 0.65), round(ph * 0.95))
    # One image per asset: the first (the most characteristic) of each.
    firsts: dict[str, ReferenceImage] = {}
    for ref in references:
        firsts.setdefault(ref.asset, ref)
    kinds = [r.kind for r in firsts.values()]
    placed: list[dict[str, Any]] = []
    picture_box = (0, 0, w, ph)
    for ref in firsts.values():
        if ref.kind in ("location", "style"):
            img = ImageOps.fit(_open(ref.data).convert("RGB"), (w, ph))
            alpha = 0.45 if ref.kind == "location" else 0.2
            region = panel.crop(picture_box).convert("RGB")
            panel.paste(Image.blend(region, img, alpha), (0, 0))
            placed.append({"asset": ref.asset, "kind": ref.kind, "box": list(picture_box)})
    hero_taken = "character" in kinds
    side = 0
    margin = max(4, round(min(w, ph) * 0.03))
    # Subject-sized: at least a third of the picture's height, so the asset reads at 360p.
    min_h = round(ph * 0.36)
    for ref in firsts.values():
        if ref.kind in ("location", "style"):
            continue
        img = _open(ref.data)
        if ref.kind == "logo":
            card_w = round(min(w, ph) * 0.26)
            box = (w - margin - card_w, margin, w - margin, margin + card_w)
            ImageDraw.Draw(panel).rounded_rectangle(
                box, radius=max(2, card_w // 10), fill=(250, 250, 247, 255)
            )
            inner = (box[0] + margin, box[1] + margin, box[2] - margin, box[3] - margin)
            where = _paste(panel, img, inner)
        elif ref.kind == "character" or (ref.kind == "product" and not hero_taken):
            x0, y0, x1, y1 = hero_box
            if y1 - y0 < min_h:
                y0 = max(0, y1 - min_h)
            if x1 - x0 < min_h * 0.6:
                cx = (x0 + x1) // 2
                x0, x1 = cx - round(min_h * 0.3), cx + round(min_h * 0.3)
            box = (max(0, x0), max(0, y0), min(w, x1), min(ph, max(y1, y0 + 1)))
            where = _paste(panel, img, box)
            hero_taken = True
        else:
            # Beside the subject, in the lower third: another product or character.
            size = min_h
            right = hero_box[2] + margin + side * (size + margin)
            if right + size > w:
                right = max(0, hero_box[0] - margin - size - side * (size + margin))
            box = (right, ph - margin - size, right + size, ph - margin)
            where = _paste(panel, img, box)
            side += 1
        placed.append({"asset": ref.asset, "kind": ref.kind, "box": list(where)})
    meta["assets"] = placed
    info = PngImagePlugin.PngInfo()
    info.add_text(_META_KEY, json.dumps(meta, sort_keys=True, separators=(",", ":")))
    buf = io.BytesIO()
    panel.convert("RGB").save(buf, "PNG", pnginfo=info, compress_level=_PNG_LEVEL)
    return buf.getvalue()


def collage(references: Sequence[ReferenceImage], size: tuple[int, int]) -> bytes:
    """One frame from asset references alone (a clip in reference mode): side by side."""
    w, h = size
    frame = Image.new("RGBA", size, (24, 24, 28, 255))
    firsts: dict[str, ReferenceImage] = {}
    for ref in references:
        firsts.setdefault(ref.asset, ref)
    n = max(1, len(firsts))
    for i, ref in enumerate(firsts.values()):
        box = (round(w * i / n) + 8, 8, round(w * (i + 1) / n) - 8, h - 8)
        _paste(frame, _open(ref.data), box)
    buf = io.BytesIO()
    frame.convert("RGB").save(buf, "PNG", compress_level=_PNG_LEVEL)
    return buf.getvalue()
