"""The provider requests of a job, built in one place.

The engine sends these requests and the plan predicts their cache keys from them, so a
plan's key and the run's key are the same by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidpipe.engine.cache import generation_key
from vidpipe.providers import ImageRequest, Provider, StoryboardRequest, VideoRequest
from vidpipe.spec.jobs import Job
from vidpipe.spec.schema import load_schema


def storyboard_request(job: Job, provider: Provider, prompt: str) -> StoryboardRequest:
    """The storyboard request of a job from its rendered storyboard prompt."""
    return StoryboardRequest(
        model=provider.model("storyboard", job.models.get("storyboard")),
        prompt=prompt,
        schema=load_schema("storyboard"),
        scene_count=job.scenes,
        idea=job.prompt,
        style=job.style,
        aspect_ratio=job.aspect_ratio,
        clip_duration=job.clip_duration,
        seed=job.seed,
    )


def image_request(
    job: Job,
    provider: Provider,
    index: int,
    kind: str,
    prompt: str,
    scene: Mapping[str, Any],
    guide: Mapping[str, Any],
    reference: bytes | None,
) -> ImageRequest:
    """One keyframe request; `reference` is the start frame when drawing an end frame."""
    return ImageRequest(
        model=provider.model("image", job.models.get("image")),
        prompt=prompt,
        aspect_ratio=job.aspect_ratio,
        role="start" if kind == "start" else "end",
        resolution=job.resolution,
        seed=job.seed,
        reference=reference,
        hints={
            "caption": scene["scene_description"],
            "palette": list(guide.get("color_palette", [])),
            "framing": str(
                scene["start_frame_prompt"] if kind == "start" else scene["end_frame_prompt"]
            ),
            "camera": guide.get("camera_style", ""),
            "index": index,
        },
    )


def video_request(
    job: Job, provider: Provider, index: int, prompt: str, first: bytes, last: bytes
) -> VideoRequest:
    """One clip request, from its first and last frame."""
    return VideoRequest(
        model=provider.model("video", job.models.get("video")),
        prompt=prompt,
        first_frame=first,
        last_frame=last,
        duration=job.clip_seconds(index),
        aspect_ratio=job.aspect_ratio,
        resolution=job.resolution,
        generate_audio=job.generate_audio,
        negative_prompt=job.negative_prompt,
        seed=job.seed,
        # Where the stitch blends: the local renderer puts keyframes there (its cache key
        # includes it); Veo's key drops it, so a crossfade change never pays for a clip.
        keyframe_edges=job.crossfade,
    )


def request_key(provider: Provider, capability: str, request: Any) -> str:
    """The generation cache key of a request."""
    return generation_key(provider.name, capability, provider.key_fields(request))
