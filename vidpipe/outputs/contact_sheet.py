"""The contact sheet: every scene's start and end keyframes on one PNG, with captions."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from vidpipe.media.text import load_font, text_width, wrap

# --------------------------------------------------------------------------- contact sheet


@dataclass(frozen=True)
class SheetRow:
    """One scene on a contact sheet."""

    index: int
    caption: str
    start_png: Path | None  # None when missing
    end_png: Path | None
    note: str | None = None  # e.g. "gap: rai_filtered" shown in the row


RGB = tuple[int, int, int]

_PAPER: RGB = (244, 241, 234)
_INK: RGB = (34, 34, 38)
_FAINT: RGB = (150, 146, 138)
_NOTE: RGB = (190, 70, 30)
_TILE: RGB = (220, 217, 210)  # paper 25% toward faint
_RULE: RGB = (197, 194, 186)  # paper halfway to faint


def _load(path: Path | None, decoded: dict[Path, Image.Image | None]) -> Image.Image | None:
    """The image at ``path``, decoded once per sheet: scene k's end frame is often scene
    k+1's start frame."""
    if path is None:
        return None
    if path not in decoded:
        try:
            with Image.open(path) as im:
                decoded[path] = im.convert("RGB")
        except (OSError, ValueError):
            decoded[path] = None
    return decoded[path]


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
    tile = Image.new("RGB", size, _TILE)
    w, h = size
    if im is not None:
        # Fit inside the row's box without distortion, should the pair disagree.
        scale = min(w / im.width, h / im.height)
        fit = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        # reduce() by whole factors first, then one bilinear step: at thumbnail size it
        # looks like LANCZOS at a fraction of the cost.
        tile.paste(
            im.resize(fit, Image.Resampling.BILINEAR, reducing_gap=2.0),
            ((w - fit[0]) // 2, (h - fit[1]) // 2),
        )
        return tile
    d = ImageDraw.Draw(tile)
    d.line([(0, 0), (w, h)], fill=_FAINT, width=2)
    d.line([(0, h), (w, 0)], fill=_FAINT, width=2)
    font = load_font(max(11, w // 16))
    half = text_width(font, "missing") / 2 + 6
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


def _lay_out_row(
    row: SheetRow, layout: _SheetLayout, decoded: dict[Path, Image.Image | None]
) -> _LaidRow:
    images = [_load(row.start_png, decoded), _load(row.end_png, decoded)]
    size = _thumb_size(images, layout.thumb_width)
    caption = wrap(row.caption.strip() or "(no caption)", load_font(17), layout.text_width)[:12]
    note = wrap(row.note, load_font(15), layout.text_width - 16) if row.note else []
    return _LaidRow(row, [_thumb(im, size) for im in images], caption, note)


def _draw_row(sheet: Image.Image, item: _LaidRow, layout: _SheetLayout, y: int) -> None:
    d = ImageDraw.Draw(sheet)
    d.line([(_PAD, y), (layout.width - _PAD, y)], fill=_RULE, width=1)
    top = y + _GAP
    d.text((_PAD, top), f"Scene {item.row.index}", font=load_font(20), fill=_INK)
    ty, x = top + 32, _PAD
    for k, thumb in enumerate(item.thumbs):
        sheet.paste(thumb, (x, ty))
        d.rectangle((x - 1, ty - 1, x + thumb.width, ty + thumb.height), outline=_INK, width=1)
        d.text((x + 4, ty + thumb.height + 2), ("start", "end")[k], font=load_font(15), fill=_FAINT)
        if k == 0:
            _arrow(d, x + thumb.width + 8, x + thumb.width + _ARROW - 8, ty + thumb.height / 2)
        x += thumb.width + _ARROW
    ly = top + 32
    for line in item.caption:
        d.text((layout.text_x, ly), line, font=load_font(17), fill=_INK)
        ly += _LINE
    if item.note:
        ly += 10
        d.rectangle(
            (layout.text_x, ly - 4, layout.text_x + 4, ly + len(item.note) * _NOTE_LINE), fill=_NOTE
        )
        for line in item.note:
            d.text((layout.text_x + 12, ly), line, font=load_font(15), fill=_NOTE)
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
    title_lines = wrap(title.strip() or "Storyboard", load_font(34), layout.width - 2 * _PAD)[:3]
    decoded: dict[Path, Image.Image | None] = {}
    laid = [_lay_out_row(row, layout, decoded) for row in rows]
    header = _PAD + len(title_lines) * 42 + 30
    sheet = Image.new("RGB", (layout.width, header + sum(r.height for r in laid) + _PAD), _PAPER)
    d = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        d.text((_PAD, _PAD + i * 42), line, font=load_font(34), fill=_INK)
    count = f"{len(rows)} scene{'s' if len(rows) != 1 else ''}"
    d.text((_PAD, _PAD + len(title_lines) * 42), count, font=load_font(17), fill=_FAINT)
    y = header
    for item in laid:
        _draw_row(sheet, item, layout, y)
        y += item.height
    buf = io.BytesIO()
    # Level 1: most of the size gain of higher levels at a fraction of the time (the
    # sheet is redrawn whenever a keyframe or caption changes).
    sheet.save(buf, "PNG", compress_level=1)
    return buf.getvalue()
