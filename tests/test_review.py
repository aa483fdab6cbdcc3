"""The review gate: keyframes looked at (and retouched) before clips are paid for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from tests.conftest import Project
from vidpipe.artifacts import sha256_file

JOB = "prompt: A lighthouse keeper climbs the stairs at dusk\nscenes: 3\n"


def folder(project: Project, job: str = "keeper") -> Path:
    (only,) = (project.root / "tmp" / job).iterdir()
    return only


def manifest(project: Project) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (folder(project) / "output" / "manifest.json").read_text("utf-8")
    )
    return data


def retouch(path: Path) -> str:
    """Paint a red square into the top-left corner, as a retoucher would; its new sha256."""
    with Image.open(path) as img:
        edited = img.convert("RGB")
    edited.paste((255, 0, 0), (0, 0, edited.width // 4, edited.height // 4))
    edited.save(path)
    return sha256_file(path)


def corner_is_red(clip: Path, which: str) -> bool:
    with av.open(str(clip)) as container:
        frames = list(container.decode(video=0))
    frame = frames[0] if which == "first" else frames[-1]
    pixels = np.asarray(frame.to_image(), dtype=np.int16)
    h, w, _ = pixels.shape
    corner = pixels[: h // 8, : w // 8].reshape(-1, 3).mean(axis=0)
    return bool(corner[0] > 180 and corner[1] < 80 and corner[2] < 80)


def test_a_project_stopped_after_keyframes_has_its_contact_sheet_and_review_card(
    project: Project,
) -> None:
    project.job("keeper", JOB)
    result = project.cli("run", "--until", "keyframes", "-q")
    assert result.exit_code == 0, result.output
    sheet = folder(project) / "output" / "storyboard.png"
    with Image.open(sheet) as img:
        assert img.width > 300 and img.height > 300

    report = project.cli("report", "--html", "gallery.html")
    assert report.exit_code == 0, report.output
    html = (project.root / "gallery.html").read_text("utf-8")
    assert 'data-status="stopped"' in html
    assert "keyframes for review" in html
    for index in range(3):
        assert f'id="job-keeper-scene-{index}"' in html
        assert f'alt="scene {index} end frame" src="data:image/jpeg;base64,' in html
    assert html.count("<strong>motion</strong>") == 3


def test_an_edited_keyframe_stops_the_job_until_it_is_kept(project: Project) -> None:
    project.job("keeper", JOB)
    assert project.cli("run", "--until", "keyframes", "-q").exit_code == 0
    end = folder(project) / "keyframes" / "scene_01_end.png"
    edited = retouch(end)

    shown = end.relative_to(project.root).as_posix()
    message = (
        f"{shown} was edited after vidpipe made it; `vidpipe keep keeper 1 end` builds on "
        "the edited file, `vidpipe run --force` makes it again"
    )
    result = project.cli("resume", "keeper")
    assert result.exit_code == 1
    assert message in result.output
    assert sha256_file(end) == edited  # never silently replaced
    again = project.cli("run", "-q", "--report", "report.json")
    assert again.exit_code == 1
    job = project.jobs_in_report()["keeper"]
    assert (job["status"], job["error"], job["provider_calls"]) == ("stopped", message, 0)
    assert sha256_file(end) == edited

    kept = project.cli("keep", "keeper", "1", "end")
    assert kept.exit_code == 0, kept.output
    assert kept.output.startswith(f"kept {shown} as scene 1's end frame")
    result = project.cli("resume", "keeper")
    assert result.exit_code == 0, result.output

    data = manifest(project)
    scenes = data["scenes"]
    assert scenes[1]["keyframes"]["end"] == {
        "path": shown,
        "sha256": edited,
        "source": "kept",
    }
    # Scene 2 starts on the edited frame, and both clips were made from it.
    assert scenes[2]["keyframes"]["start"]["sha256"] == edited
    assert sha256_file(end) == edited
    clips = folder(project) / "clips"
    assert corner_is_red(clips / "scene_01.mp4", "last")
    assert corner_is_red(clips / "scene_02.mp4", "first")
    assert not corner_is_red(clips / "scene_00.mp4", "last")
    assert data["status"] == "complete"


def test_keep_refuses_an_inherited_start_frame_and_unknown_scenes(project: Project) -> None:
    project.job("keeper", JOB)
    assert project.cli("run", "--until", "keyframes", "-q").exit_code == 0
    result = project.cli("keep", "keeper", "2", "start")
    assert result.exit_code == 2
    assert result.output == (
        "Error: scene 2's start frame is scene 1's end frame; run `vidpipe keep keeper 1 end`\n"
    )
    result = project.cli("keep", "keeper", "7", "end")
    assert result.exit_code == 2
    assert "has no scene 7; its scenes are 0 to 2" in result.output
    result = project.cli("keep", "nobody", "0", "end")
    assert result.exit_code == 2
    assert "no project or job named 'nobody'" in result.output


def test_a_missing_keyframe_is_made_again_without_stopping(project: Project) -> None:
    project.job("keeper", JOB)
    assert project.cli("run", "--until", "keyframes", "-q").exit_code == 0
    end = folder(project) / "keyframes" / "scene_01_end.png"
    before = sha256_file(end)
    end.unlink()
    result = project.cli("resume", "keeper")
    assert result.exit_code == 0, result.output
    assert sha256_file(end) == before
