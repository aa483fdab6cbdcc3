"""Local emulator of the Vertex AI REST subset that ``google-genai`` calls for vidpipe.

It serves, on ``127.0.0.1`` and a free port, from a background thread:

* ``POST /{ver}/[projects/{p}/locations/{l}/]publishers/{pub}/models/{model}:generateContent``
  - JSON mode (``generationConfig.responseMimeType == "application/json"``): a storyboard
    built by ``emu.storyboard_fn(request_body) -> dict``.
  - image mode (``generationConfig.responseModalities`` contains ``IMAGE``, or the model
    name contains ``image``): a ``thought`` text part, then an ``inlineData`` PNG whose
    size follows ``generationConfig.imageConfig.aspectRatio``. An inline input image is
    tinted (``EDIT_TINT``) so the output is visibly derived from it.
  - otherwise: a plain text answer.
* ``...:predict`` (Imagen): ``{"predictions": [{"bytesBase64Encoded", "mimeType"}]}``.
* ``...:predictLongRunning`` (Veo): ``{"name": "projects/P/locations/L/publishers/google/
  models/M/operations/<uuid>"}``.
* ``...:fetchPredictOperation`` with ``{"operationName": name}`` (what
  ``client.operations.get`` sends), and ``GET /{ver}/{operation name}``: the first
  ``polls_until_done`` polls of an operation answer ``{"name": name}`` (``done`` absent, as
  Vertex does); the next poll answers ``done: true`` with ``response.videos[]`` holding a
  real H.264 + AAC MP4 (a cross-dissolve from ``instances[0].image`` to
  ``instances[0].lastFrame``). With ``polls_until_done = 0`` the first poll is done.
  If ``parameters.storageUri`` is set the video is returned as ``gcsUri`` (no bytes),
  and served at ``GET /storage/v1/b/{bucket}/o/{object}?alt=media`` (see ``gcs_url``).

Everything else gets a 404 in Google's error shape:
``{"error": {"code": 404, "message": ..., "status": "NOT_FOUND"}}``.

Faults (thread-safe; each returns a :class:`Fault` handle). ``match`` is a substring of
the request's prompt (for polls: of the prompt the operation was submitted with) or a
callable ``(RecordedRequest) -> bool``; ``after=N`` lets the first N matching requests
through; ``count=None`` means "forever"::

    emu.fail_next("predictLongRunning", status=429, retry_after=2)   # HTTP errors
    emu.fail_next("*", status=503, count=2)
    emu.invalid_storyboard_json(mode="not_json" | "schema" | "wrong_count" | "markdown")
    emu.missing_image(mode="IMAGE_SAFETY" | "NO_IMAGE" | "blocked" | "text_only")
    emu.rai_filtered(match="scene 1")          # Veo op finishes filtered, no videos
    emu.operation_error(code=13, message=...)  # Veo op finishes with error
    emu.never_finish(after=1)                  # the 2nd Veo submission never finishes

Operation faults are decided when the operation is submitted (``predictLongRunning``).

Usage::

    with VertexEmulator() as emu:
        client = emu.client()  # or genai.Client(vertexai=True, api_key="test-key",
                               #     http_options=types.HttpOptions(base_url=emu.url))
        ...
        emu.requests  # [RecordedRequest(method, path, model, rpc, body, headers, ...)]

Standalone (benchmarks): ``python tests/vertex_emulator.py --port 0 --latency 0.3
--polls 4`` prints the URL as its first stdout line and serves until killed.
"""

from vidpipe.testing.vertex_emulator.payloads import (
    EDIT_TINT,
    EDIT_TINT_ALPHA,
    default_storyboard,
    idea_storyboard,
    image_size_for,
    make_image,
    make_mp4,
    scene_count_from_text,
    video_size_for,
)
from vidpipe.testing.vertex_emulator.server import (
    EmulatedOperation,
    Fault,
    RecordedRequest,
    VertexEmulator,
)
from vidpipe.testing.vertex_emulator.standalone import main

__all__ = [
    "EDIT_TINT",
    "EDIT_TINT_ALPHA",
    "EmulatedOperation",
    "Fault",
    "RecordedRequest",
    "VertexEmulator",
    "default_storyboard",
    "idea_storyboard",
    "image_size_for",
    "main",
    "make_image",
    "make_mp4",
    "scene_count_from_text",
    "video_size_for",
]
