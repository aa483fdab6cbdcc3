"""`vidpipe render`: the storyboard prompt and every scene's start, end and motion prompts.

Nothing is generated: the scene prompts come from the offline planner until the job has a
recorded storyboard, and the output says which.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Project


def headings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("#")]


def body(output: str, heading: str) -> str:
    """The text under the heading that starts with `heading`, up to the next heading."""
    match = re.search(rf"^{re.escape(heading)}.*?\n\n(.*?)(?=\n#|\Z)", output, re.M | re.S)
    assert match, f"no {heading!r} in:\n{output}"
    return match[1].strip()


@pytest.fixture
def demo(tmp_path: Path) -> Project:
    """A project made by the real `vidpipe init demo` command."""
    result = Project(tmp_path).cli("init", "demo")
    assert result.exit_code == 0, result.output
    return Project(tmp_path / "demo")


EXPECTED_HEADINGS = [
    "# job example (jobs/example.yaml)",
    "## storyboard prompt  [templates/storyboard.j2]",
    "## scene prompts from the offline planner (no storyboard recorded yet)",
    *(
        f"### scene {i} {label}  [templates/{template}.j2]"
        for i in range(3)
        for label, template in (
            ("start frame", "keyframe_start"),
            ("end frame", "keyframe_end"),
            ("motion", "motion"),
        )
    ),
]


def test_a_fresh_project_validates_and_renders(demo: Project) -> None:
    validated = demo.cli("validate")
    assert validated.exit_code == 0, validated.output
    assert (
        validated.output == "ok  jobs/example.yaml: example (3 scenes, 16:9, local)\n1 job valid.\n"
    )

    result = demo.cli("render", "jobs/example.yaml")
    assert result.exit_code == 0, result.output
    out = result.output
    assert headings(out) == EXPECTED_HEADINGS

    storyboard = body(out, "## storyboard prompt")
    assert "A lighthouse keeper climbs the spiral stairs at dusk as a storm rolls in." in storyboard
    assert "- Scenes: exactly 3 (scene_index 0 to 2)." in storyboard
    assert "- Visual style: cinematic. Every frame shares it." in storyboard
    assert "- Aspect ratio: 16:9 (widescreen)." in storyboard
    assert "- Project notes: location: a rocky Atlantic headland." in storyboard

    for i in range(3):
        start = body(out, f"### scene {i} start frame")
        end = body(out, f"### scene {i} end frame")
        motion = body(out, f"### scene {i} motion")
        assert "Style: cinematic live action" in start
        assert "Composition: 16:9 frame; this is the opening frame of a 4-second shot." in start
        assert end.startswith(
            "Edit the provided start frame into the final frame of the same shot, 4 seconds later."
        )
        assert "in one continuous 4-second take, with no cuts." in motion
        assert "{{" not in start + end + motion


def test_scene_prompts_follow_the_storyboard_and_its_overrides(demo: Project) -> None:
    out = demo.cli("render", "jobs/example.yaml").output
    # The planner splits the idea into beats, one per scene.
    assert "She lights the great lamp" in body(out, "### scene 1 motion")
    # scene_overrides in jobs/example.yaml replaces scene 2's motion prompt.
    assert body(out, "### scene 2 motion").startswith(
        "Slow pull out from the lighthouse as the beam reaches the boat."
    )
    # Each scene starts on the frame the previous one ended on.
    for i in (1, 2):
        end_of_previous = re.search(
            r"^End of shot: (.*)$", body(out, f"### scene {i - 1} end frame"), re.M
        )
        assert end_of_previous
        assert body(out, f"### scene {i} start frame").startswith(end_of_previous[1])


def test_one_scene(demo: Project) -> None:
    result = demo.cli("render", "jobs/example.yaml", "--scene", "1")
    assert result.exit_code == 0, result.output
    assert headings(result.output) == [
        "# job example (jobs/example.yaml)",
        "## scene prompts from the offline planner (no storyboard recorded yet)",
        "### scene 1 start frame  [templates/keyframe_start.j2]",
        "### scene 1 end frame  [templates/keyframe_end.j2]",
        "### scene 1 motion  [templates/motion.j2]",
    ]
    full = demo.cli("render", "jobs/example.yaml").output
    assert body(result.output, "### scene 1 motion") == body(full, "### scene 1 motion")


@pytest.mark.parametrize("scene", ["3", "-1"])
def test_a_scene_out_of_range(demo: Project, scene: str) -> None:
    result = demo.cli("render", "jobs/example.yaml", "--scene", scene)
    assert result.exit_code == 2
    assert result.output == f"Error: --scene {scene} is out of range: example has scenes 0 to 2\n"


def test_a_scene_that_is_not_a_number(demo: Project) -> None:
    result = demo.cli("render", "jobs/example.yaml", "--scene", "two")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--scene': 'two' is not a valid integer." in result.output


def test_render_by_job_name(demo: Project) -> None:
    by_name = demo.cli("render", "example")
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output == demo.cli("render", "jobs/example.yaml").output


def test_an_unknown_job(demo: Project) -> None:
    result = demo.cli("render", "lighthouse")
    assert result.exit_code == 2
    assert result.output == (
        "Error: no job file or job named 'lighthouse'; give a path like jobs/example.yaml\n"
    )


def test_an_invalid_job_is_refused_like_validate(demo: Project) -> None:
    demo.job("bad", "prompt: hi\nscenes: 0\n")
    result = demo.cli("render", "jobs/bad.yaml")
    assert result.exit_code == 2
    assert result.output == (
        "jobs/bad.yaml:2:9: scenes must be at least 1 (got 0)\n1 problem found; nothing was run.\n"
    )


def test_every_job_of_a_matrix_is_rendered(project: Project) -> None:
    project.job(
        "promo",
        'prompt: A kite over the dunes\nscenes: 1\nmatrix:\n  aspect_ratio: ["16:9", "9:16"]\n',
    )
    out = project.cli("render", "jobs/promo.yaml").output
    assert [h for h in headings(out) if h.startswith("# job")] == [
        "# job promo-16-9 (jobs/promo.yaml)",
        "# job promo-9-16 (jobs/promo.yaml)",
    ]
    assert "- Aspect ratio: 9:16 (vertical, compose for a phone screen)." in out
    assert "Composition: 9:16 frame, vertical, subject centred for a phone screen;" in out


def test_scene_prompts_from_a_recorded_storyboard(demo: Project) -> None:
    run = demo.cli("run", "--until", "storyboard", "-q")
    assert run.exit_code == 0, run.output
    project_id = json.loads(demo.cli("list", "--json").output)[0]["project_id"]
    result = demo.cli("render", "jobs/example.yaml")
    assert result.exit_code == 0, result.output
    assert f"## scene prompts from the storyboard recorded in project {project_id}" in headings(
        result.output
    )
    assert (
        "## scene prompts from the offline planner (no storyboard recorded yet)"
        not in result.output
    )


def test_a_stale_recorded_storyboard_is_not_used_after_the_prompt_changes(demo: Project) -> None:
    assert demo.cli("run", "--until", "storyboard", "-q").exit_code == 0
    example = demo.root / "jobs" / "example.yaml"
    example.write_text(
        example.read_text().replace("She lights the great lamp.", "A gull lands on the rail.")
    )
    out = demo.cli("render", "jobs/example.yaml", "--scene", "1").output
    assert "A gull lands on the rail" in body(out, "### scene 1 motion")
