"""Asset reference images: which ones go with a request, and reference sheets.

A scene names the assets it shows. Their reference images go with each of its keyframe
requests in this priority order: for an end frame the scene's start frame first; then the
assets by kind — characters, products, logos, locations, styles — and, within a kind, in
the order the scene lists them; each asset's images in the order they are declared. A
model that takes fewer input images gets the first ones; the rest are dropped and listed
as a warning in the manifest.

An asset with a description and no image gets one generated *reference sheet*: an image
call keyed like any other (square, no seed, independent of the job), so one sheet serves
every scene and every job that uses the asset, and a second job copies it from the cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidpipe.artifacts import Layout, copy_atomic, verified, write_atomic
from vidpipe.engine.cache import generation_key
from vidpipe.engine.calls import Calls
from vidpipe.engine.runtime import Runtime
from vidpipe.errors import Problem
from vidpipe.providers import ImageRequest, Provider, ReferenceImage
from vidpipe.spec.assets import PRIORITY, Asset
from vidpipe.spec.jobs import Job

#: Veo 3.1 takes at most this many `referenceImages`.
VIDEO_REFERENCES_MAX = 3


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


class References:
    """The reference images of one job's scenes, with its assets' sheets made on demand."""

    def __init__(self, runtime: Runtime, job: Job, layout: Layout, calls: Calls):
        self.rt = runtime
        self.job = job
        self.layout = layout
        self.calls = calls
        self._sheets: dict[str, ReferenceImage] = {}

    def for_scene(self, scene: Mapping[str, Any]) -> list[ReferenceImage]:
        """Every reference image of the scene's assets, in priority order."""
        out: list[ReferenceImage] = []
        for asset in ordered_assets(scene.get("assets") or [], self.job.assets):
            paths = asset.images_for(self.job.aspect_ratio)
            if paths:
                out.extend(self._file(asset, p) for p in paths)
            elif asset.description:
                out.append(self.sheet(asset))
        return out

    def _file(self, asset: Asset, path: Path) -> ReferenceImage:
        data = path.read_bytes()
        mime = "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"
        shown = self.rt.config.display(path)
        return ReferenceImage(asset.name, asset.kind, data, path=shown, mime_type=mime)

    def sheet(self, asset: Asset) -> ReferenceImage:
        """The asset's generated reference sheet (one image call, then the cache)."""
        if asset.name in self._sheets:
            return self._sheets[asset.name]
        provider = self.rt.provider_for(self.job, "image")
        request = sheet_request(provider, self.job, asset)
        key = generation_key(provider.name, "image", provider.key_fields(request))
        target = self.layout.folder / "assets" / f"{asset.name}.png"
        what = f"reference sheet of asset {asset.name}"
        hit = self.calls.lookup(what, key)
        if hit is not None and hit.path is not None:
            if not (target.exists() and verified(target, hit.sha256)):
                copy_atomic(hit.path, target)
        else:
            self.calls.calling(what, request.model)
            answer = provider.image(request)
            sha = write_atomic(target, answer.png)
            self.calls.record(
                key,
                capability="image",
                provider=provider,
                model=request.model,
                usage=answer.usage,
                path=target,
                sha256=sha,
            )
        ref = ReferenceImage(
            asset.name, asset.kind, target.read_bytes(), path=self.rt.config.display(target)
        )
        self._sheets[asset.name] = ref
        return ref


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


def video_reference_problems(job: Job, provider: Provider) -> list[Problem]:
    """Scenes whose clips are made from asset references that the video model refuses."""
    model = provider.model("video", job.models.get("video"))
    problems = []
    for i in range(job.scenes):
        if job.video_mode(i) != "assets":
            continue
        why = provider.reference_video_problem(model, job.clip_seconds(i))
        if why is None:
            continue
        override = job.override(i)
        where: Any = "video"
        if override is not None and override.video_references:
            where = ("scene_overrides", job.overrides.index(override), "video")
        elif override is not None and override.duration:
            where = ("scene_overrides", job.overrides.index(override), "duration")
        problems.append(job.problem(where, f"scene {i}: video references: assets: {why}"))
        break
    return problems
