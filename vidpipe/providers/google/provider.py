"""The `google` provider: Gemini, Gemini image (or Imagen) and Veo on Vertex AI.

Built on the official `google-genai` SDK in Vertex mode (``genai.Client(vertexai=True)``).
Credentials, locations and the one-client-per-location rule are in
:mod:`~vidpipe.providers.google.client`; how failures are retried is in
:mod:`~vidpipe.providers.google.retry`. The key is never stored, logged or put in a
message: every error text passes through :meth:`GoogleProvider._redact`.

Every model fact (durations, resolutions, aspect ratios, inputs, sound, location, which
REST method it needs) comes from the model catalog (:mod:`vidpipe.catalog`), so the
pre-flight checks refuse what the service would refuse before anything is paid for.

* storyboard — Gemini structured output (``response_json_schema``), validated by the pipeline.
* image — a Gemini image model with ``response_modalities=["IMAGE"]`` (and ``imageSize``
  where the model takes one); an end frame is an edit of its start frame. ``thought``
  parts are skipped; a response without an image (``IMAGE_SAFETY``, ``NO_IMAGE``, a
  blocked prompt) is retried, then the scene fails with the reason. Models the catalog
  calls through ``predict`` (Imagen) are text-only.
* video — Veo with the start frame as ``image`` and the end frame as ``last_frame``,
  submitted as a long-running operation and polled with ``client.operations.get``. An
  operation that ends in a deterministic refusal (google.rpc code 3, a policy "Support
  codes" message) is not submitted again.
"""

from __future__ import annotations

import io
import json
import logging
import os
import urllib.request
import warnings
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from vidpipe.catalog import ModelInfo, image_size_for, job_problems
from vidpipe.catalog import builtin as builtin_catalog
from vidpipe.errors import (
    ConfigError,
    ContentBlocked,
    InvalidAnswer,
    Problem,
    ProviderError,
    TransientProviderError,
)
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
from vidpipe.providers.google.client import (
    KINDS,
    Clients,
    api_of,
    credentials,
    express_refusal,
)
from vidpipe.providers.google.retry import (
    Refused,
    is_transport_error,
    per_day_quota,
    retry_delay,
    transient_status,
)
from vidpipe.providers.ratelimit import RateLimiter, with_retries

if TYPE_CHECKING:
    from vidpipe.spec.config import Config
    from vidpipe.spec.jobs import Job

log = logging.getLogger("vidpipe.providers.google")
T = TypeVar("T")

#: Extra attempts when an image response carries no image (safety filter, NO_IMAGE).
IMAGE_ATTEMPTS = 3
#: google.rpc code of an operation refused for its input (policy, invalid argument).
INVALID_ARGUMENT = 3
#: Words of an operation error that a resubmission cannot change.
_POLICY_MARKERS = ("support codes", "could not be submitted", "responsible ai", "allowlist")

__all__ = ["GoogleProvider", "Refused"]


class GoogleProvider(Provider):
    """Vertex AI through google-genai."""

    name: ClassVar[str] = "google"
    default_models: ClassVar[dict[str, str]] = dict(builtin_catalog().defaults["google"])

    def __init__(self, config: Config):
        super().__init__(config)
        settings = config.google
        self.settings = settings
        self.catalog = config.catalog
        self.poll_interval = settings.poll_interval
        self.poll_timeout = settings.poll_timeout
        self.limiters = {
            cap: RateLimiter(config.rate_limits.get(kind, 60)) for cap, kind in KINDS.items()
        }
        self.clients = Clients(settings)
        self.artifacts_url = config.artifacts_url

    def model(self, capability: Capability, requested: str | None) -> str:
        return (
            requested
            or self.catalog.default(self.name, capability)
            or self.default_models[capability]
        )

    # -- credentials ----------------------------------------------------------------------

    def check_ready(self, capabilities: set[Capability], models: Collection[str] = ()) -> None:
        if not capabilities:
            return
        creds = credentials(self.settings)
        needs = [(m, api_of(self.catalog, _step_of(self.catalog, m), m)) for m in models]
        if "video" in capabilities and not models:
            needs.append((self.model("video", None), "predict_long_running"))
        refusal = express_refusal(creds, needs)
        if refusal:
            raise ConfigError(refusal)
        if creds.api_key:
            return
        if not creds.project:
            raise ConfigError(
                "the google provider needs credentials: set GOOGLE_API_KEY to a Vertex AI "
                "API key (with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION for Veo), or "
                "use Application Default Credentials (`gcloud auth application-default "
                "login` or GOOGLE_APPLICATION_CREDENTIALS) with GOOGLE_CLOUD_PROJECT (or "
                "google.project); neither GOOGLE_API_KEY nor GOOGLE_CLOUD_PROJECT is set"
            )
        self.clients.adc(creds.project)

    def client(self, capability: Capability = "storyboard", model: str | None = None) -> Any:
        """The SDK client for the location `model` is served from (shared, thread-safe)."""
        model = model or self.model(capability, None)
        return self.clients.get(self.clients.location_for(self.catalog, capability, model))

    def _redact(self, text: str) -> str:
        key = os.environ.get("GOOGLE_API_KEY")
        if key:
            text = text.replace(key, "***")
        return text

    # -- calling the SDK ------------------------------------------------------------------

    def _call(
        self, capability: Capability, what: str, fn: Callable[[], T], *, limited: bool = True
    ) -> T:
        """Run one SDK call with retries, translating SDK errors into vidpipe's."""

        def attempt() -> T:
            from google.auth.exceptions import GoogleAuthError
            from google.auth.exceptions import TransportError as AuthTransportError
            from google.genai import errors as genai_errors

            try:
                return fn()
            except genai_errors.APIError as exc:
                code = int(exc.code or 0)
                message = self._redact(f"{code} {exc.status or ''}: {exc.message or ''}".strip())
                if transient_status(code) and not per_day_quota(exc):
                    raise TransientProviderError(
                        message, retry_after=retry_delay(exc), status=code
                    ) from None
                raise Refused(f"{what} was refused: {message}", status=code) from None
            except GoogleAuthError as exc:
                # Refreshing an access token failed (network, revoked or expired grant).
                if isinstance(exc, AuthTransportError) or getattr(exc, "retryable", False):
                    raise TransientProviderError(f"credentials refresh failed: {exc}") from None
                raise ProviderError(
                    f"{what}: Google credentials were refused ({exc}); run `gcloud auth "
                    "application-default login` or check GOOGLE_APPLICATION_CREDENTIALS"
                ) from None
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                raise TransientProviderError(self._redact(f"network error: {exc}")) from None

        return with_retries(
            attempt,
            attempts=self.settings.max_retries,
            base_delay=self.settings.retry_base_delay,
            what=what,
            limiter=self.limiters[capability] if limited else None,
            stop=self.stop,
        )

    # -- pre-flight -----------------------------------------------------------------------

    def preflight(self, job: Job, capabilities: set[Capability]) -> list[Problem]:
        problems: list[Problem] = []
        for step in ("storyboard", "image", "video"):
            if step not in capabilities:
                continue
            model = self.model(step, job.models.get(step))
            where: Any = ("models", step) if job.models.get(step) else "provider"
            info = self.catalog.get(model)
            if info is None or info.provider != self.name:
                problems.append(
                    job.problem(
                        where,
                        f"{model} is not a google model in the catalog; `vidpipe models` "
                        "lists the known ones, and `models:` in vidpipe.yaml adds one",
                    )
                )
                continue
            if info.step != step:
                problems.append(
                    job.problem(where, f"{model} is a {info.step} model, not a {step} model")
                )
                continue
            problems.extend(job_problems(job, info, where))
        return problems

    def max_input_images(self, model: str) -> int | None:
        info = self._info(model)
        return None if info is None else info.max_input_images

    def max_reference_images(self, model: str) -> int:
        info = self._info(model)
        return 3 if info is None else info.reference_images

    def _info(self, model: str) -> ModelInfo | None:
        return self.catalog.get(model)

    def _audio(self, model: str, requested: bool | None) -> bool | None:
        """The generateAudio value to send: none for models that take no such parameter."""
        info = self._info(model)
        if info is not None and not info.audio_param:
            return None
        return True if requested is None else requested

    def _has_audio(self, model: str, requested: bool | None) -> bool:
        info = self._info(model)
        makes_sound = info.audio if info is not None else True
        return makes_sound and requested is not False

    def planned_usage(self, capability: Capability, job: Job, model: str, scene: int = 0) -> Usage:
        if capability == "video":
            return Usage(
                video_seconds=job.clip_seconds(scene),
                audio=self._has_audio(model, job.generate_audio),
                resolution=job.resolution,
            )
        return super().planned_usage(capability, job, model, scene)

    def key_fields(self, request: Any) -> dict[str, Any]:
        fields = super().key_fields(request)
        # Models never see the storyboard hints (captions, palettes for the local panels).
        fields.pop("hints", None)
        if isinstance(request, StoryboardRequest):
            for name in ("idea", "style", "aspect_ratio", "clip_duration"):
                fields.pop(name, None)  # already in the rendered prompt
        return fields

    # -- storyboard -----------------------------------------------------------------------

    def storyboard(self, request: StoryboardRequest) -> StoryboardAnswer:
        from google.genai import types

        schema = _pinned_scene_count(request.schema, request.scene_count)
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_json_schema=schema,
            seed=request.seed,
            temperature=0.7,
        )
        # Made (or found) before the rate limiter admits the call, so building a client
        # never eats into the request's slot.
        client = self.client("storyboard", request.model)
        response = self._call(
            "storyboard",
            f"storyboard ({request.model})",
            lambda: client.models.generate_content(
                model=request.model, contents=request.prompt, config=config
            ),
        )
        usage = _token_usage(response)
        text = response.text
        if not text:
            raise InvalidAnswer(f"{request.model} returned no text ({_finish_reason(response)})")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidAnswer(f"{request.model} returned invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidAnswer(f"{request.model} returned JSON that is not an object")
        return StoryboardAnswer(data=data, usage=usage)

    # -- images ---------------------------------------------------------------------------

    def image(self, request: ImageRequest) -> ImageAnswer:
        if api_of(self.catalog, "image", request.model) == "predict":
            return self._imagen(request)
        from google.genai import types

        contents: list[Any] = []
        if request.reference is not None:
            contents.append(types.Part.from_bytes(data=request.reference, mime_type="image/png"))
        # Asset references follow the start frame, in the engine's priority order.
        for ref in request.references:
            contents.append(types.Part.from_bytes(data=ref.data, mime_type=ref.mime_type))
        contents.append(request.prompt)
        image_config: dict[str, Any] = {"aspect_ratio": request.aspect_ratio}
        info = self._info(request.model)
        if info is not None and info.image_sizes:
            # Keyframes as sharp as the clips they start: 2K for 1080p, 4K for 4k.
            image_config["image_size"] = image_size_for(request.resolution)
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(**image_config),
            seed=request.seed,
        )
        reason = ""
        client = self.client("image", request.model)
        for _ in range(IMAGE_ATTEMPTS):
            response = self._call(
                "image",
                f"image ({request.model})",
                lambda: client.models.generate_content(
                    model=request.model, contents=contents, config=config
                ),
            )
            data, mime = _first_image(response)
            if data is not None:
                return ImageAnswer(png=_as_png(data, mime), usage=Usage(images=1))
            reason = _finish_reason(response)
            log.info("image (%s): no image in the answer (%s); asking again", request.model, reason)
        raise ContentBlocked(
            f"{request.model} returned no image after {IMAGE_ATTEMPTS} attempts ({reason})"
        )

    def _imagen(self, request: ImageRequest) -> ImageAnswer:
        from google.genai import types

        # Imagen cannot edit an image; an end frame is drawn from its prompt alone.
        config = types.GenerateImagesConfig(
            number_of_images=1,
            aspect_ratio=request.aspect_ratio,
            include_rai_reason=True,
            output_mime_type="image/png",
        )

        client = self.client("image", request.model)

        def generate() -> Any:
            # The SDK flags generate_images as deprecated in favour of Gemini image models;
            # Imagen is still served and priced, and the choice is the user's.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return client.models.generate_images(
                    model=request.model, prompt=request.prompt, config=config
                )

        from google.genai._common import ExperimentalWarning

        reason = ""
        for _ in range(IMAGE_ATTEMPTS):
            response = self._call("image", f"image ({request.model})", generate)
            for generated in response.generated_images or []:
                if generated.image is not None and generated.image.image_bytes:
                    return ImageAnswer(
                        png=_as_png(generated.image.image_bytes, generated.image.mime_type),
                        usage=Usage(images=1),
                    )
                reason = generated.rai_filtered_reason or reason
            reason = reason or "no image in the answer"
        raise ContentBlocked(
            f"{request.model} returned no image after {IMAGE_ATTEMPTS} attempts ({reason})"
        )

    # -- video ----------------------------------------------------------------------------

    def submit_video(self, request: VideoRequest) -> str:
        from google.genai import types

        if request.references and (request.first_frame or request.last_frame):
            # The service refuses the combination; never pay for finding that out.
            raise ProviderError("Veo takes reference images or first/last frames, not both")
        config = types.GenerateVideosConfig(
            reference_images=[
                types.VideoGenerationReferenceImage(
                    image=types.Image(image_bytes=ref.data, mime_type=ref.mime_type),
                    reference_type=types.VideoGenerationReferenceType.ASSET,
                )
                for ref in request.references
            ]
            or None,
            number_of_videos=1,
            duration_seconds=request.duration,
            aspect_ratio=request.aspect_ratio,
            last_frame=types.Image(image_bytes=request.last_frame, mime_type="image/png")
            if request.last_frame
            else None,
            resolution=request.resolution,
            generate_audio=self._audio(request.model, request.generate_audio),
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            output_gcs_uri=self.settings.output_gcs_uri,
        )
        source = types.GenerateVideosSource(
            prompt=request.prompt,
            image=types.Image(image_bytes=request.first_frame, mime_type="image/png")
            if request.first_frame
            else None,
        )
        client = self.client("video", request.model)
        operation = self._call(
            "video",
            f"video ({request.model})",
            lambda: client.models.generate_videos(
                model=request.model, source=source, config=config
            ),
        )
        if not operation.name:
            raise ProviderError(f"{request.model} accepted the clip but returned no operation name")
        return str(operation.name)

    def poll_video(self, operation_id: str, request: VideoRequest) -> VideoStatus:
        from google.genai import types

        pending = types.GenerateVideosOperation.model_validate({"name": operation_id})
        client = self.client("video", request.model)
        # Polls are not generation requests: they do not count against the video quota.
        try:
            op = self._call(
                "video",
                f"poll ({request.model})",
                lambda: client.operations.get(pending),
                limited=False,
            )
        except Refused as exc:
            if exc.status != 404:
                raise
            # The server no longer knows the operation (expired, or lost while we were
            # down): nothing will ever come of it, so it counts as a failed operation
            # and the pipeline submits the clip again instead of polling it forever.
            return VideoStatus(state="failed", reason=f"the operation is gone: {exc}")
        if not op.done:
            return VideoStatus(state="running")
        if op.error:
            error = op.error if isinstance(op.error, dict) else {"message": str(op.error)}
            message = str(error.get("message") or "")
            code = error.get("code")
            # Code 3 (INVALID_ARGUMENT) and policy refusals ("… Support codes: 58061214")
            # answer the request, not a passing fault: submitting it again is paying to be
            # told the same thing.
            final = code == INVALID_ARGUMENT or any(
                marker in message.lower() for marker in _POLICY_MARKERS
            )
            return VideoStatus(
                state="failed",
                reason=self._redact(
                    f"{'refused by the service' if final else 'operation failed'}: "
                    f"{code if code is not None else ''} {message}".strip()
                ),
                retry=not final,
            )
        response = op.response
        videos = (response.generated_videos if response is not None else None) or []
        for generated in videos:
            video = generated.video
            if video is None:
                continue
            usage = Usage(
                video_seconds=float(request.duration),
                audio=self._has_audio(request.model, request.generate_audio),
                resolution=request.resolution,
            )
            if not video.video_bytes and video.uri and self._in_artifacts(video.uri):
                # Veo wrote it into the artifacts bucket: the pipeline fetches it there
                # once and keeps it by a copy inside the bucket.
                return VideoStatus(state="complete", uri=video.uri, usage=usage)
            data = video.video_bytes or (self._download(video.uri) if video.uri else None)
            if data:
                return VideoStatus(state="complete", data=data, usage=usage)
        filtered = response.rai_media_filtered_count if response is not None else None
        if filtered:
            reasons = (
                "; ".join(response.rai_media_filtered_reasons or []) if response is not None else ""
            )
            return VideoStatus(
                state="rai_filtered",
                reason=f"filtered by Veo's safety filter: {reasons or 'no reason given'}",
            )
        return VideoStatus(state="failed", reason="the operation finished without a video")

    def _in_artifacts(self, uri: str) -> bool:
        """Whether `uri` lies in the bucket of `artifacts_dir` (gs:// bucket mode)."""
        url = self.artifacts_url or ""
        if not url.startswith("gs://") or not uri.startswith("gs://"):
            return False
        return uri[5:].split("/", 1)[0] == url[5:].split("/", 1)[0]

    def _download(self, uri: str) -> bytes:
        """Fetch a `gs://` result through the Cloud Storage JSON API."""
        from urllib.parse import quote

        bucket, _, name = uri.removeprefix("gs://").partition("/")
        base = (self.settings.base_url or "https://storage.googleapis.com").rstrip("/")
        url = f"{base}/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
        headers = {}
        token = self.clients.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"

        def fetch() -> bytes:
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, headers=headers), timeout=120
                ) as resp:
                    return bytes(resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code in (408, 429) or exc.code >= 500:
                    raise TransientProviderError(
                        f"download of {uri}: HTTP {exc.code}", status=exc.code
                    ) from None
                raise ProviderError(f"cannot download {uri}: HTTP {exc.code}") from None
            except OSError as exc:
                raise TransientProviderError(f"download of {uri}: {exc}") from None

        return with_retries(
            fetch,
            attempts=self.settings.max_retries,
            base_delay=self.settings.retry_base_delay,
            what=f"download {uri}",
            stop=self.stop,
        )


def _pinned_scene_count(schema: Any, scenes: int) -> dict[str, Any]:
    """The storyboard schema for Gemini: no `$` keywords, and exactly `scenes` scenes.

    Structured output enforces `minItems`/`maxItems`, so the model cannot answer with
    another scene count (which the pipeline would reject and pay to ask again).
    """
    import copy

    out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in schema.items() if not k.startswith("$")}
    scenes_schema = out.get("properties", {}).get("scenes")
    if isinstance(scenes_schema, dict) and scenes > 0:
        scenes_schema["minItems"] = scenes
        scenes_schema["maxItems"] = scenes
    return out


def _token_usage(response: Any) -> Usage:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return Usage()
    return Usage(
        input_tokens=int(meta.prompt_token_count or 0),
        output_tokens=int(
            (meta.candidates_token_count or 0) + (getattr(meta, "thoughts_token_count", None) or 0)
        ),
    )


def _first_image(response: Any) -> tuple[bytes | None, str | None]:
    for candidate in response.candidates or []:
        content = candidate.content
        for part in (content.parts if content is not None else None) or []:
            if part.thought:
                continue  # the model's reasoning, sometimes with a draft image
            blob = part.inline_data
            if blob is not None and blob.data:
                return blob.data, blob.mime_type
    return None, None


def _finish_reason(response: Any) -> str:
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and feedback.block_reason:
        return f"prompt blocked: {_enum(feedback.block_reason)}"
    for candidate in response.candidates or []:
        if candidate.finish_reason:
            return f"finish reason {_enum(candidate.finish_reason)}"
    return "no candidates"


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value))


def _as_png(data: bytes, mime: str | None) -> bytes:
    """Keyframes are stored as PNG whatever the model sent."""
    if mime in (None, "image/png") and data[:8] == b"\x89PNG\r\n\x1a\n":
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, format="PNG")
        return out.getvalue()


def _step_of(catalog: Any, model: str) -> str:
    """The step a model serves (by the catalog; Veo ids are video, the rest image/text)."""
    info = catalog.get(model)
    if info is not None:
        return str(info.step)
    return "video" if model.startswith("veo-") else "image"
