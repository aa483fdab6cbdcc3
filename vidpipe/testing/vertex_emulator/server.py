"""The emulator itself: a threaded HTTP server that speaks the REST subset of Vertex AI that
google-genai calls, records every request and injects faults.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from PIL import Image, UnidentifiedImageError

from vidpipe.catalog import Catalog
from vidpipe.catalog import builtin as builtin_catalog
from vidpipe.testing.vertex_emulator import rules
from vidpipe.testing.vertex_emulator.payloads import (
    _GCS_PATH,
    _MODEL_PATH,
    _OPERATION_PATH,
    _PALETTE,
    DEFAULT_RAI_REASON,
    EDIT_TINT,
    GOOGLE_STATUS,
    VIDEO_RESPONSE_TYPE,
    _b64,
    _b64decode,
    _cover,
    _HttpError,
    _input_images,
    _request_text,
    _seed,
    _tokens,
    default_storyboard,
    make_image,
    make_mp4,
    video_size_for,
)
from vidpipe.testing.vertex_emulator.storage import store_clip

# --------------------------------------------------------------------------------------
# Public data types


@dataclass
class RecordedRequest:
    """One request the emulator received (recorded before latency/faults are applied)."""

    method: str  # HTTP method, e.g. "POST"
    path: str  # URL path without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON body (None if empty)
    api_version: str | None = None  # "v1beta1", ...
    project: str | None = None  # from the path (None in express-key form)
    location: str | None = None
    publisher: str | None = None
    model: str | None = None  # e.g. "veo-3.1-fast-generate-001"
    rpc: str | None = None  # generateContent / predict / predictLongRunning / ...
    prompt: str = ""  # text the request is about (for polls: the submission prompt)
    operation_name: str | None = None  # for polls
    status: int | None = None  # HTTP status the emulator answered with
    json_error: bool = False  # the body was not valid JSON
    time: float = field(default_factory=time.time)

    @property
    def inline_images(self) -> list[bytes]:
        """Decoded input images: ``inlineData`` parts or Veo/Imagen ``bytesBase64Encoded``."""
        return [data for _, data in _input_images(self.body)]


@dataclass
class Fault:
    """A queued fault. ``remaining`` is None for unlimited; ``hits`` counts applications."""

    kind: str  # "http" | "invalid_storyboard_json" | "missing_image" | "rai_filtered" | ...
    rpcs: tuple[str, ...]  # rpc names, or ("*",)
    match: str | Callable[[RecordedRequest], bool] | None
    after: int
    remaining: int | None
    params: dict[str, Any]
    hits: int = 0

    def _matches(self, rec: RecordedRequest) -> bool:
        if "*" not in self.rpcs and rec.rpc not in self.rpcs:
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(rec))
        return self.match in rec.prompt

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass
class EmulatedOperation:
    """State of one Veo long-running operation."""

    name: str
    model: str
    prompt: str
    instances: list[dict[str, Any]]
    parameters: dict[str, Any]
    outcome: str = "video"  # "video" | "rai_filtered" | "error" | "never"
    outcome_params: dict[str, Any] = field(default_factory=dict)
    polls: int = 0  # poll requests received so far
    done: bool = False
    created: float = field(default_factory=time.time)


# --------------------------------------------------------------------------------------
# The emulator


class VertexEmulator:
    """Threaded local Vertex AI emulator. Use as a context manager or call start()/stop().

    Args:
        host, port: where to listen (port 0 = a free port).
        latency: seconds added to every request (attribute ``latency``, mutable).
        polls_until_done: number of not-done answers an operation gives before the done
            answer (0 → the first poll is done; default 1 → the second poll is done).
        storyboard_fn: ``(generateContent body) -> dict`` for JSON-mode answers.
        strict: reject what the real service rejects (see :mod:`.rules`: express-mode
            predict calls, retired models, wrong locations, parameters a model does not
            take, oversized inline images), with the catalog's model facts.
        catalog: the model catalog to read those facts from (default: vidpipe's own).
        require_auth: 401 unless an ``x-goog-api-key`` header / ``key`` query or an
            ``Authorization: Bearer`` header is present.
        api_key: if set, a presented API key must equal it (else 400 "API key not valid").
        project, location: used in operation names for express-key requests.
        adopt_unknown_operations: polls of an unknown (well-formed) operation name create
            it instead of answering 404 (for resuming against a restarted emulator).
        video_fps: frame rate of emulated clips (``parameters.fps`` overrides).
        storage_host: a Cloud Storage JSON API endpoint that clips for ``storageUri`` are
            uploaded to (default: kept here; see :mod:`.storage`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        polls_until_done: int = 1,
        storyboard_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        strict: bool = True,
        require_auth: bool = True,
        api_key: str | None = None,
        project: str = "emulator-project",
        location: str = "us-central1",
        adopt_unknown_operations: bool = False,
        video_fps: int = 24,
        catalog: Catalog | None = None,
        storage_host: str | None = None,
    ) -> None:
        self.catalog = catalog or builtin_catalog()
        self.host = host
        self.port = port
        self._config = {
            "latency": latency,
            "polls_until_done": polls_until_done,
            "storyboard_fn": storyboard_fn or default_storyboard,
            "strict": strict,
            "require_auth": require_auth,
            "api_key": api_key,
            "project": project,
            "location": location,
            "adopt_unknown_operations": adopt_unknown_operations,
            "video_fps": video_fps,
            "catalog": catalog or builtin_catalog(),
            "storage_host": storage_host,
        }
        self.latency = latency
        self.polls_until_done = polls_until_done
        self.storyboard_fn: Callable[[dict[str, Any]], dict[str, Any]] = (
            storyboard_fn or default_storyboard
        )
        self.strict = strict
        self.require_auth = require_auth
        self.api_key = api_key
        self.project = project
        self.location = location
        self.adopt_unknown_operations = adopt_unknown_operations
        self.video_fps = video_fps
        self.storage_host = storage_host

        self.requests: list[RecordedRequest] = []
        self.operations: dict[str, EmulatedOperation] = {}
        self.faults: list[Fault] = []
        self.gcs_objects: dict[str, bytes] = {}  # "gs://bucket/object" -> bytes
        self.video_cache: dict[tuple[Any, ...], bytes] = {}
        self.videos_rendered = 0  # cache misses (MP4 encodes)

        self._lock = threading.RLock()
        self._media_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for ``HttpOptions(base_url=...)``, e.g. ``http://127.0.0.1:40123``."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> VertexEmulator:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="vertex-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> VertexEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, *, config: bool = False) -> None:
        """Forget recorded requests, operations, faults and GCS objects (keeps the video
        cache). With ``config=True`` also restore the constructor's settings (latency,
        polls_until_done, storyboard_fn, strict, ...)."""
        with self._lock:
            if config:
                for name, value in self._config.items():
                    setattr(self, name, value)
            self.requests.clear()
            self.operations.clear()
            self.faults.clear()
            self.gcs_objects.clear()

    # ---- convenience -----------------------------------------------------------------

    def client(self, mode: str = "express", **http_options: Any) -> Any:
        """A ``genai.Client`` aimed at this emulator that needs no real credentials.

        ``mode="express"``: ``api_key="test-key"`` alone (generateContent only, as on
        the service); ``mode="key"``: the key with the emulator's project and location
        (google-genai ≥ 2.15); ``mode="project"``: project+location with a static-token
        ``google.oauth2.credentials.Credentials``. Extra keyword arguments go to
        ``types.HttpOptions`` (e.g. ``retry_options=...``).
        """
        from google import genai
        from google.genai import types

        opts = types.HttpOptions(base_url=self.url, **http_options)
        if mode == "express":
            return genai.Client(
                vertexai=True, api_key=self.api_key or "test-key", http_options=opts
            )
        if mode == "key":
            return genai.Client(
                vertexai=True,
                api_key=self.api_key or "test-key",
                project=self.project,
                location=self.location,
                http_options=opts,
            )
        if mode == "project":
            from google.oauth2.credentials import Credentials

            return genai.Client(
                vertexai=True,
                project=self.project,
                location=self.location,
                credentials=Credentials(token="emulator-token"),
                http_options=opts,
            )
        raise ValueError(f"unknown mode {mode!r}")

    def calls(self, rpc: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally only those of one rpc (e.g. ``"predictLongRunning"``)."""
        with self._lock:
            return [r for r in self.requests if rpc is None or r.rpc == rpc]

    def gcs_url(self, gcs_uri: str) -> str:
        """HTTP URL serving an emulated ``gs://bucket/object`` (JSON-API media download)."""
        bucket, _, obj = gcs_uri.removeprefix("gs://").partition("/")
        return f"{self.url}/storage/v1/b/{bucket}/o/{quote(obj, safe='')}?alt=media"

    # ---- faults ----------------------------------------------------------------------

    def _add_fault(
        self,
        kind: str,
        rpcs: str | Iterable[str],
        count: int | None,
        match: str | Callable[[RecordedRequest], bool] | None,
        after: int,
        **params: Any,
    ) -> Fault:
        rpc_tuple = (rpcs,) if isinstance(rpcs, str) else tuple(rpcs)
        fault = Fault(kind, rpc_tuple, match, after, count, params)
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_next(
        self,
        rpc: str | Iterable[str] = "*",
        status: int = 429,
        *,
        retry_after: float | None = None,
        retry_delay: str | None = None,
        count: int | None = 1,
        match: str | Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> Fault:
        """Answer the next ``count`` matching ``rpc`` requests with HTTP ``status``.

        ``rpc``: "generateContent", "predict", "predictLongRunning", "fetchPredictOperation",
        "getOperation", a tuple of those, or "*". ``retry_after`` adds a ``Retry-After``
        header (seconds); ``retry_delay`` (a Duration such as ``"3s"``) puts a
        ``google.rpc.RetryInfo`` in the body's ``error.details``, as Vertex does on 429.
        ``details`` adds other entries (a ``QuotaFailure``). The body is Google's error JSON.
        """
        extra = list(details or [])
        if retry_delay is not None:
            extra.append({"@type": rules.RETRY_INFO, "retryDelay": retry_delay})
        return self._add_fault(
            "http",
            rpc,
            count,
            match,
            after,
            status=status,
            retry_after=retry_after,
            message=message,
            headers=headers or {},
            details=extra,
        )

    def invalid_storyboard_json(
        self,
        count: int | None = 1,
        *,
        mode: str = "not_json",
        match: str | Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
    ) -> Fault:
        """Next JSON-mode answers are broken.

        ``mode``: "not_json" (truncated JSON text), "schema" (valid JSON, wrong shape),
        "wrong_count" (valid storyboard with the wrong number of scenes), "markdown"
        (valid storyboard wrapped in a ```json fence).
        """
        if mode not in ("not_json", "schema", "wrong_count", "markdown"):
            raise ValueError(f"unknown mode {mode!r}")
        return self._add_fault(
            "invalid_storyboard_json", "generateContent", count, match, after, mode=mode
        )

    def missing_image(
        self,
        count: int | None = 1,
        *,
        mode: str = "IMAGE_SAFETY",
        match: str | Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
        rpc: str | Iterable[str] = ("generateContent", "predict"),
    ) -> Fault:
        """Next image answers hold no image (HTTP 200; the SDK does not raise).

        Gemini (``generateContent``): "IMAGE_SAFETY" / "NO_IMAGE" (or any finishReason):
        one candidate with that ``finishReason`` and no content; "blocked":
        ``promptFeedback.blockReason = "PROHIBITED_CONTENT"`` and no candidates;
        "text_only": a candidate with only a text part. Imagen (``predict``): predictions
        with only ``raiFilteredReason`` (if the request set ``includeRaiReason``), else ``{}``.
        """
        return self._add_fault("missing_image", rpc, count, match, after, mode=mode)

    def rai_filtered(
        self,
        count: int | None = 1,
        *,
        match: str | Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
        reasons: list[str] | None = None,
    ) -> Fault:
        """Next matching Veo submissions finish with ``raiMediaFilteredCount`` > 0, no videos."""
        return self._add_fault(
            "rai_filtered",
            "predictLongRunning",
            count,
            match,
            after,
            reasons=reasons or [DEFAULT_RAI_REASON],
        )

    def operation_error(
        self,
        count: int | None = 1,
        *,
        match: str | Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
        code: int = 13,
        message: str = "Video generation failed (emulated internal error).",
    ) -> Fault:
        """Next matching Veo operations finish ``done: true`` with ``error: {code, message}``.

        ``code`` is a google.rpc code (13 INTERNAL, 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED).
        """
        return self._add_fault(
            "operation_error", "predictLongRunning", count, match, after, code=code, message=message
        )

    def never_finish(
        self,
        count: int | None = 1,
        *,
        match: str | Callable[[RecordedRequest], bool] | None = None,
        after: int = 0,
    ) -> Fault:
        """Next matching Veo operations are never done."""
        return self._add_fault("never_finish", "predictLongRunning", count, match, after)

    def release_operations(self) -> int:
        """Let every never-finishing operation finish: its next poll answers done (a clip).

        For an operation that outlived a client's poll timeout and finished later, as Veo
        operations do. Returns how many were released.
        """
        with self._lock:
            stuck = [op for op in self.operations.values() if op.outcome == "never"]
            for op in stuck:
                op.outcome, op.polls = "video", self.polls_until_done
            return len(stuck)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, kinds: Iterable[str], rec: RecordedRequest) -> Fault | None:
        kinds = tuple(kinds)
        with self._lock:
            chosen = None
            for fault in self.faults:
                if fault.kind not in kinds or fault.exhausted or not fault._matches(rec):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if chosen is None:
                    chosen = fault
            if chosen is not None:
                chosen.hits += 1
                if chosen.remaining is not None:
                    chosen.remaining -= 1
                if chosen.exhausted:
                    self.faults.remove(chosen)
            return chosen

    # ---- request handling ------------------------------------------------------------

    def _handle(self, rec: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        """Returns (status, headers, body) for a recorded request."""
        try:
            if self.latency:
                time.sleep(self.latency)
            gcs = _GCS_PATH.match(rec.path)
            if rec.method == "GET" and gcs:
                return self._gcs_download(gcs.group("bucket"), unquote(gcs.group("object")))
            if rec.rpc is None:
                raise _HttpError(404, f"The requested URL {rec.path} was not found on this server.")
            self._check_auth(rec)
            if self.strict:
                rules.check_request(self.catalog, rec)
            fault = self._take_fault(("http",), rec)
            if fault is not None:
                p = fault.params
                headers = dict(p["headers"])
                if p["retry_after"] is not None:
                    headers["Retry-After"] = f"{p['retry_after']:g}"
                default = {
                    429: "Resource exhausted. Please try again later (emulated quota).",
                    503: "The service is currently unavailable (emulated).",
                }.get(p["status"], "Emulated failure.")
                raise _HttpError(p["status"], p["message"] or default, headers, p["details"])
            handler = {
                "generateContent": self._generate_content,
                "predict": self._predict,
                "predictLongRunning": self._predict_long_running,
                "fetchPredictOperation": self._poll,
                "getOperation": self._poll,
            }.get(rec.rpc)
            if handler is None:
                raise _HttpError(404, f"Method {rec.rpc} is not emulated.")
            return 200, {}, json.dumps(handler(rec)).encode("utf-8")
        except _HttpError as e:
            return self._error_response(e)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:  # PIL decode errors
            return self._error_response(_HttpError(400, f"Unable to process the input image: {e}"))
        except Exception as e:  # a bug in the emulator: answer 500 rather than hang up
            return self._error_response(_HttpError(500, f"Emulator error: {e!r}"))

    @staticmethod
    def _error_response(e: _HttpError) -> tuple[int, dict[str, str], bytes]:
        status = GOOGLE_STATUS.get(e.code, "UNKNOWN")
        err: dict[str, Any] = {"error": {"code": e.code, "message": e.message, "status": status}}
        if e.details:
            err["error"]["details"] = e.details
        return e.code, e.headers, json.dumps(err).encode("utf-8")

    def _check_auth(self, rec: RecordedRequest) -> None:
        key = rec.headers.get("x-goog-api-key") or rec.query.get("key")
        bearer = rec.headers.get("authorization", "").startswith("Bearer ")
        if self.require_auth and not key and not bearer:
            raise _HttpError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
            )
        if key and self.api_key is not None and key != self.api_key:
            raise _HttpError(400, "API key not valid. Please pass a valid API key.")

    # generateContent ------------------------------------------------------------------

    def _generate_content(self, rec: RecordedRequest) -> dict[str, Any]:
        body = rec.body if isinstance(rec.body, dict) else {}
        if not body.get("contents"):
            raise _HttpError(
                400, "Unable to submit request because it has an empty contents field."
            )
        cfg = body.get("generationConfig") or {}
        modalities = [str(m).upper() for m in cfg.get("responseModalities") or []]
        prompt_tokens = _tokens(_request_text(body, include_system=True))
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens}
        base = {
            "modelVersion": rec.model,
            "responseId": uuid.uuid4().hex[:20],
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        }
        if "IMAGE" in modalities or "image" in (rec.model or ""):
            return {**base, **self._image_answer(rec, body, cfg, usage)}

        if cfg.get("responseMimeType") == "application/json":
            text = self._storyboard_text(rec, body)
        else:
            text = f"Emulated answer from {rec.model} to: {_request_text(body)[:200]}"
        out_tokens = _tokens(text)
        usage.update(
            candidatesTokenCount=out_tokens,
            thoughtsTokenCount=16,
            totalTokenCount=prompt_tokens + out_tokens + 16,
        )
        candidate = {
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": "STOP",
            "avgLogprobs": -0.1,
        }
        return {**base, "candidates": [candidate], "usageMetadata": usage}

    def _storyboard_text(self, rec: RecordedRequest, body: dict[str, Any]) -> str:
        storyboard = self.storyboard_fn(body)
        fault = self._take_fault(("invalid_storyboard_json",), rec)
        if fault is None:
            return json.dumps(storyboard, ensure_ascii=False)
        mode = fault.params["mode"]
        if mode == "not_json":
            text = json.dumps(storyboard, ensure_ascii=False)
            return text[: max(1, len(text) // 2)]
        if mode == "schema":
            return json.dumps(
                {
                    "style_guide": {"visual_style": "noir"},
                    "scenes": [{"scene_index": "zero", "scene_description": 42}],
                }
            )
        if mode == "wrong_count":
            scenes = storyboard.get("scenes") or []
            if len(scenes) > 1:
                scenes = scenes[:-1]
            else:
                scenes = [*scenes, {**(scenes[0] if scenes else {}), "scene_index": len(scenes)}]
            return json.dumps({**storyboard, "scenes": scenes}, ensure_ascii=False)
        return "```json\n" + json.dumps(storyboard, ensure_ascii=False, indent=2) + "\n```"

    def _image_answer(
        self, rec: RecordedRequest, body: dict[str, Any], cfg: dict[str, Any], usage: dict[str, Any]
    ) -> dict[str, Any]:
        fault = self._take_fault(("missing_image",), rec)
        if fault is not None:
            mode = fault.params["mode"]
            usage.update(totalTokenCount=usage["promptTokenCount"])
            if mode == "blocked":
                return {
                    "promptFeedback": {
                        "blockReason": "PROHIBITED_CONTENT",
                        "blockReasonMessage": "The prompt was blocked (emulated).",
                    },
                    "usageMetadata": usage,
                }
            if mode == "text_only":
                part = {"text": "I can't create that image, but here is a description instead."}
                return {
                    "candidates": [
                        {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}
                    ],
                    "usageMetadata": usage,
                }
            return {
                "candidates": [
                    {
                        "finishReason": mode,
                        "finishMessage": f"No image was generated ({mode}, emulated).",
                    }
                ],
                "usageMetadata": usage,
            }
        image_config = cfg.get("imageConfig") or {}
        aspect = image_config.get("aspectRatio")
        images = _input_images(body)
        info = self.catalog.get(rec.model or "")
        if self.strict:
            rules.check_image(info, body, [data for _, data in images])
        size = rules.output_size(aspect, image_config.get("imageSize")) if info else None
        prompt = _request_text(body)
        png = make_image(prompt, aspect, images[-1][1] if images else None, size=size)
        parts = [
            {"text": f"**Composing the frame**\n\nPlanning: {prompt[:120]}", "thought": True},
            {
                "inlineData": {"mimeType": "image/png", "data": _b64(png)},
                "thoughtSignature": _b64(hashlib.sha256(png).digest()),
            },
        ]
        usage.update(
            candidatesTokenCount=1290,
            thoughtsTokenCount=120,
            totalTokenCount=usage["promptTokenCount"] + 1290 + 120,
            candidatesTokensDetails=[{"modality": "IMAGE", "tokenCount": 1290}],
        )
        return {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
            "usageMetadata": usage,
        }

    # predict (Imagen) -------------------------------------------------------------------

    def _predict(self, rec: RecordedRequest) -> dict[str, Any]:
        body = rec.body if isinstance(rec.body, dict) else {}
        instances = body.get("instances") or []
        if not instances or not isinstance(instances[0], dict):
            raise _HttpError(400, "instances must not be empty.")
        params = body.get("parameters") or {}
        fault = self._take_fault(("missing_image",), rec)
        n = int(params.get("sampleCount") or 1)
        if fault is not None:
            if params.get("includeRaiReason"):
                reason = "Image filtered by Responsible AI (emulated). Support codes: 39322892"
                return {"predictions": [{"raiFilteredReason": reason} for _ in range(n)]}
            return {}
        prompt = str(instances[0].get("prompt") or "")
        images = _input_images(body)
        png = make_image(prompt, params.get("aspectRatio"), images[0][1] if images else None)
        return {
            "predictions": [
                {"bytesBase64Encoded": _b64(png), "mimeType": "image/png"} for _ in range(n)
            ]
        }

    # predictLongRunning / polls (Veo) --------------------------------------------------

    def _validate_veo(self, model: str, inst: dict[str, Any], params: dict[str, Any]) -> None:
        if not inst.get("prompt") and not inst.get("image") and not inst.get("referenceImages"):
            raise _HttpError(400, "A prompt or an image is required.")
        if self.strict:
            rules.check_veo(self.catalog.get(model), inst, params)

    def _predict_long_running(self, rec: RecordedRequest) -> dict[str, Any]:
        body = rec.body if isinstance(rec.body, dict) else {}
        instances = body.get("instances") or []
        if not instances or not isinstance(instances[0], dict):
            raise _HttpError(400, "instances must not be empty.")
        params = body.get("parameters") or {}
        model = rec.model or "unknown"
        self._validate_veo(model, instances[0], params)
        for _, data in _input_images(body):
            Image.open(io.BytesIO(data)).verify()  # a bad image is a 400 now, not at poll time
        project = rec.project or self.project
        location = rec.location or self.location
        name = (
            f"projects/{project}/locations/{location}/publishers/{rec.publisher or 'google'}"
            f"/models/{model}/operations/{uuid.uuid4()}"
        )
        op = EmulatedOperation(name, model, rec.prompt, instances, params)
        fault = self._take_fault(("rai_filtered", "operation_error", "never_finish"), rec)
        if fault is not None:
            op.outcome = {
                "rai_filtered": "rai_filtered",
                "operation_error": "error",
                "never_finish": "never",
            }[fault.kind]
            op.outcome_params = dict(fault.params)
        with self._lock:
            self.operations[name] = op
        return {"name": name}

    def _poll(self, rec: RecordedRequest) -> dict[str, Any]:
        name = rec.operation_name
        if not name or "/operations/" not in name:
            raise _HttpError(400, "operationName must be an operation resource name.")
        with self._lock:
            op = self.operations.get(name)
            if op is None:
                m = re.search(r"/models/([^/]+)/operations/", name)
                if not self.adopt_unknown_operations or not m:
                    raise _HttpError(404, f"Operation {name} not found.")
                op = EmulatedOperation(name, m.group(1), "", [{}], {})
                self.operations[name] = op
            if rec.model and rec.model != op.model:
                raise _HttpError(400, f"Operation {name} does not belong to model {rec.model}.")
            op.polls += 1
            pending = op.outcome == "never" or op.polls <= self.polls_until_done
            if not pending:
                op.done = True
        if pending:
            return {"name": name}
        if op.outcome == "error":
            error = {"code": op.outcome_params["code"], "message": op.outcome_params["message"]}
            return {"name": name, "done": True, "error": error}
        response: dict[str, Any] = {"@type": VIDEO_RESPONSE_TYPE}
        if op.outcome == "rai_filtered":
            reasons = op.outcome_params["reasons"]
            response.update(raiMediaFilteredCount=len(reasons), raiMediaFilteredReasons=reasons)
            return {"name": name, "done": True, "response": response}
        mp4 = self._video_for(op)
        n = int(op.parameters.get("sampleCount") or 1)
        storage = op.parameters.get("storageUri")
        videos = []
        for i in range(n):
            if storage:
                uri = f"{storage.rstrip('/')}/{name.rsplit('/', 1)[-1]}/sample_{i}.mp4"
                store_clip(self, uri, mp4)
                videos.append({"gcsUri": uri, "mimeType": "video/mp4"})
            else:
                videos.append({"bytesBase64Encoded": _b64(mp4), "mimeType": "video/mp4"})
        response.update(raiMediaFilteredCount=0, videos=videos)
        return {"name": name, "done": True, "response": response}

    def _video_for(self, op: EmulatedOperation) -> bytes:
        inst = op.instances[0] if op.instances else {}
        params = op.parameters
        duration = float(params.get("durationSeconds") or 8)
        size = video_size_for(params.get("aspectRatio") or "16:9")
        fps = int(params.get("fps") or self.video_fps)
        info = self.catalog.get(op.model)
        # Veo answers generateAudio: false, and a model without sound, with video only.
        audio = params.get("generateAudio") is not False and (info is None or info.audio)
        silent = not audio
        raw = {
            k: _b64decode(inst[k]["bytesBase64Encoded"])
            for k in ("image", "lastFrame")
            if isinstance(inst.get(k), dict) and inst[k].get("bytesBase64Encoded")
        }
        digests = tuple(
            hashlib.sha1(raw[k]).hexdigest() if k in raw else None for k in ("image", "lastFrame")
        )
        palette = _seed(op.prompt) % len(_PALETTE) if not raw else None
        key = (duration, size, fps, silent, digests, palette)
        with self._media_lock:
            cached = self.video_cache.get(key)
            if cached is not None:
                return cached
            first: Image.Image | None = None
            last: Image.Image | None = None
            if "image" in raw:
                first = Image.open(io.BytesIO(raw["image"]))
            if "lastFrame" in raw:
                last = Image.open(io.BytesIO(raw["lastFrame"]))
            if first is None and last is None:
                top, bottom = _PALETTE[palette or 0]
                first, last = Image.new("RGB", size, top), Image.new("RGB", size, bottom)
            elif last is None:
                assert first is not None
                last = Image.blend(_cover(first, size), Image.new("RGB", size, EDIT_TINT), 0.5)
            mp4 = make_mp4(duration, size, first=first, last=last, fps=fps, audio=audio)
            self.video_cache[key] = mp4
            self.videos_rendered += 1
            return mp4

    def _gcs_download(self, bucket: str, obj: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            data = self.gcs_objects.get(f"gs://{bucket}/{obj}")
        if data is None:
            raise _HttpError(404, f"No such object: {bucket}/{obj}")
        return 200, {"Content-Type": "video/mp4"}, data

    # called by the handler ---------------------------------------------------------------

    def _record(
        self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
    ) -> RecordedRequest:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body: Any = None
        bad_json = False
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body, bad_json = raw_body.decode("utf-8", "replace"), True
        rec = RecordedRequest(
            method=method, path=path, query=query, headers=headers, body=body, json_error=bad_json
        )
        m = _MODEL_PATH.match(path)
        op_match = _OPERATION_PATH.match(path)
        if m and method == "POST":
            rec.api_version, rec.project, rec.location = m["ver"], m["project"], m["location"]
            rec.publisher, rec.model, rec.rpc = m["publisher"], m["model"], m["rpc"]
        elif op_match and method == "GET":
            rec.api_version, rec.model, rec.rpc = op_match["ver"], op_match["model"], "getOperation"
            rec.operation_name = op_match["name"]
        if rec.rpc == "fetchPredictOperation" and isinstance(body, dict):
            rec.operation_name = body.get("operationName")
        if rec.operation_name:
            with self._lock:
                op = self.operations.get(rec.operation_name)
            rec.prompt = op.prompt if op else ""
        else:
            rec.prompt = _request_text(body)
        with self._lock:
            self.requests.append(rec)
        return rec


class _Handler(BaseHTTPRequestHandler):
    emulator: VertexEmulator
    protocol_version = "HTTP/1.1"
    server_version = "VertexEmulator/1.0"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        emu = self.emulator
        rec = emu._record(self.command, self.path, headers, raw_body)
        if rec.json_error:
            status, extra = 400, dict[str, str]()
            payload = json.dumps(
                {
                    "error": {
                        "code": 400,
                        "message": "Invalid JSON payload received.",
                        "status": "INVALID_ARGUMENT",
                    }
                }
            ).encode()
        else:
            status, extra, payload = emu._handle(rec)
        rec.status = status
        self.send_response(status)
        headers_out = {"Content-Type": "application/json; charset=UTF-8", **extra}
        for k, v in headers_out.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
