"""Where the emulated Veo leaves a clip when the request names ``parameters.storageUri``.

Vertex writes each generated video into the caller's Cloud Storage bucket under
``parameters.storageUri`` ("Optional: A Cloud Storage bucket URI to store the output
video, in the format gs://BUCKET_NAME/SUBDIRECTORY") and answers with
``response.videos[].gcsUri`` instead of ``bytesBase64Encoded``. Sources: the Veo on
Vertex AI API reference (cloud.google.com/vertex-ai/generative-ai/docs/model-reference/
veo-video-generation, read 2026-11-29) and google-genai 3.6.1's ``models.py``, which maps
``GenerateVideosConfig.output_gcs_uri`` to ``parameters.storageUri`` and ``gcsUri`` to
``Video.uri``.

By default the emulator keeps such objects itself (served at
``/storage/v1/b/{bucket}/o/{object}?alt=media``, see ``VertexEmulator.gcs_url``). With
``storage_host`` (the endpoint of a Cloud Storage JSON API, such as gcp-storage-emulator)
it uploads them there, as Vertex writes to Cloud Storage; a bucket that does not exist
there fails the upload, as a Veo operation fails when it cannot write its output.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from vidpipe.testing.vertex_emulator.payloads import _HttpError


def store_clip(emulator: Any, uri: str, data: bytes) -> None:
    """Keep a generated clip at ``gs://bucket/object``: in the emulator, or uploaded to
    ``emulator.storage_host`` (a simple media upload of the JSON API)."""
    host = getattr(emulator, "storage_host", None)
    if not host:
        with emulator._lock:
            emulator.gcs_objects[uri] = data
        return
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    url = (
        f"{host.rstrip('/')}/upload/storage/v1/b/{quote(bucket, safe='')}/o"
        f"?uploadType=media&name={quote(name, safe='')}"
    )
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "video/mp4"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise _HttpError(500, f"cannot write the output video to {uri}: {exc}") from None
