"""The provider interface: three capabilities behind one small class.

A provider turns requests into results; it never touches the database or the artifact
folders (the pipeline does, so caching, atomic writes and resume work the same for every
provider). A minimal provider::

    from vidpipe.providers import Provider, ImageAnswer

    class Sketchy(Provider):
        name = "sketchy"
        default_models = {"storyboard": "sk-1", "image": "sk-img", "video": "sk-vid"}

        def image(self, request):
            return ImageAnswer(png=draw(request.prompt))
        ...

Register it under the entry-point group ``vidpipe.providers``
(``sketchy = "sketchy_vidpipe:Sketchy"``) and jobs can say ``provider: sketchy``.

Video is a long-running operation: :meth:`Provider.submit_video` returns an operation id
that the pipeline records *before* it polls, then :meth:`Provider.poll_video` is called
until the operation is no longer running. After a crash the pipeline polls the recorded
id again instead of paying for a second submission.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from vidpipe.errors import Problem
    from vidpipe.spec.config import Config
    from vidpipe.spec.jobs import Job

Capability = Literal["storyboard", "image", "video"]
CAPABILITIES: tuple[Capability, ...] = ("storyboard", "image", "video")


@dataclass(frozen=True)
class ReferenceImage:
    """One reference image of an asset, sent with an image or video request.

    The cache key holds the asset's name and the image's sha256 (not its path), so
    replacing an asset's image regenerates what used it and moving the file does not.
    """

    asset: str
    kind: str
    data: bytes
    #: Where it came from, relative to the project root (for manifests and logs).
    path: str = ""
    mime_type: str = "image/png"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class StoryboardRequest:
    """Ask for a storyboard: the rendered prompt plus the job facts a planner may use."""

    model: str
    prompt: str
    schema: Mapping[str, Any]
    scene_count: int
    idea: str
    style: str
    aspect_ratio: str
    clip_duration: int
    seed: int | None = None
    #: The declared assets ({name, kind, description}) a storyboard may name per scene.
    assets: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class ImageRequest:
    """Ask for one keyframe (or, with role `sheet`, an asset's reference sheet).

    `reference` is the start frame when drawing an end frame; `references` are the
    scene's asset images, in priority order, already capped at the model's input limit
    (the start frame counts toward it).
    """

    model: str
    prompt: str
    aspect_ratio: str
    role: Literal["start", "end", "sheet"]
    resolution: str | None = None
    seed: int | None = None
    reference: bytes | None = None
    references: tuple[ReferenceImage, ...] = ()
    #: Storyboard facts (caption, palette, framing) for providers that draw instead of generate.
    hints: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoRequest:
    """Ask for one clip that moves from `first_frame` to `last_frame`.

    In reference mode (`video: {references: assets}`) there are no frames: the clip is
    made from `references`, the scene's asset images (Veo 3.1 `referenceImages`).
    """

    model: str
    prompt: str
    first_frame: bytes | None
    last_frame: bytes | None
    duration: int
    aspect_ratio: str
    resolution: str | None = None
    generate_audio: bool | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    references: tuple[ReferenceImage, ...] = ()
    # Seconds from each end where the stitch will blend (the job's crossfade): a renderer
    # that can place keyframes there lets the stitch copy everything between the blends.
    # Not a model input: providers that cannot place keyframes drop it from the cache key.
    keyframe_edges: float = 0.0


#: Request fields added after 0.1: left out of cache keys while empty, so the keys of
#: every generation made before them stay valid.
_LATER_FIELDS = frozenset({"references", "assets"})


@dataclass(frozen=True)
class Usage:
    """What a call consumed, for the price table."""

    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    video_seconds: float = 0.0
    audio: bool = False
    #: The clip's resolution, where a model's price depends on it (Veo at 4k).
    resolution: str | None = None


@dataclass(frozen=True)
class StoryboardAnswer:
    data: dict[str, Any]
    usage: Usage = Usage()


@dataclass(frozen=True)
class ImageAnswer:
    png: bytes
    usage: Usage = Usage(images=1)


VideoState = Literal["running", "complete", "rai_filtered", "failed"]


@dataclass(frozen=True)
class VideoStatus:
    """The state of a video operation. `data` is the MP4 when complete."""

    state: VideoState
    data: bytes | None = None
    reason: str | None = None
    usage: Usage = Usage()
    #: False when submitting the same request again cannot change the answer (a policy
    #: refusal, an invalid input): the pipeline then fails the scene without resubmitting.
    retry: bool = True
    #: Where the service wrote the video when it is in the artifacts bucket (Veo with
    #: `output_gcs_uri` there): `data` is then None and the pipeline takes the video from
    #: the bucket itself (one download, a copy inside the bucket; no upload).
    uri: str | None = None


class Provider:
    """Base class of providers. Subclasses implement the capabilities they offer."""

    name: ClassVar[str] = ""
    default_models: ClassVar[Mapping[str, str]] = {}
    #: Whether its clips honour `VideoRequest.keyframe_edges`; only then is it part of the
    #: cache key (elsewhere a crossfade change must not pay for a new clip).
    places_keyframes: ClassVar[bool] = False
    #: Whether its work is this machine's CPU, in vidpipe's own process (the local
    #: renderer): a batch of such jobs runs them in forked processes, not threads.
    renders_here: ClassVar[bool] = False
    #: Seconds between polls of one operation.
    poll_interval: float = 0.0
    #: Give up polling an operation after this many seconds (it is then `timed_out`).
    poll_timeout: float = 3600.0
    #: Times a failed operation is resubmitted before the scene fails.
    resubmits: int = 2

    def __init__(self, config: Config):
        self.config = config
        #: Set by the batch: waits (rate limits, backoff) end early when it is set.
        self.stop: threading.Event | None = None

    def model(self, capability: Capability, requested: str | None) -> str:
        """The model id to use for `capability` (the job's choice, else the default)."""
        return requested or self.default_models[capability]

    def planned_usage(self, capability: Capability, job: Job, model: str, scene: int = 0) -> Usage:
        """What one call of `capability` for `job` is expected to consume (for estimates)."""
        if capability == "storyboard":
            # About 4 characters a token; the template adds ~700 tokens; each scene ~220 out.
            return Usage(
                input_tokens=len(job.prompt) // 4 + 700, output_tokens=150 + 220 * job.scenes
            )
        if capability == "image":
            return Usage(images=1)
        return Usage(video_seconds=job.clip_seconds(scene), audio=bool(job.generate_audio))

    def max_input_images(self, model: str) -> int | None:
        """How many input images (start frame plus references) `model` takes; None: no limit.

        Providers with a model catalog answer from it; keyframe requests are capped here and
        what does not fit is dropped with a warning in the manifest.
        """
        return None

    def max_reference_images(self, model: str) -> int:
        """How many asset reference images a clip of `model` may be made from.

        Providers with a model catalog answer from it (Veo 3.1: 3); the local animatic
        takes as many as Veo 3.1 does, so a job behaves alike on both.
        """
        return 3

    def check_ready(self, capabilities: set[Capability], models: Collection[str] = ()) -> None:
        """Raise :class:`~vidpipe.errors.ConfigError` if credentials or settings are missing.

        `models` are the model ids the batch will call, for providers whose credentials
        reach some models and not others.
        """

    def preflight(self, job: Job, capabilities: set[Capability]) -> list[Problem]:
        """Problems that make `job` impossible for this provider, found before any call."""
        return []

    def storyboard(self, request: StoryboardRequest) -> StoryboardAnswer:
        raise NotImplementedError(f"provider {self.name} has no storyboard capability")

    def image(self, request: ImageRequest) -> ImageAnswer:
        raise NotImplementedError(f"provider {self.name} has no image capability")

    def submit_video(self, request: VideoRequest) -> str:
        """Start a clip; return the operation id to record before polling."""
        raise NotImplementedError(f"provider {self.name} has no video capability")

    def poll_video(self, operation_id: str, request: VideoRequest) -> VideoStatus:
        """The current state of an operation started by :meth:`submit_video`."""
        raise NotImplementedError(f"provider {self.name} has no video capability")

    def key_fields(self, request: Any) -> dict[str, Any]:
        """What determines a request's result, for the generation cache key.

        Bytes are replaced by their sha256. Providers that ignore some fields (a model
        never sees `hints`) drop them here so they do not invalidate the cache.
        """
        out: dict[str, Any] = {}
        for f in fields(request):
            value = getattr(request, f.name)
            if f.name in _LATER_FIELDS and not value:
                continue
            if isinstance(value, bytes):
                value = hashlib.sha256(value).hexdigest()
            elif f.name == "references":
                # The asset each image belongs to and its bytes' hash: what a plan names.
                value = [{"asset": r.asset, "sha256": r.sha256} for r in value]
            out[f.name] = value
        if not self.places_keyframes:
            out.pop("keyframe_edges", None)
        return out
