"""Assets with the google provider: what the Vertex emulator received, request by request."""

from __future__ import annotations

from typing import Any

from tests.conftest import Project, refused
from tests.test_assets import logo_png, product_png
from tests.test_google import _emulator, _loopback_only, emu, genv, google_job, run
from vidpipe.testing.vertex_emulator import VertexEmulator

__all__ = ["_emulator", "_loopback_only", "emu"]  # fixtures shared with test_google

IMAGE_MODEL = "gemini-2.5-flash-image"


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
        "make clips from reference images; use veo-3.1-generate-001 or veo-3.1-fast-generate-001",
        "jobs/short.yaml:11:8: scene 0: video references: assets: veo-3.1-fast-generate-001 makes "
        "clips from reference images of 8 seconds only, not 4",
    )
    assert emu.calls() == []
