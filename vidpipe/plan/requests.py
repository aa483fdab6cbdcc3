"""The provider requests of a job, built in one place.

The engine sends these requests and the plan predicts their cache keys from them, so a
plan's key and the run's key are the same by construction.

Asset reference images go with a scene's requests in this priority order: for an end
frame the scene's start frame first; then the scene's assets by kind — characters,
products, logos, locations, styles — and, within a kind, in the order the scene lists
them; each asset's images in the order they are declared. A model that takes fewer input
images gets the first ones (its limit comes from the model catalog); the rest are dropped
and listed as a warning in the manifest. A key names each image by its asset and sha256
(`references: [{asset, sha256}]`, left out when there are none, so keys of jobs without
assets are what they were).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidpipe.engine.cache import generation_key
from vidpipe.providers import (
    ImageRequest,
    Provider,
    ReferenceImage,
    StoryboardRequest,
    VideoRequest,
)
from vidpipe.spec.assets import PRIORITY, Asset
from vidpipe.spec.jobs import Job
from vidpipe.spec.schema import load_schema


@dataclass(frozen=True)
class Chosen:
    """The references a request sends, and those its model had no room for."""

    sent: tuple[ReferenceImage, ...]
    dropped: tuple[ReferenceImage, ...]

    def record(self, what: str, model: str, limit: int | None) -> dict[str, Any]:
        """What a keyframe or clip row keeps: sent and dropped images, and the warning."""
        out: dict[str, Any] = {
            "sent": [_entry(r) for r in self.sent],
            "dropped": [_entry(r) for r in self.dropped],
        }
        if self.dropped:
            names = ", ".join(f"{r.asset} ({r.path})" for r in self.dropped)
            n = len(self.dropped)
            out["warning"] = (
                f"{what}: {n} reference image{'s' if n != 1 else ''} dropped, {model} takes "
                f"at most {limit} input image{'s' if limit != 1 else ''}: {names}"
            )
        return out


def _entry(ref: ReferenceImage) -> dict[str, str]:
    return {"asset": ref.asset, "path": ref.path, "sha256": ref.sha256}


def ordered_assets(names: Iterable[str], assets: Mapping[str, Asset]) -> list[Asset]:
    """A scene's assets in priority order (kind, then the scene's order)."""
    listed = [assets[n] for n in dict.fromkeys(names) if n in assets]
    return sorted(listed, key=lambda a: PRIORITY[a.kind])  # stable: keeps the scene's order


def cap(refs: Sequence[ReferenceImage], room: int | None) -> Chosen:
    """The first `room` references (all when None), and the rest."""
    if room is None:
        return Chosen(tuple(refs), ())
    room = max(0, room)
    return Chosen(tuple(refs[:room]), tuple(refs[room:]))


def asset_file(job: Job, asset: Asset, path: Path) -> ReferenceImage:
    """One of an asset's declared images as a reference."""
    mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return ReferenceImage(
        asset.name, asset.kind, path.read_bytes(), path=_relative(path, job.root), mime_type=mime
    )


def scene_references(
    job: Job, scene: Mapping[str, Any], sheet: Callable[[Asset], ReferenceImage | None]
) -> list[ReferenceImage]:
    """Every reference image of a scene's assets, in priority order.

    An asset with a description and no image is represented by its reference sheet:
    `sheet` gives it (the engine makes it; the plan looks it up, None when not made yet).
    """
    out: list[ReferenceImage] = []
    for asset in ordered_assets(scene.get("assets") or [], job.assets):
        paths = asset.images_for(job.aspect_ratio)
        if paths:
            out.extend(asset_file(job, asset, p) for p in paths)
        elif asset.description:
            ref = sheet(asset)
            if ref is not None:
                out.append(ref)
    return out


def image_references(
    provider: Provider, model: str, refs: Sequence[ReferenceImage], with_start: bool
) -> Chosen:
    """The references a keyframe request has room for: the start frame an end frame is
    drawn from comes first and takes one place."""
    limit = provider.max_input_images(model)
    room = None if limit is None else limit - (1 if with_start else 0)
    return cap(refs, room)


def video_references(provider: Provider, model: str, refs: Sequence[ReferenceImage]) -> Chosen:
    """The references a clip made from assets has room for."""
    return cap(refs, provider.max_reference_images(model))


def sheet_prompt(asset: Asset) -> str:
    """The prompt of an asset's reference sheet."""
    return (
        f"A reference sheet of the {asset.kind} '{asset.name}': {asset.description}\n\n"
        f"The whole {asset.kind}, front view, centred on a plain neutral background, even "
        "studio light, sharp focus. No text, no captions, no watermark."
    )


def sheet_request(provider: Provider, job: Job, asset: Asset) -> ImageRequest:
    """A reference sheet's request: square and seedless, so every job shares it."""
    return ImageRequest(
        model=provider.model("image", job.models.get("image")),
        prompt=sheet_prompt(asset),
        aspect_ratio="1:1",
        role="sheet",
        hints={"caption": asset.description, "asset": asset.name, "kind": asset.kind},
    )


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
        assets=tuple(
            {"name": a.name, "kind": a.kind, "description": a.description}
            for a in sorted(job.assets.values(), key=lambda a: a.name)
        ),
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
    references: Sequence[ReferenceImage] = (),
) -> ImageRequest:
    """One keyframe request; `reference` is the start frame when drawing an end frame,
    `references` the asset images chosen for it (:func:`image_references`)."""
    return ImageRequest(
        model=provider.model("image", job.models.get("image")),
        prompt=prompt,
        aspect_ratio=job.aspect_ratio,
        role="start" if kind == "start" else "end",
        resolution=job.resolution,
        seed=job.seed,
        reference=reference,
        references=tuple(references),
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
    job: Job,
    provider: Provider,
    index: int,
    prompt: str,
    first: bytes | None,
    last: bytes | None,
    references: Sequence[ReferenceImage] = (),
) -> VideoRequest:
    """One clip request, from its first and last frame, or (reference mode) from the asset
    images chosen for it (:func:`video_references`) and no frame."""
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
        references=tuple(references),
        # Where the stitch blends: the local renderer puts keyframes there (its cache key
        # includes it); Veo's key drops it, so a crossfade change never pays for a clip.
        keyframe_edges=job.crossfade,
    )


def request_key(provider: Provider, capability: str, request: Any) -> str:
    """The generation cache key of a request."""
    return generation_key(provider.name, capability, provider.key_fields(request))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
