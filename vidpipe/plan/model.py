"""What a compiled plan is made of: frozen data, nothing that talks to a provider or a database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vidpipe.engine.states import FrameSource
from vidpipe.pricing import Estimate
from vidpipe.prompts import Rendered
from vidpipe.spec.jobs import Job

#: What a node's cache key is when it cannot be computed before the storyboard exists.
AFTER_STORYBOARD = "depends on the storyboard"


@dataclass(frozen=True)
class Frame:
    """One keyframe of the plan (start or end of a scene)."""

    index: int
    kind: str  # start | end
    #: GENERATED, OVERRIDE or INHERITED (CACHED is a run's word for a generated frame).
    source: FrameSource
    #: For an override: the image, its digest (bytes and fit) and how it is fitted.
    image: Path | None = None
    image_key: str | None = None
    fit: str | None = None

    @property
    def node(self) -> str:
        return f"scene {self.index} {self.kind} frame"


@dataclass(frozen=True)
class Node:
    """One provider call of the generation graph: storyboard → frames → clips."""

    id: str  # "storyboard", "scene 0 start frame", "scene 0 end frame", "scene 0 clip"
    capability: str  # storyboard | image | video
    scene: int | None
    provider: str
    model: str
    #: The generation cache key, or None when it depends on the storyboard.
    key: str | None
    #: What one call is planned to cost (the estimate's price of it).
    cost_usd: float

    @property
    def key_text(self) -> str:
        return self.key or AFTER_STORYBOARD


@dataclass(frozen=True)
class Plan:
    """One job compiled: resolved settings, prompts, the generation graph, outputs, digest.

    Immutable; every command and the database read it. Nodes that need the storyboard's
    text (every frame and clip) carry no key here: :func:`vidpipe.plan.assess` walks the
    graph against the generation cache to learn them.
    """

    job: Job
    #: step → provider name, step → model id.
    providers: Mapping[str, str]
    models: Mapping[str, str]
    storyboard_prompt: Rendered
    #: template key → sha256 of its source (and includes).
    templates: Mapping[str, str]
    frames: tuple[Frame, ...]
    nodes: tuple[Node, ...]
    #: Where the final video is copied (`output:`), relative to the project root.
    output: str | None
    #: The whole price of the job, as if nothing were cached (`vidpipe estimate`).
    estimate: Estimate
    digest: str

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def settings(self) -> Mapping[str, Any]:
        """The resolved settings (the job's one copy, as plain data)."""
        return self.job.settings

    @property
    def crossfade(self) -> float:
        return self.job.crossfade

    @property
    def audio(self) -> bool:
        return self.job.audio

    def frame(self, index: int, kind: str) -> Frame:
        return next(f for f in self.frames if f.index == index and f.kind == kind)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)


class Stitching(Protocol):
    """What stitching a project reads of its plan: a :class:`Plan`, or the summary
    :mod:`vidpipe.memo` remembered of one."""

    @property
    def crossfade(self) -> float: ...

    @property
    def audio(self) -> bool: ...

    @property
    def output(self) -> str | None: ...

    @property
    def settings(self) -> Mapping[str, Any]: ...
