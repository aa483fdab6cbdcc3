"""Assets with the google provider: what the Vertex emulator received, request by request."""

from __future__ import annotations

from typing import Any

from tests.conftest import Project, refused
from tests.test_assets import logo_png, product_png
from tests.test_google import (
    LOCATION,
    PROJECT,
    _emulator,
    _loopback_only,
    emu,
    genv,
    google_job,
    manifest_of,
    run,
)
from vidpipe.catalog import builtin
from vidpipe.testing.vertex_emulator import VertexEmulator

__all__ = ["_emulator", "_loopback_only", "emu"]  # fixtures shared with test_google

IMAGE_MODEL = builtin().default("google", "image")


def image_requests(emu: VertexEmulator) -> list[Any]:
    return [r for r in emu.calls("generateContent") if r.model == IMAGE_MODEL]


def test_keyframe_requests_carry_the_product_of_their_scene(
    project: Project, emu: VertexEmulator
) -> None:
    cup = product_png(project.root / "assets" / "cup.png").read_bytes()
    google_job(
        project,
        "spot",
        scenes=3,
        extra="assets:\n  cup: {kind: product, images: [../assets/cup.png]}\n"
        "scene_overrides:\n  - {index: 0, assets: [cup]}\n  - {index: 1, assets: []}\n"
        "  - {index: 2, assets: [cup]}\n",
    )
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    # In order: scene 0 start, scene 0 end, scene 1 end, scene 2 end (starts are inherited).
    carried = [cup in r.inline_images for r in image_requests(emu)]
    assert carried == [True, True, False, True]
    # The end frame sends its start frame first, then the product.
    assert image_requests(emu)[1].inline_images[1] == cup


def test_replacing_a_logo_regenerates_the_last_end_frame_and_clip_of_each_job(
    project: Project, emu: VertexEmulator
) -> None:
    logo = logo_png(project.root / "assets" / "brand.png", (20, 60, 200))
    project.write("assets/brand.yaml", "kind: logo\nimages: [brand.png]\n")
    extra = "scene_overrides:\n  - {index: 1, assets: [brand]}\n"
    # Different styles: the two jobs' prompts, frames and clips differ (no shared keys).
    google_job(project, "one", scenes=2, extra=extra + "style: watercolor\n")
    google_job(project, "two", scenes=2, extra=extra + "style: film noir\n")
    assert run(project, emu).exit_code == 0
    emu.reset()
    logo_png(logo, (200, 60, 20))
    assert run(project, emu).exit_code == 0
    images = image_requests(emu)
    assert len(images) == 2 and all(logo.read_bytes() in r.inline_images for r in images)
    assert len(emu.calls("predictLongRunning")) == 2
    assert [r for r in emu.calls("generateContent") if r.model != IMAGE_MODEL] == []


REFERENCE_JOB = (
    "assets:\n  cup: {kind: product, images: [../assets/cup.png]}\n"
    "scene_overrides:\n  - {index: 0, assets: [cup]}\n"
    "video: {references: assets}\n"
)


def test_video_references_send_reference_images_and_no_frames(
    project: Project, emu: VertexEmulator
) -> None:
    product_png(project.root / "assets" / "cup.png")
    google_job(project, "ref", extra=REFERENCE_JOB)
    text = (
        (project.root / "jobs/ref.yaml").read_text().replace("clip_duration: 4", "clip_duration: 8")
    )
    project.write("jobs/ref.yaml", text)
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    (submit,) = emu.calls("predictLongRunning")
    instance = submit.body["instances"][0]
    assert "image" not in instance and "lastFrame" not in instance
    refs = instance["referenceImages"]
    assert [r["referenceType"].lower() for r in refs] == ["asset"]
    assert submit.inline_images == [(project.root / "assets/cup.png").read_bytes()]


def test_video_references_are_refused_before_any_call(
    project: Project, emu: VertexEmulator
) -> None:
    product_png(project.root / "assets" / "cup.png")
    google_job(project, "short", extra=REFERENCE_JOB)
    google_job(
        project,
        "lite",
        extra=REFERENCE_JOB + "models: {video: veo-3.1-lite-generate-001}\n",
    )
    text = (
        (project.root / "jobs/lite.yaml")
        .read_text()
        .replace("clip_duration: 4", "clip_duration: 8")
    )
    project.write("jobs/lite.yaml", text)
    refused(
        project.cli("run", env=genv(emu)),
        "jobs/lite.yaml:11:8: scene 0: video references: assets: veo-3.1-lite-generate-001 cannot "
        "make clips from reference images; use veo-3.1-fast-generate-001 or veo-3.1-generate-001",
        "jobs/short.yaml:11:8: scene 0: video references: assets: veo-3.1-fast-generate-001 makes "
        "clips from reference images of 8 seconds only, not 4",
    )
    assert emu.calls() == []


def _post(emu: VertexEmulator, model: str, method: str, body: dict[str, Any]) -> int:
    """The HTTP status the emulator answers a raw request with (200 or its refusal)."""
    import json
    import urllib.error
    import urllib.request

    url = (
        f"{emu.url}/v1beta1/projects/{PROJECT}/locations/{LOCATION}"
        f"/publishers/google/models/{model}:{method}"
    )
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-goog-api-key": "test-key"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_model_taking_three_images_gets_the_first_three_the_emulator_refuses_four(
    project: Project, emu: VertexEmulator
) -> None:
    import base64

    cups = [
        product_png(project.root / "assets" / f"cup{n}.png", (40 * n, 30, 30)).read_bytes()
        for n in range(1, 5)
    ]
    google_job(
        project,
        "many",
        extra="models: {image: gemini-2.5-flash-image}\n"
        "assets:\n  cup:\n    kind: product\n    images: [../assets/cup1.png, "
        "../assets/cup2.png, ../assets/cup3.png, ../assets/cup4.png]\n"
        "scene_overrides:\n  - {index: 0, assets: [cup]}\n",
    )
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    start, end = [r for r in emu.calls("generateContent") if r.model == "gemini-2.5-flash-image"]
    # The catalog says 3 input images: the start frame gets three cups, the end frame its
    # start frame and two cups; the rest are dropped with a warning.
    assert start.inline_images == cups[:3]
    assert end.inline_images[1:] == cups[:2] and len(end.inline_images) == 3
    scene = manifest_of(project, "many")["scenes"][0]
    assert any("dropped" in w and "gemini-2.5-flash-image" in w for w in scene["warnings"])

    # What vidpipe kept from happening: four images are refused by the service.
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(cups[0]).decode()}}
    body = {
        "contents": [{"role": "user", "parts": [part] * 4 + [{"text": "a cup"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }
    assert _post(emu, "gemini-2.5-flash-image", "generateContent", body) == 400
    body["contents"][0]["parts"] = [part] * 3 + [{"text": "a cup"}]
    assert _post(emu, "gemini-2.5-flash-image", "generateContent", body) == 200


def test_the_emulator_refuses_the_reference_clips_the_pre_flight_refuses(
    project: Project, emu: VertexEmulator
) -> None:
    import base64

    cup = product_png(project.root / "assets" / "cup.png").read_bytes()
    image = {"bytesBase64Encoded": base64.b64encode(cup).decode(), "mimeType": "image/png"}

    def submit(model: str, seconds: int) -> int:
        instance = {
            "prompt": "a cup on a table",
            "referenceImages": [{"image": image, "referenceType": "asset"}],
        }
        body = {"instances": [instance], "parameters": {"durationSeconds": seconds}}
        return _post(emu, model, "predictLongRunning", body)

    # The two refusals of test_video_references_are_refused_before_any_call.
    assert submit("veo-3.1-lite-generate-001", 8) == 400
    assert submit("veo-3.1-fast-generate-001", 4) == 400
    assert submit("veo-3.1-fast-generate-001", 8) == 200


def test_an_asset_image_over_the_inline_limit_is_refused_before_any_call(
    project: Project, emu: VertexEmulator
) -> None:
    import os

    from PIL import Image

    # Noise does not compress: about 8.6 MB of PNG, over the image model's 7 MB.
    big = project.root / "assets" / "poster.png"
    big.parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (1700, 1700), os.urandom(1700 * 1700 * 3)).save(big, compress_level=0)
    assert big.stat().st_size > 7_000_000
    google_job(
        project,
        "huge",
        extra="assets:\n  poster:\n    kind: logo\n    images: [../assets/poster.png]\n",
    )
    refused(
        project.cli("run", env=genv(emu)),
        f"jobs/huge.yaml:10:14: asset poster: poster.png is {big.stat().st_size / 1e6:.1f} MB; "
        f"{IMAGE_MODEL} takes inline images up to 7 MB: make it smaller (JPEG, or fewer pixels)",
    )
    assert emu.calls() == []
