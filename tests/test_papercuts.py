"""Small things that got in a new user's way in the first week, each pinned by a test."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conftest import refused

from vidpipe.testing.fakes import fail_with


def test_an_unquoted_aspect_ratio_says_to_quote_it(project):
    # YAML 1.1 reads 16:9 as the base-60 number 969 (and 9:16 as 556).
    project.job("a", "prompt: x\naspect_ratio: 16:9\n")
    project.job("b", "prompt: x\nmatrix:\n  aspect_ratio: [9:16, '16:9']\n")
    project.job("c", "prompt: x\nstyle: 4:30\n")  # any N:M where text is expected
    refused(
        project.cli("validate"),
        "jobs/a.yaml:2:15: aspect_ratio must be one of 16:9, 9:16, 1:1 (got 969); "
        'YAML reads an unquoted 16:9 as a base-60 number: quote it: aspect_ratio: "16:9"',
        "jobs/b.yaml:3:18: aspect_ratio must be one of 16:9, 9:16, 1:1 (got 556); "
        'YAML reads an unquoted 9:16 as a base-60 number: quote it: aspect_ratio: "9:16"',
        "jobs/c.yaml:2:8: style must be text (got int 270); "
        'YAML reads an unquoted 4:30 as a base-60 number: quote it: style: "4:30"',
    )


def test_a_template_error_shared_by_many_jobs_is_reported_once_with_a_did_you_mean(project):
    for name in ("a", "b", "c"):
        project.job(name, f"prompt: {name}\nscenes: 1\n")
    project.write("templates/motion.j2", "Move.\n{{ scene.start_frame_promt }}\n")
    refused(
        project.cli("validate"),
        "templates/motion.j2:2: undefined variable scene.start_frame_promt: 'dict object' has "
        "no attribute 'start_frame_promt'; did you mean scene.start_frame_prompt? "
        "(3 jobs: a, b, c)",
    )
    # An undefined top-level name gets one too; one job keeps naming its file.
    project.write("templates/motion.j2", "{{ scene_cuont }}\n")
    refused(
        project.cli("validate", "jobs/a.yaml"),
        "templates/motion.j2:1: undefined variable 'scene_cuont'; did you mean scene_count?; "
        "templates see job, vars and, in scene templates, scene, prev_scene, next_scene, "
        "scene_count, style_guide (job a, jobs/a.yaml)",
    )


def test_junit_properties_never_say_none(project, fake):
    project.job("ok", "prompt: A lantern.\nscenes: 1\n")
    project.job("kite", "prompt: A kite.\nprovider: fake\nscenes: 1\n")
    fake.failures["storyboard"] = [fail_with("no storyboard today", times=None)]
    result = project.cli("run", "-q", "--junit", "junit.xml")
    assert result.exit_code == 1, result.output
    text = (project.root / "junit.xml").read_text()
    assert "None" not in text
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    failed = {
        p.get("name"): p.get("value") for p in suite.iterfind("testcase[@name='kite']//property")
    }
    assert "output" not in failed and failed["status"] == "failed"
    ok = {p.get("name"): p.get("value") for p in suite.iterfind("testcase[@name='ok']//property")}
    assert ok["output"].endswith("final.mp4")


def test_an_invalid_stitch_crossfade_exits_2_and_changes_nothing(project):
    project.job("harbour", "prompt: Dawn over a quiet harbour. A boat leaves.\nscenes: 2\n")
    assert project.cli("run", "-q", "--report", "report.json").exit_code == 0
    output = project.root / project.jobs_in_report()["harbour"]["output"]
    before = output.read_bytes()
    for value, message in (
        ("nan", "Invalid value for '--crossfade': 'nan' is not a finite number"),
        ("-1", "Invalid value for '--crossfade': -1.0 is not in the range 0<=x<=10."),
        ("0.9", "a 0.9s crossfade is too long: it may be at most half the shortest clip"),
    ):
        result = project.cli("stitch", "harbour", "--crossfade", value)
        assert result.exit_code == 2, (value, result.output)
        assert message in result.stderr and "Traceback" not in result.output
    assert output.read_bytes() == before
    assert not list(output.parent.glob(".*part-*"))


def test_resume_takes_verbose_and_quiet_like_run(project):
    project.job("harbour", "prompt: Dawn over a quiet harbour.\nscenes: 1\n")
    assert project.cli("run", "-q", "--until", "storyboard").exit_code == 0
    result = project.subprocess("resume", "harbour", "-v")
    assert result.returncode == 0, result.stderr
    assert "vidpipe.engine harbour: calling scene 0 start frame (local-panels-1)" in result.stderr
    assert "harbour: complete  ($0.00)" in result.stderr  # finished: no time left shown
    project.job("harbour", "prompt: Dawn over a quiet harbour.\nscenes: 1\nstyle: noir\n")
    assert project.cli("run", "-q", "--until", "storyboard").exit_code == 0
    quiet = project.subprocess("resume", "harbour", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
