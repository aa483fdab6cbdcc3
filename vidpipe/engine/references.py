"""Asset reference sheets: made on demand while a project runs.

Which reference images go with a request, in which order and how many, is decided in
:mod:`vidpipe.plan.requests` (the plan predicts the same keys). An asset with a
description and no image gets one generated *reference sheet*: an image call keyed like
any other (square, no seed, independent of the job), so one sheet serves every scene and
every job that uses the asset, and a second job copies it from the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidpipe.artifacts import Layout
from vidpipe.engine.calls import Calls
from vidpipe.engine.runtime import Runtime
from vidpipe.plan.requests import request_key, scene_references, sheet_request
from vidpipe.providers import ReferenceImage
from vidpipe.spec.assets import Asset
from vidpipe.spec.jobs import Job


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
        return scene_references(self.job, scene, self.sheet)

    def sheet(self, asset: Asset) -> ReferenceImage:
        """The asset's generated reference sheet (one image call, then the cache)."""
        if asset.name in self._sheets:
            return self._sheets[asset.name]
        provider = self.rt.provider_for(self.job, "image")
        request = sheet_request(provider, self.job, asset)
        key = request_key(provider, "image", request)
        target = self.layout.folder / "assets" / f"{asset.name}.png"
        self.calls.image(f"reference sheet of asset {asset.name}", key, provider, request, target)
        ref = ReferenceImage(
            asset.name, asset.kind, target.read_bytes(), path=self.rt.config.display(target)
        )
        self._sheets[asset.name] = ref
        return ref
