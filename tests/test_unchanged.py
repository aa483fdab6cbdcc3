"""Unchanged inputs are recognised without compiling (vidpipe.memo), a changed one never.

`validate`, `stitch` and `run` remember what a batch compiled to, keyed by everything the
compile read. Each test makes one command remember, changes one input, and checks the
command sees the change: a new error, a new plan, a rebuilt output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import Project
from vidpipe import usercache

KITE = "prompt: A red kite climbs over the dunes\nscenes: 1\n"


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 36), (200, 30, 30)).save(path)
    return path


def remembered(project: Project) -> list[Path]:
    """The compiled batches in the (test's own) user cache."""
    return sorted((Path(os.environ["HOME"]) / ".cache" / "vidpipe" / "plans").rglob("*"))


# -- validate -----------------------------------------------------------------------------


def _job(p: Project) -> None:
    p.job("kite", KITE + "style: [not, text]\n")


def _project_template(p: Project) -> None:
    p.write("templates/motion.j2", "{{ scene.video_motion_prompt }} {{ nope }}\n")


def _shadowing_template(p: Project) -> None:
    # A new file in the job's folder is found before templates/ and the built-in one.
    p.write("jobs/keyframe_end.j2", "{{ nope }}\n")


def _included_template(p: Project) -> None:
    p.write("templates/partial.j2", "{{ nope }}\n")


def _config(p: Project) -> None:
    text = (p.root / "vidpipe.yaml").read_text()
    (p.root / "vidpipe.yaml").write_text(text + "max_scenes: 0\n")


def _asset_file(p: Project) -> None:
    p.write("assets/cup.yaml", "name: cup\nkind: gadget\ndescription: our red cup\n")


def _override_image(p: Project) -> None:
    (p.root / "jobs" / "first.png").write_bytes(b"not a png at all")


CHANGES: dict[str, tuple[Callable[[Project], None], str]] = {
    "job file": (_job, "jobs/kite.yaml:3"),
    "project template": (_project_template, "templates/motion.j2:1"),
    "template in the job's folder": (_shadowing_template, "jobs/keyframe_end.j2:1"),
    "included template": (_included_template, "templates/partial.j2:1"),
    "vidpipe.yaml": (_config, "max_scenes"),
    "asset file": (_asset_file, "assets/cup.yaml"),
    "override image": (_override_image, "jobs/kite.yaml"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_validate_reports_the_error_a_changed_input_makes(project: Project, change: str) -> None:
    project.job("kite", KITE + "scene_overrides:\n  - {index: 0, start_image: first.png}\n")
    png(project.root / "jobs" / "first.png")
    project.write("templates/storyboard.j2", '{% include "partial.j2" %}\n')
    project.write("templates/partial.j2", "An idea: {{ job.prompt }}\n")
    project.write("assets/cup.yaml", "name: cup\nkind: product\ndescription: our red cup\n")
    for _ in range(2):  # the second answer comes from the memo
        ok = project.cli("validate")
        assert ok.exit_code == 0, ok.output
        assert "1 job valid." in ok.output
    assert remembered(project)
    mutate, where = CHANGES[change]
    mutate(project)
    refused = project.cli("validate")
    assert refused.exit_code == 2, refused.output
    assert where in refused.output
    assert "Traceback" not in refused.output


def test_a_remembered_validate_renders_no_template(project: Project) -> None:
    project.job("kite", KITE)
    assert project.subprocess("validate").returncode == 0
    again = project.subprocess("validate", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert again.returncode == 0 and "1 job valid." in again.stdout, again.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines()}
    assert "vidpipe.cli" in imported
    assert not {"jinja2", "yaml", "jsonschema", "sqlalchemy"} & imported, {
        "jinja2",
        "yaml",
        "jsonschema",
        "sqlalchemy",
    } & imported


def test_validate_sees_an_environment_setting(project: Project) -> None:
    project.job("kite", KITE)
    assert project.cli("validate").exit_code == 0
    result = project.cli("validate", env={"VIDPIPE_MAX_SCENES": "0"})
    assert result.exit_code == 2, result.output
    assert "max_scenes" in result.output


def test_validate_of_a_new_job_file_in_the_folder(project: Project) -> None:
    project.job("kite", KITE)
    assert "1 job valid." in project.cli("validate").output
    project.job("boat", "prompt: A paper boat\nscenes: 1\n")
    assert "2 jobs valid." in project.cli("validate").output
    (project.root / "jobs" / "boat.yaml").unlink()
    assert "1 job valid." in project.cli("validate").output


# -- run ----------------------------------------------------------------------------------


def _run(project: Project) -> dict[str, dict[str, object]]:
    result = project.cli("run", "-q", "--report", "report.json")
    assert result.exit_code == 0, result.output
    return project.jobs_in_report()


def test_an_unchanged_rerun_is_answered_without_sqlalchemy(project: Project) -> None:
    project.job("kite", KITE)
    first = _run(project)["kite"]
    again = project.subprocess(
        "run", "-q", "--report", "report.json", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert again.returncode == 0, again.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines()}
    assert "vidpipe.batch.runner" in imported and "sqlalchemy" not in imported
    job = project.jobs_in_report()["kite"]
    assert (job["status"], job["project_id"], job["provider_calls"]) == (
        "complete",
        first["project_id"],
        0,
    )
    batches = project.cli("batches").output.splitlines()
    assert len([line for line in batches if "1 complete" in line]) == 2


def test_a_changed_template_is_planned_again(project: Project) -> None:
    project.job("kite", KITE)
    first = _run(project)["kite"]
    assert _run(project)["kite"]["project_id"] == first["project_id"]
    project.write("templates/motion.j2", "Slow push-in. {{ scene.video_motion_prompt }}\n")
    changed = _run(project)["kite"]
    assert changed["project_id"] != first["project_id"]
    assert changed["status"] == "complete"


def test_a_deleted_or_changed_output_is_made_again(project: Project) -> None:
    project.job("kite", KITE)
    job = _run(project)["kite"]
    final = project.root / str(job["output"])
    good = final.read_bytes()
    final.unlink()
    _run(project)
    assert final.read_bytes() == good
    final.write_bytes(good[:-4] + b"oops")
    _run(project)
    assert final.read_bytes() == good


def test_a_file_changed_with_its_size_and_time_kept_is_hashed_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Digests are remembered at once here; a file rewritten in place, same size, and its
    # modification time set back, still has a new change time.
    monkeypatch.setattr(usercache, "SETTLED_S", -1.0)
    project.job("kite", KITE)
    job = _run(project)["kite"]
    final = project.root / str(job["output"])
    good = final.read_bytes()
    _run(project)  # the outputs' digests are remembered by their identity now
    before = final.stat()
    with final.open("r+b") as fh:
        fh.seek(len(good) // 2)
        fh.write(bytes(16))
    os.utime(final, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert final.stat().st_size == before.st_size
    assert final.stat().st_mtime_ns == before.st_mtime_ns
    _run(project)
    assert final.read_bytes() == good


# -- stitch -------------------------------------------------------------------------------


def test_stitch_refuses_a_changed_job_after_remembering_it(project: Project) -> None:
    project.job("kite", KITE)
    _run(project)
    for _ in range(2):
        ok = project.cli("stitch", "kite")
        assert ok.exit_code == 0, ok.output
    preview = project.cli("stitch", "kite", "--crossfade", "0")
    assert preview.exit_code == 0, preview.output
    project.job("kite", KITE + "style: noir\n")
    refused = project.cli("stitch", "kite")
    assert refused.exit_code == 2, refused.output
    assert "jobs/kite.yaml changed since project" in refused.output


def test_stitch_follows_a_changed_audio_setting(project: Project) -> None:
    project.job("kite", KITE)
    _run(project)
    assert project.cli("stitch", "kite", "--crossfade", "0").exit_code == 0
    project.job("kite", KITE + "stitch: {audio: false}\n")
    assert project.cli("stitch", "kite", "--crossfade", "0").exit_code == 0
    status = json.loads(project.cli("status", "kite", "--json").output)
    previews = list((project.root / "tmp" / "kite").glob("*/output/preview-crossfade-0.mp4"))
    assert status["status"] == "complete" and len(previews) == 1
    from vidpipe.media import probe

    assert probe(previews[0]).audio_codec is None
