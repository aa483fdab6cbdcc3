"""The `google` provider: Gemini, Gemini image (or Imagen) and Veo on Vertex AI.

Built on the official `google-genai` SDK in Vertex mode (``genai.Client(vertexai=True)``).

Credentials come from the environment only — an express-mode key in ``GOOGLE_API_KEY``,
or Application Default Credentials with ``GOOGLE_CLOUD_PROJECT`` and
``GOOGLE_CLOUD_LOCATION`` (or ``google.project`` / ``google.location``). The key is never
stored, logged or put in a message: every error text passes through :meth:`_redact`.

* storyboard — Gemini structured output (``response_json_schema``), validated by the pipeline.
* image — a Gemini image model with ``response_modalities=["IMAGE"]``; an end frame is an
  edit of its start frame. ``thought`` parts are skipped; a response without an image
  (``IMAGE_SAFETY``, ``NO_IMAGE``, a blocked prompt) is retried, then the scene fails with
  the reason. ``imagen-*`` models go through ``:predict`` (text only).
* video — Veo with the start frame as ``image`` and the end frame as ``last_frame``,
  submitted as a long-running operation and polled with ``client.operations.get``.

429, 408 and 5xx answers and network errors are retried with exponential backoff and
jitter, honouring ``Retry-After``; requests per minute are capped per capability by a
limiter shared by every job of the run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import urllib.request
import warnings
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

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
from vidpipe.providers.ratelimit import RateLimiter, with_retries

if TYPE_CHECKING:
    from vidpipe.spec.config import Config
    from vidpipe.spec.jobs import Job

log = logging.getLogger("vidpipe.providers.google")
T = TypeVar("T")

#: Vertex AI region when neither google.location nor GOOGLE_CLOUD_LOCATION names one.
DEFAULT_LOCATION = "us-central1"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: Extra attempts when an image response carries no image (safety filter, NO_IMAGE).
IMAGE_ATTEMPTS = 3
RATE_KINDS = {"storyboard": "text", "image": "image", "video": "video"}


class Refused(ProviderError):
    """The API refused a request (a 4xx other than 408/429): retrying it cannot help."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


def veo_family(model: str) -> str | None:
    """`veo-2`, `veo-3.0`, `veo-3.1` (or another `veo-3.x`), or None for a non-Veo model."""
    m = re.match(r"veo-(\d+)(?:\.(\d+))?", model)
    if not m:
        return None
    major, minor = m.group(1), m.group(2) or "0"
    return "veo-2" if major == "2" else f"veo-{major}.{minor}"


# What each Veo family accepts (Google's model pages, see FIELD-NOTES).
VEO_ASPECT_RATIOS = ("16:9", "9:16")
VEO_DURATIONS = {"veo-2": (5, 6, 7, 8)}
VEO3_DURATIONS = (4, 6, 8)
VEO_RESOLUTIONS = {"veo-2": ("720p",)}
VEO3_RESOLUTIONS = ("720p", "1080p")
VEO_WITHOUT_LAST_FRAME = ("veo-3.0",)


class GoogleProvider(Provider):
    """Vertex AI through google-genai."""

    name: ClassVar[str] = "google"
    default_models: ClassVar[dict[str, str]] = {
        "storyboard": "gemini-2.5-flash",
        "image": "gemini-2.5-flash-image",
        "video": "veo-3.1-fast-generate-001",
    }

    def __init__(self, config: Config):
        super().__init__(config)
        settings = config.google
        self.settings = settings
        self.poll_interval = settings.poll_interval
        self.poll_timeout = settings.poll_timeout
        self.limiters = {
            cap: RateLimiter(config.rate_limits.get(kind, 60)) for cap, kind in RATE_KINDS.items()
        }
        self._client: Any = None
        self._adc_credentials: Any = None
        self._client_lock = threading.Lock()

    # -- credentials and client -----------------------------------------------------------

    def _credentials(self) -> tuple[str | None, str | None, str | None]:
        """(api_key, project, location) from the environment and vidpipe.yaml.

        The location defaults to `us-central1` (SPEC §5; where Veo is served) after
        `google.location` and `GOOGLE_CLOUD_LOCATION`.
        """
        key = os.environ.get("GOOGLE_API_KEY") or None
        project = self.settings.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
        location = (
            self.settings.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION
        )
        return key, project, location

    def check_ready(self, capabilities: set[Capability]) -> None:
        if not capabilities:
            return
        key, project, _location = self._credentials()
        if key:
            return
        if not project:
            raise ConfigError(
                "the google provider needs credentials: set GOOGLE_API_KEY to a Vertex AI "
                "express-mode key, or use Application Default Credentials (`gcloud auth "
                "application-default login` or GOOGLE_APPLICATION_CREDENTIALS) with "
                "GOOGLE_CLOUD_PROJECT (or google.project) and optionally GOOGLE_CLOUD_LOCATION "
                f"(default {DEFAULT_LOCATION}); neither GOOGLE_API_KEY nor GOOGLE_CLOUD_PROJECT "
                "is set"
            )
        self._adc(project)

    def _adc(self, project: str | None) -> Any:
        """Application Default Credentials, found once (a ConfigError when there are none)."""
        with self._client_lock:
            if self._adc_credentials is None:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError

                try:
                    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
                except DefaultCredentialsError as exc:
                    raise ConfigError(
                        f"the google provider has no credentials for project {project}: {exc} "
                        "Run `gcloud auth application-default login`, set "
                        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or set "
                        "GOOGLE_API_KEY to a Vertex AI express-mode key"
                    ) from None
                self._adc_credentials = credentials
            return self._adc_credentials

    def client(self) -> Any:
        """The shared SDK client (created on first use; thread-safe)."""
        if self._client is not None:
            return self._client
        key, project, location = self._credentials()
        credentials = None if key else self._adc(project)
        with self._client_lock:
            if self._client is None:
                from google import genai
                from google.genai import types

                options: dict[str, Any] = {"timeout": 120_000}
                if self.settings.base_url:
                    options["base_url"] = self.settings.base_url
                http_options = types.HttpOptions(**options)
                if key:
                    self._client = genai.Client(
                        vertexai=True, api_key=key, http_options=http_options
                    )
                else:
                    self._client = genai.Client(
                        vertexai=True,
                        project=project,
                        location=location,
                        credentials=credentials,
                        http_options=http_options,
                    )
            return self._client

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
            from httpx2 import TransportError

            try:
                return fn()
            except genai_errors.APIError as exc:
                code = int(exc.code or 0)
                message = self._redact(f"{code} {exc.status or ''}: {exc.message or ''}".strip())
                if code in (408, 429) or code >= 500:
                    raise TransientProviderError(
                        message, retry_after=_retry_after(exc), status=code
                    ) from None
                raise Refused(f"{what} was refused: {message}", status=code) from None
            except TransportError as exc:
                raise TransientProviderError(self._redact(f"network error: {exc}")) from None
            except GoogleAuthError as exc:
                # Refreshing an access token failed (network, revoked or expired grant).
                if isinstance(exc, AuthTransportError) or getattr(exc, "retryable", False):
                    raise TransientProviderError(f"credentials refresh failed: {exc}") from None
                raise ProviderError(
                    f"{what}: Google credentials were refused ({exc}); run `gcloud auth "
                    "application-default login` or check GOOGLE_APPLICATION_CREDENTIALS"
                ) from None

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
        if "video" not in capabilities:
            return problems
        model = self.model("video", job.models.get("video"))
        family = veo_family(model)
        where_model: Any = ("models", "video") if job.models.get("video") else "provider"
        if family is None:
            return [
                job.problem(
                    where_model,
                    f"{model} is not a Veo model; the google provider makes clips with Veo",
                )
            ]
        if job.aspect_ratio not in VEO_ASPECT_RATIOS:
            problems.append(
                job.problem(
                    "aspect_ratio", f"{model} makes 16:9 or 9:16 video, not {job.aspect_ratio}"
                )
            )
        allowed = VEO_DURATIONS.get(family, VEO3_DURATIONS)
        for i in range(job.scenes):
            seconds = job.clip_seconds(i)
            if seconds not in allowed:
                override = job.override(i)
                where: Any = "clip_duration"
                if override is not None and override.duration:
                    where = ("scene_overrides", job.overrides.index(override), "duration")
                choices = ", ".join(str(d) for d in allowed)
                problems.append(
                    job.problem(where, f"{model} makes clips of {choices} seconds, not {seconds}")
                )
                break
        resolutions = VEO_RESOLUTIONS.get(family, VEO3_RESOLUTIONS)
        if job.resolution is not None and job.resolution not in resolutions:
            problems.append(
                job.problem(
                    "resolution",
                    f"{model} renders {' or '.join(resolutions)}, not {job.resolution}",
                )
            )
        if family in VEO_WITHOUT_LAST_FRAME:
            problems.append(
                job.problem(
                    where_model,
                    f"{model} cannot end a clip on a given last frame, which vidpipe needs for "
                    "continuity; use veo-3.1-fast-generate-001, veo-3.1-generate-001 or veo-2.0-generate-001",
                )
            )
        return problems

    def _audio(self, model: str, requested: bool | None) -> bool | None:
        """Veo 3 makes sound unless told not to; Veo 2 has no audio option."""
        if veo_family(model) == "veo-2":
            return None
        return True if requested is None else requested

    def planned_usage(self, capability: Capability, job: Job, model: str, scene: int = 0) -> Usage:
        if capability == "video":
            return Usage(
                video_seconds=job.clip_seconds(scene),
                audio=bool(self._audio(model, job.generate_audio)),
            )
        return super().planned_usage(capability, job, model, scene)

    def key_fields(self, request: Any) -> dict[str, Any]:
        fields = super().key_fields(request)
        # Models never see the storyboard hints (captions, palettes for the local panels).
        fields.pop("hints", None)
        # Veo places its own keyframes: a crossfade change must not pay for a new clip.
        fields.pop("keyframe_edges", None)
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
        response = self._call(
            "storyboard",
            f"storyboard ({request.model})",
            lambda: self.client().models.generate_content(
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
        if request.model.startswith("imagen-"):
            return self._imagen(request)
        from google.genai import types

        contents: list[Any] = []
        if request.reference is not None:
            contents.append(types.Part.from_bytes(data=request.reference, mime_type="image/png"))
        contents.append(request.prompt)
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=request.aspect_ratio),
            seed=request.seed,
        )
        reason = ""
        for _ in range(IMAGE_ATTEMPTS):
            response = self._call(
                "image",
                f"image ({request.model})",
                lambda: self.client().models.generate_content(
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

        def generate() -> Any:
            # The SDK flags generate_images as deprecated in favour of Gemini image models;
            # Imagen is still served and priced, and the choice is the user's.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return self.client().models.generate_images(
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

        config = types.GenerateVideosConfig(
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
            image=types.Image(image_bytes=request.first_frame, mime_type="image/png"),
        )
        operation = self._call(
            "video",
            f"video ({request.model})",
            lambda: self.client().models.generate_videos(
                model=request.model, source=source, config=config
            ),
        )
        if not operation.name:
            raise ProviderError(f"{request.model} accepted the clip but returned no operation name")
        return str(operation.name)

    def poll_video(self, operation_id: str, request: VideoRequest) -> VideoStatus:
        from google.genai import types

        pending = types.GenerateVideosOperation.model_validate({"name": operation_id})
        # Polls are not generation requests: they do not count against the video quota.
        try:
            op = self._call(
                "video",
                f"poll ({request.model})",
                lambda: self.client().operations.get(pending),
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
            return VideoStatus(
                state="failed",
                reason=self._redact(
                    f"operation failed: {error.get('code', '')} {error.get('message', '')}".strip()
                ),
            )
        response = op.response
        videos = (response.generated_videos if response is not None else None) or []
        for generated in videos:
            video = generated.video
            if video is None:
                continue
            data = video.video_bytes or (self._download(video.uri) if video.uri else None)
            if data:
                usage = Usage(
                    video_seconds=float(request.duration),
                    audio=bool(self._audio(request.model, request.generate_audio)),
                )
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

    def _download(self, uri: str) -> bytes:
        """Fetch a `gs://` result through the Cloud Storage JSON API."""
        from urllib.parse import quote

        bucket, _, name = uri.removeprefix("gs://").partition("/")
        base = (self.settings.base_url or "https://storage.googleapis.com").rstrip("/")
        url = f"{base}/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
        headers = {}
        client = self.client()
        credentials = getattr(getattr(client, "_api_client", None), "_credentials", None)
        if credentials is not None and getattr(credentials, "token", None):
            headers["Authorization"] = f"Bearer {credentials.token}"

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


def _retry_after(exc: Any) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


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
