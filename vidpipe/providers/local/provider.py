"""The `local` provider: an offline animatic renderer. Not AI.

It exists so vidpipe works on a fresh machine with no account, and so the whole pipeline
can be tested: storyboards come from the offline planner, keyframes are storyboard panels
drawn with Pillow, and clips are real H.264 + AAC MP4s rendered with PyAV that dissolve
from the start frame to the end frame with the pan or zoom the motion prompt names.
Everything is deterministic for a given seed, and free.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidpipe.errors import Problem
from vidpipe.providers.base import (
    Capability,
    ImageAnswer,
    ImageRequest,
    Provider,
    StoryboardAnswer,
    StoryboardRequest,
    Usage,
    VideoRequest,
    VideoStatus,
)

if TYPE_CHECKING:
    from vidpipe.providers.local.animatic import Motion
    from vidpipe.spec.jobs import Job

SHORT_SIDES = {"360p": 360, "720p": 720, "1080p": 1080}
DEFAULT_RESOLUTION = "720p"
DURATIONS = range(1, 9)
FPS = 24

# Camera words in a motion prompt. Zooms give (start, end) scale; pans give the camera's
# travel as a fraction of the frame. A pan and a zoom may combine ("pan right, push in").
_ZOOMS: list[tuple[str, tuple[float, float]]] = [
    (
        r"push(?:es|ing)?[- ]in|zoom(?:s|ing)? in|dolly(?:ing)? in|punch(?:es)? in|moves? closer",
        (1.0, 1.25),
    ),
    (r"pull(?:s|ing)?[- ](?:out|back)|zoom(?:s|ing)? out|dolly(?:ing)? out|reveal", (1.25, 1.0)),
    (r"orbit(?:s|ing)?|arc(?:s)? around", (1.1, 1.2)),
]
_PANS: list[tuple[str, tuple[float, float]]] = [
    (r"pan(?:s|ning)? left|truck(?:s)? left", (-0.12, 0.0)),
    (
        r"pan(?:s|ning)? right|truck(?:s)? right|tracking|orbit(?:s|ing)?|arc(?:s)? around",
        (0.12, 0.0),
    ),
    (r"tilt(?:s|ing)? up|crane(?:s)? up|rises", (0.0, -0.1)),
    (r"tilt(?:s|ing)? down|crane(?:s)? down|descends", (0.0, 0.1)),
]


def frame_size(aspect_ratio: str, resolution: str | None) -> tuple[int, int]:
    """Pixel size for an aspect ratio at a resolution (the short side, e.g. 720p → 720)."""
    short = SHORT_SIDES[resolution or DEFAULT_RESOLUTION]
    if aspect_ratio == "1:1":
        return short, short
    long = short * 16 // 9
    long += long % 2
    return (long, short) if aspect_ratio == "16:9" else (short, long)


def motion_from_prompt(prompt: str) -> Motion:
    """The camera move a motion prompt names (its first paragraph; the rest is style)."""
    from vidpipe.providers.local.animatic import Motion

    text = prompt.lower().split("\n\n")[0]
    zoom = next((z for pattern, z in _ZOOMS if re.search(pattern, text)), None)
    pan_x = sum(p[0] for pattern, p in _PANS if re.search(pattern, text))
    pan_y = sum(p[1] for pattern, p in _PANS if re.search(pattern, text))
    if zoom is None:
        # A pan needs picture beyond the frame edge to travel into.
        zoom = (1.15, 1.15) if (pan_x or pan_y) else (1.0, 1.0)
    return Motion(zoom_start=zoom[0], zoom_end=zoom[1], pan_x=pan_x, pan_y=pan_y)


def _seed(*parts: Any) -> int:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


class LocalProvider(Provider):
    """Offline, free, deterministic storyboards, panels and animatic clips."""

    name: ClassVar[str] = "local"
    default_models: ClassVar[dict[str, str]] = {
        "storyboard": "local-planner-1",
        "image": "local-panels-1",
        "video": "local-animatic-1",
    }
    poll_interval = 0.0
    resubmits = 0
    places_keyframes = True  # the animatic forces IDR frames at the crossfade edges
    renders_here = True

    def model(self, capability: Capability, requested: str | None) -> str:
        # Model ids in a job are for real providers; a local preview of the same job
        # (`--provider local`) should just work, so they are ignored here.
        return self.default_models[capability]

    def preflight(self, job: Job, capabilities: set[Capability]) -> list[Problem]:
        problems = []
        if capabilities & {"video", "image"} and job.resolution not in (None, *SHORT_SIDES):
            problems.append(
                job.problem(
                    "resolution",
                    f"the local provider renders 360p, 720p or 1080p, not {job.resolution}",
                )
            )
        if "video" in capabilities:
            for i in range(job.scenes):
                seconds = job.clip_seconds(i)
                if seconds not in DURATIONS:
                    where: Any = "clip_duration"
                    override = job.override(i)
                    if override and override.duration:
                        where = ("scene_overrides", job.overrides.index(override), "duration")
                    problems.append(
                        job.problem(
                            where,
                            f"the local provider renders clips of 1 to 8 seconds, not {seconds}",
                        )
                    )
                    break
        return problems

    def key_fields(self, request: Any) -> dict[str, Any]:
        fields = super().key_fields(request)
        if isinstance(request, StoryboardRequest):
            # The planner reads the job's facts, not the rendered prompt: editing the
            # storyboard template cannot change its answer, so it must not miss the cache.
            fields.pop("prompt", None)
            fields.pop("schema", None)
        if fields.get("keyframe_edges") == 0:
            # Clips rendered before keyframe placement existed keep their cache keys.
            fields.pop("keyframe_edges")
        return fields

    def storyboard(self, request: StoryboardRequest) -> StoryboardAnswer:
        from vidpipe.providers.local.planner import plan

        data = plan(
            request.idea,
            scenes=request.scene_count,
            style=request.style,
            clip_duration=request.clip_duration,
            seed=request.seed,
            assets=request.assets,
        )
        return StoryboardAnswer(data=data, usage=Usage())

    def image(self, request: ImageRequest) -> ImageAnswer:
        from vidpipe.providers.local.assets import composite, draw_sheet
        from vidpipe.providers.local.panels import derive_end_frame, draw_keyframe

        hints = request.hints
        if request.role == "sheet":
            png = draw_sheet(
                str(hints.get("asset", "")), str(hints.get("kind", "")), str(hints.get("caption"))
            )
            return ImageAnswer(png=png, usage=Usage(images=1))
        size = frame_size(request.aspect_ratio, request.resolution)
        seed = _seed(request.seed or 0, hints.get("index", 0))
        caption = str(hints.get("caption") or request.prompt.split("\n")[0])
        palette = [str(c) for c in hints.get("palette") or []]
        framing = str(hints.get("framing") or hints.get("camera") or "")
        if request.reference is not None:
            png = derive_end_frame(
                request.reference,
                prompt=request.prompt,
                caption=caption,
                palette=palette,
                framing=framing,
                size=size,
                seed=seed,
            )
        else:
            png = draw_keyframe(
                prompt=request.prompt,
                caption=caption,
                palette=palette,
                framing=framing,
                size=size,
                seed=seed,
            )
        return ImageAnswer(png=composite(png, request.references), usage=Usage(images=1))

    def submit_video(self, request: VideoRequest) -> str:
        # Rendering happens on poll; the id is derived from the request so a resumed run
        # that polls it renders the same clip.
        digest = hashlib.sha256(repr(sorted(self.key_fields(request).items())).encode()).hexdigest()
        return f"local/operations/{digest[:32]}"

    def poll_video(self, operation_id: str, request: VideoRequest) -> VideoStatus:
        from vidpipe.providers.local.animatic import render_clip

        width, height = frame_size(request.aspect_ratio, request.resolution)
        first = request.first_frame
        if first is None:
            # Reference mode: the clip moves over the assets' images, side by side.
            from vidpipe.providers.local.assets import collage

            first = collage(request.references, (width, height))
        with tempfile.TemporaryDirectory(prefix="vidpipe-local-") as tmp:
            out = Path(tmp) / "clip.mp4"
            render_clip(
                first,
                request.last_frame or first,
                out,
                duration=float(request.duration),
                width=width,
                height=height,
                fps=FPS,
                motion=motion_from_prompt(request.prompt),
                audio_seed=None if request.generate_audio is False else _seed(operation_id),
                keyframe_edges=request.keyframe_edges,
            )
            data = out.read_bytes()
        return VideoStatus(
            state="complete",
            data=data,
            usage=Usage(
                video_seconds=float(request.duration), audio=request.generate_audio is not False
            ),
        )
