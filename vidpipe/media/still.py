"""Still images given by a job (`start_image`, `end_image`): their shape and their PNG form.

Every keyframe file is a PNG at the job's aspect ratio, so an override image is
re-encoded here, letterboxed (`pad`) or centre-cut (`crop`) when its shape differs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

#: How far (relative) an image's width/height may differ from the job's before it is refused.
ASPECT_TOLERANCE = 0.01


def ratio_of(aspect_ratio: str) -> float:
    """`16:9` → 1.777…"""
    width, _, height = aspect_ratio.partition(":")
    return int(width) / int(height)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def aspect_differs(size: tuple[int, int], aspect_ratio: str) -> bool:
    """Whether an image of `size` is more than 1% away from `aspect_ratio`."""
    width, height = size
    return abs((width / height) / ratio_of(aspect_ratio) - 1) > ASPECT_TOLERANCE


def keyframe_png(path: Path, aspect_ratio: str, fit: str | None) -> bytes:
    """The image as the PNG keyframe the pipeline uses (deterministic for the same input)."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    if fit and aspect_differs(rgb.size, aspect_ratio):
        rgb = _fitted(rgb, ratio_of(aspect_ratio), fit)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return buf.getvalue()


def _fitted(img: Image, ratio: float, fit: str) -> Image:
    from PIL import Image as PILImage

    width, height = img.size
    if fit == "crop":
        if width / height > ratio:
            new_w = max(1, round(height * ratio))
            left = (width - new_w) // 2
            return img.crop((left, 0, left + new_w, height))
        new_h = max(1, round(width / ratio))
        top = (height - new_h) // 2
        return img.crop((0, top, width, top + new_h))
    if width / height > ratio:
        size = (width, max(1, round(width / ratio)))
    else:
        size = (max(1, round(height * ratio)), height)
    canvas = PILImage.new("RGB", size, (0, 0, 0))
    canvas.paste(img, ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas
