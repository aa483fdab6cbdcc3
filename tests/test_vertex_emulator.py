"""The Vertex emulator, exercised through the real google-genai SDK (nothing mocked).

Guards: no test may reach a non-loopback address, and nothing may consult Application
Default Credentials (``google.auth.default`` is replaced by a tripwire).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from typing import Any

import av
import google.auth
import jsonschema
import pytest
from google import genai
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import InvalidOperation
from google.genai import errors, types
from google.oauth2.credentials import Credentials
from PIL import Image

from vidpipe.testing.vertex_emulator import (
    EDIT_TINT,
    EDIT_TINT_ALPHA,
    VertexEmulator,
    default_storyboard,
    scene_count_from_text,
)

EMULATOR_MODULE = "vidpipe.testing.vertex_emulator"
VEO = "veo-3.1-fast-generate-001"
# Ids the model catalog does not know: served at any location, without model checks.
TEXT_MODEL = "gemini-emulated-flash"
IMAGE_MODEL = "gemini-emulated-image"
IMAGEN = "imagen-emulated"
#: Where the shared client sends requests (an API key with a project, google-genai ≥ 2.15).
PREFIX = "/v1beta1/projects/emulator-project/locations/us-central1"
RED, BLUE = (230, 20, 20), (20, 20, 230)

STORYBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["style_guide", "scenes"],
    "properties": {
        "style_guide": {
            "type": "object",
            "required": ["visual_style", "color_palette", "camera_style", "lighting", "mood"],
            "properties": {
                "visual_style": {"type": "string"},
                "color_palette": {"type": "array", "items": {"type": "string"}},
                "camera_style": {"type": "string"},
                "lighting": {"type": "string"},
                "mood": {"type": "string"},
            },
        },
        "scenes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "scene_index",
                    "scene_description",
                    "start_frame_prompt",
                    "end_frame_prompt",
                    "video_motion_prompt",
                    "transition_notes",
                ],
                "properties": {
                    "scene_index": {"type": "integer", "minimum": 0},
                    "scene_description": {"type": "string"},
                    "start_frame_prompt": {"type": "string"},
                    "end_frame_prompt": {"type": "string"},
                    "video_motion_prompt": {"type": "string"},
                    "transition_notes": {"type": "string"},
                },
            },
        },
    },
}


# --------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module", autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """No credentials from the environment, no ADC, no network beyond loopback."""
    tmp = tmp_path_factory.mktemp("hermetic")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("GOOGLE_", "GEMINI_")) or key.lower().endswith("_proxy"):
                mp.delenv(key, raising=False)
        mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp / "no-such-adc.json"))
        mp.setenv("CLOUDSDK_CONFIG", str(tmp / "gcloud"))
        mp.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "false")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")

        def no_adc(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("google.auth.default() must not be called in tests")

        mp.setattr(google.auth, "default", no_adc)

        real_connect = socket.socket.connect

        def loopback_only(self: socket.socket, address: Any) -> Any:
            if self.family in (socket.AF_INET, socket.AF_INET6):
                host = address[0]
                if host not in ("127.0.0.1", "::1", "localhost"):
                    raise AssertionError(f"test tried to reach {address!r}")
            return real_connect(self, address)

        mp.setattr(socket.socket, "connect", loopback_only)
        yield


@pytest.fixture(scope="module")
def _emulator(_hermetic: None) -> Any:
    with VertexEmulator() as emulator:
        yield emulator


@pytest.fixture
def emu(_emulator: VertexEmulator) -> Any:
    """The module's emulator with fresh state and default settings for each test."""
    _emulator.reset(config=True)
    yield _emulator
    _emulator.reset(config=True)


@pytest.fixture(scope="module")
def _client(_emulator: VertexEmulator) -> genai.Client:
    # Creating a Client costs ~0.1 s (SSL contexts), so tests share one per module.
    return _emulator.client("key")


@pytest.fixture
def client(_client: genai.Client, emu: VertexEmulator) -> genai.Client:
    return _client


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


def probe_mp4(data: bytes) -> dict[str, Any]:
    with av.open(io.BytesIO(data)) as container:
        v = container.streams.video[0]
        a = container.streams.audio[0] if container.streams.audio else None
        frames = [f.to_image() for f in container.decode(video=0)]
        return {
            "vcodec": v.codec_context.name,
            "acodec": a.codec_context.name if a is not None else None,
            "size": (v.width, v.height),
            "duration": container.duration / 1e6,
            "frames": len(frames),
            "rate": float(v.average_rate),
            "first": frames[0],
            "last": frames[-1],
        }


def veo_submit(
    client: genai.Client, prompt: str, *, duration: int = 4, aspect: str = "9:16", **cfg: Any
) -> types.GenerateVideosOperation:
    return client.models.generate_videos(
        model=VEO,
        source=types.GenerateVideosSource(
            prompt=prompt, image=types.Image(image_bytes=png_bytes(RED), mime_type="image/png")
        ),
        config=types.GenerateVideosConfig(
            last_frame=types.Image(image_bytes=png_bytes(BLUE), mime_type="image/png"),
            duration_seconds=duration,
            aspect_ratio=aspect,
            **cfg,
        ),
    )


def poll(
    client: genai.Client, op: types.GenerateVideosOperation, limit: int = 10
) -> types.GenerateVideosOperation:
    for _ in range(limit):
        op = client.operations.get(op)
        if op.done:
            return op
    return op


def storyboard_request(client: genai.Client, prompt: str) -> types.GenerateContentResponse:
    return client.models.generate_content(
        model=TEXT_MODEL,
        contents=prompt,
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=STORYBOARD_SCHEMA
        ),
    )


def image_request(
    client: genai.Client, prompt: str, *, aspect: str = "9:16", image: bytes | None = None
) -> types.GenerateContentResponse:
    contents: list[Any] = [prompt]
    if image is not None:
        contents.append(types.Part.from_bytes(data=image, mime_type="image/png"))
    return client.models.generate_content(
        model=IMAGE_MODEL,
        contents=contents,
        config=types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio=aspect)
        ),
    )


# --------------------------------------------------------------------------------------
# Clients, paths, credentials


def test_express_key_path_and_headers(emu: VertexEmulator) -> None:
    client = emu.client("express")
    r = client.models.generate_content(model=TEXT_MODEL, contents="hello")
    assert "hello" in (r.text or "")
    (req,) = emu.requests
    assert req.method == "POST"
    assert req.path == "/v1beta1/publishers/google/models/gemini-emulated-flash:generateContent"
    assert (req.api_version, req.project, req.location) == ("v1beta1", None, None)
    assert (req.model, req.rpc) == (TEXT_MODEL, "generateContent")
    assert req.headers["x-goog-api-key"] == "test-key"
    assert "authorization" not in req.headers
    assert req.body == {"contents": [{"parts": [{"text": "hello"}], "role": "user"}]}


def test_project_mode_with_static_token_credentials(emu: VertexEmulator) -> None:
    client = genai.Client(
        vertexai=True,
        project="my-proj",
        location="us-central1",
        credentials=Credentials(token="fake-token"),  # a token and no expiry: never refreshed
        http_options=types.HttpOptions(base_url=emu.url),
    )
    client.models.generate_content(model=TEXT_MODEL, contents="hi")
    req = emu.requests[-1]
    assert req.path == (
        "/v1beta1/projects/my-proj/locations/us-central1/publishers/google/models/"
        "gemini-emulated-flash:generateContent"
    )
    assert (req.project, req.location) == ("my-proj", "us-central1")
    assert req.headers["authorization"] == "Bearer fake-token"
    assert "x-goog-api-key" not in req.headers

    # Operation names and polling work the same way in project mode.
    op = veo_submit(client, "project mode clip")
    assert op.name is not None
    assert op.name.startswith("projects/my-proj/locations/us-central1/publishers/google/models/")
    assert poll(client, op).done


def test_anonymous_credentials_need_a_token(emu: VertexEmulator) -> None:
    def make(creds: Any) -> genai.Client:
        return genai.Client(
            vertexai=True,
            project="p",
            location="us-central1",
            credentials=creds,
            http_options=types.HttpOptions(base_url=emu.url),
        )

    # AnonymousCredentials has no token, so the SDK calls refresh(), which raises.
    with pytest.raises(InvalidOperation):
        make(AnonymousCredentials()).models.generate_content(model=TEXT_MODEL, contents="x")
    assert emu.requests == []

    anon = AnonymousCredentials()
    anon.token = "anything"
    anon_client = make(anon)  # keep a reference: Client.__del__ closes its HTTP client
    anon_client.models.generate_content(model=TEXT_MODEL, contents="x")
    assert emu.requests[-1].headers["authorization"] == "Bearer anything"


def test_unreferenced_client_is_closed_before_the_request(emu: VertexEmulator) -> None:
    # genai.Client.__del__ closes the httpx2 client, so a chained call on a temporary
    # client fails in CPython. Always keep the Client object alive.
    with pytest.raises(RuntimeError, match="client has been closed"):
        emu.client().models.generate_content(model=TEXT_MODEL, contents="x")


def test_emulator_client_helper_both_modes(emu: VertexEmulator) -> None:
    express_client, project_client = emu.client(), emu.client("project")
    express_client.models.generate_content(model=TEXT_MODEL, contents="a")
    project_client.models.generate_content(model=TEXT_MODEL, contents="b")
    express, project = emu.requests
    assert express.project is None and express.headers["x-goog-api-key"] == "test-key"
    assert project.project == "emulator-project"
    assert project.headers["authorization"] == "Bearer emulator-token"


def test_base_url_without_key_or_project_posts_to_bare_url(emu: VertexEmulator) -> None:
    client = genai.Client(vertexai=True, http_options=types.HttpOptions(base_url=emu.url))
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=TEXT_MODEL, contents="x")
    assert emu.requests[-1].path == "/"
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")


def test_api_version_override_is_accepted(emu: VertexEmulator) -> None:
    client = emu.client(api_version="v1")
    client.models.generate_content(model=TEXT_MODEL, contents="x")
    assert emu.requests[-1].path.startswith("/v1/publishers/google/models/")


def test_auth_required_and_api_key_checked(emu: VertexEmulator) -> None:
    url = f"{emu.url}/v1beta1/publishers/google/models/gemini-emulated-flash:generateContent"
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"]["status"] == "UNAUTHENTICATED"

    emu.api_key = "right-key"
    wrong = genai.Client(
        vertexai=True, api_key="wrong-key", http_options=types.HttpOptions(base_url=emu.url)
    )
    with pytest.raises(errors.ClientError) as err:
        wrong.models.generate_content(model=TEXT_MODEL, contents="x")
    assert (err.value.code, err.value.status) == (400, "INVALID_ARGUMENT")
    right = emu.client()
    right.models.generate_content(model=TEXT_MODEL, contents="x")


def test_unknown_paths_get_google_error_json(emu: VertexEmulator) -> None:
    for url in (f"{emu.url}/v1beta1/nothing/here", f"{emu.url}/"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=5)
        assert info.value.code == 404
        payload = json.loads(info.value.read())
        assert payload["error"]["code"] == 404
        assert payload["error"]["status"] == "NOT_FOUND"
        assert payload["error"]["message"]


# --------------------------------------------------------------------------------------
# Storyboards (generateContent, JSON mode)


def test_storyboard_with_response_json_schema(emu: VertexEmulator, client: genai.Client) -> None:
    r = storyboard_request(client, "A lighthouse keeper finds a message.\nScenes: 4")
    req = emu.requests[-1]
    cfg = req.body["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert cfg["responseJsonSchema"] == STORYBOARD_SCHEMA  # sent verbatim
    assert "responseSchema" not in cfg

    assert isinstance(r.parsed, dict)  # the SDK json.loads() the text for a dict schema
    assert r.parsed == json.loads(r.text or "")
    jsonschema.validate(r.parsed, STORYBOARD_SCHEMA)
    assert [s["scene_index"] for s in r.parsed["scenes"]] == [0, 1, 2, 3]
    assert r.usage_metadata is not None
    assert r.usage_metadata.prompt_token_count and r.usage_metadata.total_token_count
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP


def test_response_schema_with_plain_dict_is_rewritten(
    emu: VertexEmulator, client: genai.Client
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    client.models.generate_content(
        model=TEXT_MODEL,
        contents="x",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=schema
        ),
    )
    sent = emu.requests[-1].body["generationConfig"]["responseSchema"]
    assert sent["type"] == "OBJECT" and sent["properties"]["n"]["type"] == "INTEGER"
    # JSON-Schema features the OpenAPI-style Schema lacks break client-side:
    with pytest.raises(AttributeError):
        client.models.generate_content(
            model=TEXT_MODEL,
            contents="x",
            config=types.GenerateContentConfig(
                response_mime_type="application/json",
                response_schema={
                    "type": "object",
                    "properties": {"a": {"type": ["string", "null"]}},
                },
            ),
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Story.\nScenes: 5\nStyle: noir", 5),
        ("Write exactly 7 scenes about a fox.", 7),
        ("two acts, 2 scenes", 2),
        ("scene count unspecified", 3),
    ],
)
def test_scene_count_from_text(text: str, expected: int) -> None:
    assert scene_count_from_text(text) == expected


def test_scene_count_from_schema_and_system_instruction(client: genai.Client) -> None:
    schema = json.loads(json.dumps(STORYBOARD_SCHEMA))
    schema["properties"]["scenes"].update(minItems=2, maxItems=2)
    r = client.models.generate_content(
        model=TEXT_MODEL,
        contents="A short tale.",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    assert isinstance(r.parsed, dict) and len(r.parsed["scenes"]) == 2
    r = client.models.generate_content(
        model=TEXT_MODEL,
        contents="A short tale.",
        config=types.GenerateContentConfig(
            system_instruction="Return exactly 6 scenes.",
            response_mime_type="application/json",
            response_json_schema=STORYBOARD_SCHEMA,
        ),
    )
    assert isinstance(r.parsed, dict) and len(r.parsed["scenes"]) == 6


def test_storyboard_fn_is_pluggable(emu: VertexEmulator, client: genai.Client) -> None:
    seen: list[dict[str, Any]] = []

    def custom(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(body)
        sb = default_storyboard(body)
        sb["style_guide"]["mood"] = "custom"
        return sb

    emu.storyboard_fn = custom
    r = storyboard_request(client, "Scenes: 1")
    assert isinstance(r.parsed, dict) and r.parsed["style_guide"]["mood"] == "custom"
    assert seen and seen[0]["contents"][0]["parts"][0]["text"] == "Scenes: 1"


def test_invalid_storyboard_json_modes(emu: VertexEmulator, client: genai.Client) -> None:
    emu.invalid_storyboard_json(mode="not_json")
    r = storyboard_request(client, "Scenes: 3")
    assert r.parsed is None  # the SDK swallows the JSON error
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text or "")

    emu.invalid_storyboard_json(mode="schema")
    r = storyboard_request(client, "Scenes: 3")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(r.parsed, STORYBOARD_SCHEMA)

    emu.invalid_storyboard_json(mode="wrong_count")
    r = storyboard_request(client, "Scenes: 3")
    assert isinstance(r.parsed, dict) and len(r.parsed["scenes"]) == 2

    emu.invalid_storyboard_json(mode="markdown")
    r = storyboard_request(client, "Scenes: 3")
    assert r.parsed is None and (r.text or "").startswith("```json")

    # Faults are consumed: the next answer is valid again.
    r = storyboard_request(client, "Scenes: 3")
    jsonschema.validate(r.parsed, STORYBOARD_SCHEMA)
    assert emu.faults == []


def test_invalid_storyboard_json_count_and_match(emu: VertexEmulator, client: genai.Client) -> None:
    emu.invalid_storyboard_json(count=2, match="BROKEN")
    assert storyboard_request(client, "fine\nScenes: 2").parsed is not None
    assert storyboard_request(client, "BROKEN\nScenes: 2").parsed is None
    assert storyboard_request(client, "BROKEN again\nScenes: 2").parsed is None
    assert storyboard_request(client, "BROKEN thrice\nScenes: 2").parsed is not None


# --------------------------------------------------------------------------------------
# Images: Gemini image models and Imagen


def test_gemini_image_text_only(emu: VertexEmulator, client: genai.Client) -> None:
    r = image_request(client, "a lighthouse at dusk", aspect="9:16")
    cfg = emu.requests[-1].body["generationConfig"]
    assert cfg == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "9:16"}}
    assert r.candidates and r.candidates[0].content and r.candidates[0].content.parts
    thought, image = r.candidates[0].content.parts
    assert thought.thought is True and thought.text
    assert image.inline_data and image.inline_data.mime_type == "image/png"
    assert image.inline_data.data
    assert Image.open(io.BytesIO(image.inline_data.data)).size == (576, 1024)
    assert r.usage_metadata and r.usage_metadata.candidates_token_count == 1290


@pytest.mark.parametrize(
    ("aspect", "size"), [("16:9", (1024, 576)), ("1:1", (768, 768)), ("4:3", (1024, 768))]
)
def test_gemini_image_sizes(client: genai.Client, aspect: str, size: tuple[int, int]) -> None:
    r = image_request(client, "x", aspect=aspect)
    assert r.candidates and r.candidates[0].content and r.candidates[0].content.parts
    data = r.candidates[0].content.parts[-1].inline_data
    assert data and data.data
    assert Image.open(io.BytesIO(data.data)).size == size


def test_gemini_image_edit_with_input_image(emu: VertexEmulator, client: genai.Client) -> None:
    source = png_bytes(RED)
    r = image_request(client, "make it magenta-ish", aspect="9:16", image=source)
    req = emu.requests[-1]
    part = req.body["contents"][0]["parts"][1]["inlineData"]
    # The SDK sends URL-safe base64 and a snake_case mime_type key inside inlineData.
    assert part["mime_type"] == "image/png" and "data" in part
    assert req.inline_images == [source]

    assert r.candidates and r.candidates[0].content and r.candidates[0].content.parts
    out = r.candidates[0].content.parts[-1].inline_data
    assert out and out.data
    img = Image.open(io.BytesIO(out.data)).convert("RGB")
    assert img.size == (576, 1024)
    expected = tuple(
        round(c * (1 - EDIT_TINT_ALPHA) + t * EDIT_TINT_ALPHA)
        for c, t in zip(RED, EDIT_TINT, strict=True)
    )
    assert close(img.getpixel((288, 512)), expected, tol=3)


@pytest.mark.parametrize("mode", ["IMAGE_SAFETY", "NO_IMAGE"])
def test_missing_image_finish_reason(emu: VertexEmulator, client: genai.Client, mode: str) -> None:
    emu.missing_image(mode=mode)
    r = image_request(client, "anything")
    assert r.candidates and len(r.candidates) == 1
    assert r.candidates[0].finish_reason == types.FinishReason(mode)
    assert r.candidates[0].content is None
    assert r.parts is None


def test_missing_image_blocked_and_text_only(emu: VertexEmulator, client: genai.Client) -> None:
    emu.missing_image(mode="blocked")
    r = image_request(client, "x")
    assert r.candidates is None
    assert (
        r.prompt_feedback
        and r.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    )

    emu.missing_image(mode="text_only")
    r = image_request(client, "x")
    assert r.candidates and r.candidates[0].content and r.candidates[0].content.parts
    assert all(p.inline_data is None for p in r.candidates[0].content.parts)


def test_missing_image_targets_prompt(emu: VertexEmulator, client: genai.Client) -> None:
    emu.missing_image(match="scene 2 start frame")
    outcomes = []
    for i in range(4):
        r = image_request(client, f"scene {i} start frame")
        outcomes.append(r.candidates[0].finish_reason if r.candidates else None)
    assert outcomes == [types.FinishReason.STOP] * 2 + [types.FinishReason.IMAGE_SAFETY] + [
        types.FinishReason.STOP
    ]


@pytest.mark.filterwarnings("ignore::Warning")
def test_imagen_predict(emu: VertexEmulator, client: genai.Client) -> None:
    r = client.models.generate_images(
        model=IMAGEN,
        prompt="a red fox",
        config=types.GenerateImagesConfig(aspect_ratio="16:9", number_of_images=2),
    )
    req = emu.requests[-1]
    assert req.path == f"{PREFIX}/publishers/google/models/imagen-emulated:predict"
    assert req.body == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "16:9"},
    }
    assert r.generated_images and len(r.generated_images) == 2
    image = r.generated_images[0].image
    assert image and image.mime_type == "image/png" and image.image_bytes
    assert Image.open(io.BytesIO(image.image_bytes)).size == (1024, 576)

    emu.missing_image(rpc="predict")
    r = client.models.generate_images(model=IMAGEN, prompt="x")
    assert not r.generated_images

    emu.missing_image(rpc="predict")
    r = client.models.generate_images(
        model=IMAGEN,
        prompt="x",
        config=types.GenerateImagesConfig(include_rai_reason=True),
    )
    filtered = r.generated_images[0] if r.generated_images else None
    assert filtered and filtered.image and filtered.image.image_bytes is None  # empty Image()
    assert filtered.rai_filtered_reason


# --------------------------------------------------------------------------------------
# Veo: submit, poll, decode, resume


def test_veo_submit_poll_and_decode(emu: VertexEmulator, client: genai.Client) -> None:
    op = veo_submit(client, "scene 0: a fox runs", generate_audio=True, resolution="720p", seed=7)
    sub = emu.requests[-1]
    assert sub.path == f"{PREFIX}/publishers/google/models/{VEO}:predictLongRunning"
    inst = sub.body["instances"][0]
    assert inst["prompt"] == "scene 0: a fox runs"
    assert inst["image"]["mimeType"] == "image/png" and inst["image"]["bytesBase64Encoded"]
    assert inst["lastFrame"]["mimeType"] == "image/png"
    assert sub.inline_images == [png_bytes(RED), png_bytes(BLUE)]
    assert sub.body["parameters"] == {
        "durationSeconds": 4,
        "seed": 7,
        "aspectRatio": "9:16",
        "resolution": "720p",
        "generateAudio": True,
    }
    assert op.name and "/operations/" in op.name
    assert op.done is None and op.response is None

    op = client.operations.get(op)  # polls_until_done=1: first poll not done
    assert not op.done
    fetch = emu.requests[-1]
    resource = op.name.rpartition("/operations/")[0]  # type: ignore[union-attr]
    assert fetch.path == f"/v1beta1/{resource}:fetchPredictOperation"
    assert fetch.body == {"operationName": op.name}

    op = client.operations.get(op)  # second poll: done
    assert op.done is True and op.error is None
    assert op.response and op.result and op.response.rai_media_filtered_count == 0
    assert op.response.generated_videos and len(op.response.generated_videos) == 1
    video = op.response.generated_videos[0].video
    assert video and video.mime_type == "video/mp4" and video.video_bytes and video.uri is None

    info = probe_mp4(video.video_bytes)
    assert (info["vcodec"], info["acodec"]) == ("h264", "aac")
    assert info["size"] == (180, 320)  # 9:16
    assert abs(info["duration"] - 4) < 0.1 and info["frames"] == 96 and info["rate"] == 24
    # A cross-dissolve from the first frame (red) to the last frame (blue).
    assert close(info["first"].getpixel((90, 100)), RED)
    assert close(info["last"].getpixel((90, 100)), BLUE)
    assert emu.operations[op.name].polls == 2  # type: ignore[index]


def test_veo_default_duration_landscape_and_deprecated_kwargs(
    emu: VertexEmulator, client: genai.Client
) -> None:
    with pytest.warns(DeprecationWarning):
        type(client.models)._logged_generate_videos_deprecation_warning = False
        op = client.models.generate_videos(
            model=VEO,
            prompt="text only",
            config=types.GenerateVideosConfig(aspect_ratio="16:9"),
        )
    assert emu.requests[-1].body == {
        "instances": [{"prompt": "text only"}],
        "parameters": {"aspectRatio": "16:9"},
    }
    op = poll(client, op)
    assert op.response and op.response.generated_videos
    video = op.response.generated_videos[0].video
    assert video and video.video_bytes
    info = probe_mp4(video.video_bytes)
    assert info["size"] == (320, 180) and abs(info["duration"] - 8) < 0.1


def test_resume_polling_from_saved_name(emu: VertexEmulator) -> None:
    first = emu.client("key")
    saved_name = veo_submit(first, "resumable clip").name
    first.close()
    assert saved_name

    # A new process: fresh client, an operation rebuilt from nothing but the name.
    # (model_validate is the mypy-friendly spelling of GenerateVideosOperation(name=...).)
    fresh = emu.client("key")
    op = types.GenerateVideosOperation.model_validate({"name": saved_name})
    op = fresh.operations.get(op)
    assert op.name == saved_name and not op.done
    op = fresh.operations.get(op)
    assert op.done and op.response and op.response.generated_videos
    # The name carries projects/.../locations/..., so any mode can poll it.
    project_client = emu.client("project")
    again = project_client.operations.get(types.GenerateVideosOperation(name=saved_name))
    assert again.done

    with pytest.raises(ValueError, match="empty"):
        fresh.operations.get(types.GenerateVideosOperation())


def test_unknown_operation_404_unless_adopted(emu: VertexEmulator, client: genai.Client) -> None:
    name = f"projects/p/locations/us-central1/publishers/google/models/{VEO}/operations/lost"
    with pytest.raises(errors.ClientError) as info:
        client.operations.get(types.GenerateVideosOperation(name=name))
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")

    emu.adopt_unknown_operations = True
    emu.polls_until_done = 0
    op = client.operations.get(types.GenerateVideosOperation(name=name))
    assert op.done and op.response and op.response.generated_videos


@pytest.mark.parametrize("polls_until_done", [0, 3])
def test_polls_until_done(emu: VertexEmulator, client: genai.Client, polls_until_done: int) -> None:
    emu.polls_until_done = polls_until_done
    op = veo_submit(client, "count polls")
    states = [bool(client.operations.get(op).done) for _ in range(polls_until_done + 1)]
    assert states == [False] * polls_until_done + [True]


def test_get_operation_by_rest_get(emu: VertexEmulator, client: genai.Client) -> None:
    emu.polls_until_done = 0
    op = veo_submit(client, "rest get")
    req = urllib.request.Request(
        f"{emu.url}/v1beta1/{op.name}", headers={"x-goog-api-key": "test-key"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        payload = json.loads(resp.read())
    assert payload["done"] is True and payload["response"]["videos"][0]["bytesBase64Encoded"]
    assert emu.requests[-1].rpc == "getOperation"


def test_gcs_output(emu: VertexEmulator, client: genai.Client) -> None:
    emu.polls_until_done = 0
    op = poll(client, veo_submit(client, "to gcs", output_gcs_uri="gs://bucket/run1/"))
    assert (
        emu.calls("predictLongRunning")[-1].body["parameters"]["storageUri"] == "gs://bucket/run1/"
    )
    assert op.response and op.response.generated_videos
    video = op.response.generated_videos[0].video
    assert video and video.video_bytes is None
    assert video.uri and video.uri.startswith("gs://bucket/run1/") and video.uri.endswith(".mp4")
    with pytest.raises(ValueError):
        client.files.download(file=video)  # the SDK cannot download in Vertex mode
    with urllib.request.urlopen(emu.gcs_url(video.uri), timeout=5) as resp:
        assert probe_mp4(resp.read())["size"] == (180, 320)


def test_video_cache(emu: VertexEmulator, client: genai.Client) -> None:
    emu.polls_until_done = 0
    before = emu.videos_rendered
    for _ in range(3):
        op = client.models.generate_videos(
            model=VEO,
            source=types.GenerateVideosSource(
                prompt="same inputs",
                image=types.Image(image_bytes=png_bytes((1, 2, 3)), mime_type="image/png"),
            ),
            config=types.GenerateVideosConfig(duration_seconds=4, aspect_ratio="16:9"),
        )
        poll(client, op)
    assert emu.videos_rendered == before + 1


# --------------------------------------------------------------------------------------
# Veo outcome faults


def test_rai_filtered_targets_one_scene(emu: VertexEmulator, client: genai.Client) -> None:
    emu.polls_until_done = 0
    emu.rai_filtered(match="scene 1:")
    ops = [poll(client, veo_submit(client, f"scene {i}: the fox")) for i in range(3)]
    counts = [op.response.rai_media_filtered_count if op.response else None for op in ops]
    assert counts == [0, 1, 0]
    filtered = ops[1]
    assert filtered.done is True and filtered.error is None
    assert filtered.response and filtered.response.generated_videos is None
    assert filtered.response.rai_media_filtered_reasons
    assert "Support codes" in filtered.response.rai_media_filtered_reasons[0]


def test_operation_error_does_not_raise(emu: VertexEmulator, client: genai.Client) -> None:
    emu.polls_until_done = 0
    emu.operation_error(code=3, message="bad input image")
    op = poll(client, veo_submit(client, "fails"))
    assert op.done is True
    assert op.error == {"code": 3, "message": "bad input image"}
    assert op.response is None and op.result is None


def test_never_finish_second_submission(emu: VertexEmulator, client: genai.Client) -> None:
    emu.polls_until_done = 0
    emu.never_finish(after=1)
    ops = [veo_submit(client, f"clip {i}") for i in range(3)]
    done = [bool(poll(client, op, limit=5).done) for op in ops]
    assert done == [True, False, True]


# --------------------------------------------------------------------------------------
# HTTP faults


def test_429_with_retry_after(emu: VertexEmulator, client: genai.Client) -> None:
    fault = emu.fail_next("predictLongRunning", status=429, retry_after=2)
    with pytest.raises(errors.ClientError) as info:
        veo_submit(client, "rate limited")
    e = info.value
    assert isinstance(e, errors.APIError)
    assert (e.code, e.status) == (429, "RESOURCE_EXHAUSTED")
    assert e.message and e.details["error"]["code"] == 429
    assert e.response is not None and e.response.status_code == 429
    assert e.response.headers["retry-after"] == "2"  # headers live on the httpx2 response
    assert fault.hits == 1 and emu.faults == []
    assert emu.calls("predictLongRunning")[-1].status == 429
    assert emu.operations == {}
    veo_submit(client, "rate limited")  # consumed: next one succeeds
    assert len(emu.operations) == 1


def test_503_and_poll_faults_by_prompt(emu: VertexEmulator, client: genai.Client) -> None:
    emu.fail_next("generateContent", status=503, count=2)
    for _ in range(2):
        with pytest.raises(errors.ServerError) as info:
            client.models.generate_content(model=TEXT_MODEL, contents="x")
        assert (info.value.code, info.value.status) == (503, "UNAVAILABLE")
    client.models.generate_content(model=TEXT_MODEL, contents="x")

    # Polls are matched against the prompt the operation was submitted with.
    emu.polls_until_done = 0
    a, b = veo_submit(client, "scene A"), veo_submit(client, "scene B")
    emu.fail_next("fetchPredictOperation", status=500, match="scene B")
    assert client.operations.get(a).done
    with pytest.raises(errors.ServerError):
        client.operations.get(b)
    assert client.operations.get(b).done


def test_sdk_retry_options_retry_429_ignoring_retry_after(
    emu: VertexEmulator, client: genai.Client
) -> None:
    emu.fail_next("generateContent", status=429, retry_after=30, count=2)
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02, jitter=0)
    start = time.monotonic()
    client.models.generate_content(
        model=TEXT_MODEL,
        contents="x",
        config=types.GenerateContentConfig(http_options=types.HttpOptions(retry_options=retry)),
    )
    assert time.monotonic() - start < 5
    assert [r.status for r in emu.calls("generateContent")] == [429, 429, 200]


def test_faults_are_thread_safe(emu: VertexEmulator, client: genai.Client) -> None:
    emu.fail_next("generateContent", status=429, count=5)
    failures: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            client.models.generate_content(model=TEXT_MODEL, contents="x")
        except errors.ClientError as e:
            with lock:
                failures.append(e.code)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [429] * 5
    assert len(emu.calls("generateContent")) == 16


def test_strict_veo_validation(emu: VertexEmulator, client: genai.Client) -> None:
    for kwargs in ({"duration": 5}, {"aspect": "1:1"}):
        with pytest.raises(errors.ClientError) as info:
            veo_submit(client, "bad", **kwargs)  # type: ignore[arg-type]
        assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    with pytest.raises(errors.ClientError, match="allowlisted"):
        client.models.generate_videos(
            model="veo-3.1-lite-generate-001",
            source=types.GenerateVideosSource(
                prompt="x", image=types.Image(image_bytes=png_bytes(RED), mime_type="image/png")
            ),
            config=types.GenerateVideosConfig(
                last_frame=types.Image(image_bytes=png_bytes(BLUE), mime_type="image/png")
            ),
        )
    emu.strict = False
    veo_submit(client, "lenient", duration=2)


# --------------------------------------------------------------------------------------
# Latency, async client, standalone process


def test_corrupt_input_image_is_a_400(emu: VertexEmulator, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_videos(
            model=VEO,
            source=types.GenerateVideosSource(
                prompt="x", image=types.Image(image_bytes=b"not a png", mime_type="image/png")
            ),
        )
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert emu.operations == {}


def test_latency(emu: VertexEmulator, client: genai.Client) -> None:
    emu.latency = 0.2
    start = time.monotonic()
    client.models.generate_content(model=TEXT_MODEL, contents="x")
    assert time.monotonic() - start >= 0.2


def test_async_client(emu: VertexEmulator, client: genai.Client) -> None:
    async def run() -> types.GenerateVideosOperation:
        op = await client.aio.models.generate_videos(
            model=VEO,
            source=types.GenerateVideosSource(prompt="async clip"),
            config=types.GenerateVideosConfig(duration_seconds=4, aspect_ratio="16:9"),
        )
        while not op.done:
            op = await client.aio.operations.get(op)
        return op

    op = asyncio.run(run())
    assert op.response and op.response.generated_videos
    assert emu.calls("fetchPredictOperation")[-1].body == {"operationName": op.name}


def test_standalone_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", EMULATOR_MODULE, "--port", "0", "--latency", "0.05", "--polls", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = genai.Client(
            vertexai=True, api_key="k", http_options=types.HttpOptions(base_url=url)
        )
        r = storyboard_request(client, "Scenes: 2")
        assert isinstance(r.parsed, dict) and len(r.parsed["scenes"]) == 2
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


# --------------------------------------------------------------------------------------
# As strict as the service: the model catalog's facts


def test_express_mode_serves_generate_content_only(emu: VertexEmulator) -> None:
    express = emu.client("express")
    express.models.generate_content(model=TEXT_MODEL, contents="fine")
    with pytest.raises(errors.ClientError) as info:
        veo_submit(express, "refused")
    assert (info.value.code, info.value.message) == (
        400,
        "Invalid resource field value in the request.",
    )
    with pytest.raises(errors.ClientError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generate_images is flagged experimental
        express.models.generate_images(model=IMAGEN, prompt="refused")
    assert info.value.code == 400
    # Polling without a project prefix is refused too.
    name = f"projects/p/locations/us-central1/publishers/google/models/{VEO}/operations/x"
    url = f"{emu.url}/v1beta1/publishers/google/models/{VEO}:fetchPredictOperation"
    body = json.dumps({"operationName": name}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", "x-goog-api-key": "k"}
    )
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(request, timeout=5)
    assert http.value.code == 400
    assert emu.operations == {}


def test_retired_models_answer_404(emu: VertexEmulator, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_videos(
            model="veo-2.0-generate-001", source=types.GenerateVideosSource(prompt="x")
        )
    assert info.value.code == 404


def global_client(emu: VertexEmulator) -> genai.Client:
    return genai.Client(
        vertexai=True,
        api_key="test-key",
        project=emu.project,
        location="global",
        http_options=types.HttpOptions(base_url=emu.url),
    )


@pytest.mark.parametrize(
    ("aspect", "size", "expected"),
    [("16:9", None, (1344, 768)), ("9:16", "1K", (768, 1344)), ("1:1", "2K", (2048, 2048))],
)
def test_gemini_image_models_answer_their_real_sizes(
    emu: VertexEmulator, aspect: str, size: str | None, expected: tuple[int, int]
) -> None:
    client = global_client(emu)
    config = types.ImageConfig(aspect_ratio=aspect, image_size=size)
    r = client.models.generate_content(
        model="gemini-3.1-flash-image",
        contents="a lighthouse",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"], image_config=config),
    )
    part = next(p for p in r.candidates[0].content.parts if p.inline_data)  # type: ignore[index, union-attr]
    assert Image.open(io.BytesIO(part.inline_data.data)).size == expected  # type: ignore[union-attr, arg-type]


def test_models_are_served_where_the_catalog_says(
    emu: VertexEmulator, client: genai.Client
) -> None:
    # gemini-3.1-flash-image is served from `global`; the shared client is regional.
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(
            model="gemini-3.1-flash-image",
            contents="x",
            config=types.GenerateContentConfig(response_modalities=["IMAGE"]),
        )
    assert info.value.code == 404
    with pytest.raises(errors.ClientError) as info:
        veo_submit(global_client(emu), "Veo is regional")
    assert info.value.code == 404


def test_image_requests_the_model_cannot_take(emu: VertexEmulator, client: genai.Client) -> None:
    # gemini-2.5-flash-image (regional, deprecated but served): 3 input images, no imageSize.
    four = [types.Part.from_bytes(data=png_bytes(RED), mime_type="image/png")] * 4
    with pytest.raises(errors.ClientError, match="at most 3 images"):
        client.models.generate_content(
            model="gemini-2.5-flash-image",
            contents=[*four, "combine them"],
            config=types.GenerateContentConfig(response_modalities=["IMAGE"]),
        )
    with pytest.raises(errors.ClientError, match="imageSize 2K"):
        client.models.generate_content(
            model="gemini-2.5-flash-image",
            contents="x",
            config=types.GenerateContentConfig(
                response_modalities=["IMAGE"], image_config=types.ImageConfig(image_size="2K")
            ),
        )


def reference(color: tuple[int, int, int]) -> types.VideoGenerationReferenceImage:
    return types.VideoGenerationReferenceImage(
        image=types.Image(image_bytes=png_bytes(color), mime_type="image/png"),
        reference_type="ASSET",
    )


def test_veo_reference_image_rules(emu: VertexEmulator, client: genai.Client) -> None:
    def submit(prompt: str | None, refs: int, duration: int, image: bool = False) -> Any:
        first = types.Image(image_bytes=png_bytes(RED), mime_type="image/png")
        return client.models.generate_videos(
            model=VEO,
            source=types.GenerateVideosSource(prompt=prompt, image=first if image else None),
            config=types.GenerateVideosConfig(
                duration_seconds=duration, reference_images=[reference(BLUE)] * refs
            ),
        )

    with pytest.raises(errors.ClientError, match="cannot be combined with image"):
        submit("a fox", 1, 8, image=True)
    with pytest.raises(errors.ClientError, match="at most 3 reference images"):
        submit("a fox", 4, 8)
    with pytest.raises(errors.ClientError, match="need durationSeconds 8"):
        submit("a fox", 1, 4)
    assert emu.operations == {}
    assert submit("a fox", 3, 8).name
    with pytest.raises(errors.ClientError, match="at most 0 reference images"):
        client.models.generate_videos(
            model="veo-3.1-lite-generate-001",
            source=types.GenerateVideosSource(prompt="a fox"),
            config=types.GenerateVideosConfig(
                duration_seconds=8, reference_images=[reference(RED)]
            ),
        )


def test_veo_resolutions_audio_and_inline_limits(emu: VertexEmulator, client: genai.Client) -> None:
    from vidpipe.catalog import build

    assert veo_submit(client, "4k", aspect="16:9", resolution="4k").name
    lite = {"model": "veo-3.1-lite-generate-001"}
    with pytest.raises(errors.ClientError, match="Unsupported resolution 4k"):
        client.models.generate_videos(
            **lite,  # type: ignore[arg-type]
            source=types.GenerateVideosSource(prompt="x"),
            config=types.GenerateVideosConfig(resolution="4k"),
        )
    # A project still served Veo 2 (and a model with a tiny inline limit) by catalog entry.
    emu.catalog = build(
        {
            "veo-2.0-generate-001": {"status": "ga", "retires": None},
            "veo-tiny": {
                "provider": "google",
                "step": "video",
                "inputs": {"max_inline_mb": 0.0001},
            },
        }
    )
    with pytest.raises(errors.ClientError, match="generateAudio is not supported"):
        client.models.generate_videos(
            model="veo-2.0-generate-001",
            source=types.GenerateVideosSource(prompt="x"),
            config=types.GenerateVideosConfig(duration_seconds=6, generate_audio=False),
        )
    with pytest.raises(errors.ClientError, match="Inline data is"):
        client.models.generate_videos(
            model="veo-tiny",
            source=types.GenerateVideosSource(
                prompt="x", image=types.Image(image_bytes=png_bytes(RED), mime_type="image/png")
            ),
        )
    # Veo 2 clips are video-only.
    emu.polls_until_done = 0
    op = client.models.generate_videos(
        model="veo-2.0-generate-001",
        source=types.GenerateVideosSource(prompt="a silent film"),
        config=types.GenerateVideosConfig(duration_seconds=5),
    )
    video = poll(client, op).response.generated_videos[0].video  # type: ignore[union-attr, index]
    assert probe_mp4(video.video_bytes)["acodec"] is None  # type: ignore[union-attr, arg-type]


def test_generate_audio_false_gives_a_video_only_mp4(
    emu: VertexEmulator, client: genai.Client
) -> None:
    emu.polls_until_done = 0
    silent = poll(client, veo_submit(client, "no sound", generate_audio=False))
    loud = poll(client, veo_submit(client, "sound", generate_audio=True))
    data = [op.response.generated_videos[0].video.video_bytes for op in (silent, loud)]  # type: ignore[union-attr, index]
    assert probe_mp4(data[0])["acodec"] is None  # type: ignore[arg-type]
    assert probe_mp4(data[1])["acodec"] == "aac"  # type: ignore[arg-type]


def test_retry_info_in_a_429_body(emu: VertexEmulator, client: genai.Client) -> None:
    emu.fail_next("generateContent", status=429, retry_delay="3s")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=TEXT_MODEL, contents="x")
    assert info.value.details["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}
    ]
    assert "retry-after" not in info.value.response.headers  # type: ignore[union-attr]
