"""What the emulator answers with: real PNG keyframes, real MP4 clips, storyboards, and
the helpers that read requests.
"""

from __future__ import annotations

import array
import base64
import binascii
import hashlib
import io
import math
import re
from typing import Any

from PIL import Image, ImageDraw

# --------------------------------------------------------------------------------------
# Constants

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: Output sizes of image models for an aspect ratio (other ratios: long side 1024).
IMAGE_SIZES = {"1:1": (768, 768), "16:9": (1024, 576), "9:16": (576, 1024)}
#: Output sizes of the (deliberately tiny) emulated Veo clips.
VIDEO_SIZES = {"16:9": (320, 180), "9:16": (180, 320)}
#: Colour blended into an input image to make an "edited" image visibly derived from it.
EDIT_TINT = (255, 0, 255)
EDIT_TINT_ALPHA = 0.35

DEFAULT_RAI_REASON = (
    "Unable to generate videos because the prompt or input image violates Vertex AI's "
    "Responsible AI practices (emulated). Support codes: 58061214"
)
VIDEO_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"

_PALETTE = [
    ((32, 64, 160), (240, 170, 60)),
    ((20, 120, 90), (230, 230, 200)),
    ((120, 30, 60), (250, 200, 160)),
    ((40, 40, 40), (90, 180, 250)),
    ((90, 60, 150), (250, 120, 120)),
    ((10, 90, 130), (250, 240, 120)),
]

_MODEL_PATH = re.compile(
    r"^/(?P<ver>v\d+(?:(?:alpha|beta)\d*)?)/"
    r"(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+):(?P<rpc>[A-Za-z]+)$"
)
_OPERATION_PATH = re.compile(
    r"^/(?P<ver>v\d+(?:(?:alpha|beta)\d*)?)/(?P<name>(?:projects/[^/]+/locations/[^/]+/)?"
    r"publishers/[^/]+/models/(?P<model>[^/:]+)/operations/[^/:]+)$"
)
_GCS_PATH = re.compile(r"^/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)$")


# --------------------------------------------------------------------------------------
# Media helpers


def _parse_ratio(aspect: str | None) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", aspect or "")
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        return None
    return int(m.group(1)), int(m.group(2))


def image_size_for(aspect: str | None) -> tuple[int, int]:
    """(width, height) of an emulated image: 16:9 → 1024×576, 9:16 → 576×1024, 1:1 → 768×768."""
    if aspect in IMAGE_SIZES:
        return IMAGE_SIZES[aspect]
    ratio = _parse_ratio(aspect)
    if ratio is None:
        return IMAGE_SIZES["1:1"]
    w, h = ratio
    if w >= h:
        return 1024, max(8, round(1024 * h / w / 8) * 8)
    return max(8, round(1024 * w / h / 8) * 8), 1024


def video_size_for(aspect: str | None) -> tuple[int, int]:
    """(width, height) of an emulated clip: 16:9 → 320×180, 9:16 → 180×320."""
    if aspect in VIDEO_SIZES:
        return VIDEO_SIZES[aspect]
    ratio = _parse_ratio(aspect)
    if ratio is None:
        return VIDEO_SIZES["16:9"]
    w, h = ratio
    if w >= h:
        return 320, max(2, round(320 * h / w / 2) * 2)
    return max(2, round(320 * w / h / 2) * 2), 320


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big")


def _gradient(size: tuple[int, int], top: tuple[int, ...], bottom: tuple[int, ...]) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop ``img`` to exactly ``size``."""
    img = img.convert("RGB")
    sw, sh = img.size
    tw, th = size
    scale = max(tw / sw, th / sh)
    nw, nh = max(tw, round(sw * scale)), max(th, round(sh * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return img.crop((left, top, left + tw, top + th))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def make_image(
    prompt: str,
    aspect: str | None,
    source: bytes | None = None,
    size: tuple[int, int] | None = None,
) -> bytes:
    """A PNG for ``prompt``; if ``source`` (image bytes) is given, a tinted copy of it."""
    size = size or image_size_for(aspect)
    if source is not None:
        base = _cover(Image.open(io.BytesIO(source)), size)
        img = Image.blend(base, Image.new("RGB", size, EDIT_TINT), EDIT_TINT_ALPHA)
        label = "edit: " + prompt
    else:
        top, bottom = _PALETTE[_seed(prompt) % len(_PALETTE)]
        img = _gradient(size, top, bottom)
        label = prompt
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, size[0] - 1, 22), fill=(0, 0, 0))
    draw.text((6, 5), label[:120], fill=(255, 255, 255))
    return _png(img)


_AUDIO_RATE = 48000
_AUDIO_FRAME = 1024


def _tone_frame(silent: bool) -> bytes:
    # 375 Hz has a period of exactly 128 samples at 48 kHz, so the frame loops seamlessly.
    amp = 0.0 if silent else 0.08
    return array.array(
        "f", (amp * math.sin(2 * math.pi * 375 * k / _AUDIO_RATE) for k in range(_AUDIO_FRAME))
    ).tobytes()


def make_mp4(
    duration: float,
    size: tuple[int, int],
    *,
    first: Image.Image | None = None,
    last: Image.Image | None = None,
    fps: int = 24,
    silent: bool = False,
    audio: bool = True,
) -> bytes:
    """A real MP4 (H.264 yuv420p + AAC mono 48 kHz) cross-dissolving ``first`` → ``last``.

    ``silent`` writes a silent audio track; ``audio=False`` writes none (a video-only
    MP4, what Veo returns for ``generateAudio: false`` and from Veo 2).
    """
    import av  # local import: only needed when a clip is actually rendered

    w, h = size
    a = _cover(first, size) if first is not None else Image.new("RGB", size, (40, 40, 40))
    b = _cover(last, size) if last is not None else Image.new("RGB", size, (200, 200, 200))
    n = max(1, round(duration * fps))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        if audio:
            aus = container.add_stream("aac", rate=_AUDIO_RATE)
            aus.layout = "mono"
        for i in range(n):
            img = Image.blend(a, b, i / max(1, n - 1))
            bar = round(w * (i + 1) / n)
            ImageDraw.Draw(img).rectangle((0, h - 4, bar, h - 1), fill=(255, 255, 255))
            frame = av.VideoFrame.from_image(img)
            frame.pts = i
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        tone = _tone_frame(silent)
        total = round(n / fps * _AUDIO_RATE) if audio else 0
        pts = 0
        while pts < total:
            ns = min(_AUDIO_FRAME, total - pts)
            af = av.AudioFrame(format="fltp", layout="mono", samples=ns)
            af.sample_rate = _AUDIO_RATE
            af.planes[0].update(tone[: ns * 4])
            af.pts = pts
            pts += ns
            for packet in aus.encode(af):
                container.mux(packet)
        if audio:
            for packet in aus.encode():
                container.mux(packet)
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# Storyboards


_SCENE_COUNT_PATTERNS = [
    r"\bscenes?\s*[:=]\s*(\d+)",
    r"\bexactly\s+(\d+)\s+scenes?\b",
    r"\b(\d+)\s+scenes?\b",
]


def scene_count_from_text(text: str, default: int = 3) -> int:
    """Scene count asked for in a prompt: ``Scenes: 3`` / ``exactly 3 scenes`` / ``3 scenes``."""
    for pattern in _SCENE_COUNT_PATTERNS:
        m = re.search(pattern, text, re.IGNORECASE)
        if m and 0 < int(m.group(1)) <= 200:
            return int(m.group(1))
    return default


def _schema_scene_count(body: dict[str, Any]) -> int | None:
    cfg = body.get("generationConfig") or {}
    schema = cfg.get("responseJsonSchema") or cfg.get("responseSchema") or {}
    scenes = (schema.get("properties") or {}).get("scenes") or {}
    lo, hi = scenes.get("minItems"), scenes.get("maxItems")
    if lo is not None and str(lo) == str(hi):
        return int(lo)
    return None


def default_storyboard(body: dict[str, Any]) -> dict[str, Any]:
    """A valid storyboard; N from the prompt (``Scenes: N``), else schema min==maxItems, else 3."""
    text = _request_text(body, include_system=True)
    n = scene_count_from_text(text, default=0) or _schema_scene_count(body) or 3
    topic = next((ln.strip() for ln in _request_text(body).splitlines() if ln.strip()), "a story")
    topic = topic[:80]
    scenes = []
    for i in range(n):
        beat = f"beat {i + 1} of {n} of {topic}"
        scenes.append(
            {
                "scene_index": i,
                "scene_description": f"Scene {i + 1}: {beat}.",
                "start_frame_prompt": f"Opening frame of scene {i + 1}, {beat}, wide shot.",
                "end_frame_prompt": f"Closing frame of scene {i + 1}, {beat}, close-up.",
                "video_motion_prompt": f"Slow dolly-in while {beat} unfolds.",
                "transition_notes": "Match cut on colour to the next scene."
                if i < n - 1
                else "Fade out to black.",
            }
        )
    return {
        "style_guide": {
            "visual_style": "cinematic, soft film grain",
            "color_palette": ["#1f3b73", "#f2a541", "#f7f7f2"],
            "camera_style": "smooth gimbal moves, 35mm lens",
            "lighting": "golden hour, soft key light",
            "mood": "hopeful",
        },
        "scenes": scenes,
    }


# --------------------------------------------------------------------------------------
# Request helpers


def idea_storyboard(body: dict[str, Any]) -> dict[str, Any]:
    """:func:`default_storyboard` with the job's idea in every prompt.

    The default storyboard is the same for every job, so two jobs would share keyframes
    and clips through vidpipe's cache; with the idea in each prompt every request also
    names its job (for fault matching).
    """
    text = "\n".join(
        part.get("text", "") for c in body.get("contents", []) for part in c.get("parts", [])
    )
    lines = text.splitlines()
    idea = lines[lines.index("IDEA") + 1] if "IDEA" in lines else text[:60]
    board = default_storyboard(body)
    for scene in board["scenes"]:
        for key in ("scene_description", "start_frame_prompt", "end_frame_prompt"):
            scene[key] = f"{idea}: {scene[key]}"
        scene["video_motion_prompt"] += f" ({idea})"
    return board


def _request_text(body: Any, include_system: bool = False) -> str:
    """User text of a generateContent body, or ``instances[*].prompt``."""
    if not isinstance(body, dict):
        return ""
    texts: list[str] = []
    contents = body.get("contents") or []
    if include_system and isinstance(body.get("systemInstruction"), dict):
        contents = [body["systemInstruction"], *contents]
    for content in contents:
        for part in (content or {}).get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    for inst in body.get("instances") or []:
        if isinstance(inst, dict) and isinstance(inst.get("prompt"), str):
            texts.append(inst["prompt"])
    return "\n".join(texts)


def _input_images(body: Any) -> list[tuple[str, bytes]]:
    """(role, bytes) of images in a body: inline parts, and Veo/Imagen instance images."""
    out: list[tuple[str, bytes]] = []
    if not isinstance(body, dict):
        return out
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            inline = part.get("inlineData") if isinstance(part, dict) else None
            if inline and inline.get("data"):
                out.append(("inlineData", _b64decode(inline["data"])))
    for inst in body.get("instances") or []:
        for key in ("image", "lastFrame"):
            img = inst.get(key) if isinstance(inst, dict) else None
            if isinstance(img, dict) and img.get("bytesBase64Encoded"):
                out.append((key, _b64decode(img["bytesBase64Encoded"])))
    return out


def _b64decode(data: str) -> bytes:
    """Decodes standard or URL-safe base64 (the SDK sends ``inlineData.data`` URL-safe)."""
    data = data.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise _HttpError(400, f"Invalid base64 image data: {e}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _HttpError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers or {}
        self.details = details or []
