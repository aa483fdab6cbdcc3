"""The orchestrator through the CLI, with a recording fake provider and the real local one."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from vidpipe import providers
from vidpipe.artifacts import sha256_file
from vidpipe.media import probe, verify
from vidpipe.testing.fakes import fail_with

FAKE_JOB = """\
prompt: A red kite rises over a green hill. It loops in the wind. It lands in the grass.
provider: fake
scenes: 3
clip_duration: 2
"""


def run(project, *args: str) -> dict:
    result = project.cli("run", "--report", "report.json", *args)
    assert "Traceback" not in result.output
    report = project.report()
    report["exit_code"] = result.exit_code
    report["output"] = result.output
    return report


def db_rows(project, sql: str) -> list[tuple]:
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        return conn.execute(sql).fetchall()


def manifest_of(project, job: str) -> dict:
    report = {j["name"]: j for j in project.report()["jobs"]}
    output = project.root / report[job]["output"]
    return json.loads((output.parent / "manifest.json").read_text())


# -- order, continuity and the cache (fake provider) -----------------------------------------


def test_keyframes_chain_and_clips_are_submitted_as_frames_exist(project, fake):
    project.job("kite", FAKE_JOB)
    report = run(project)
    assert report["exit_code"] == 0, report["output"]
    kinds = [(c.capability, getattr(c.request, "role", None)) for c in fake.history]
    assert kinds == [
        ("storyboard", None),
        ("image", "start"),
        ("image", "end"),
        ("video", None),  # scene 0's clip goes out before scene 1's end frame is made
        ("image", "end"),
        ("video", None),
        ("image", "end"),
        ("video", None),
    ]
    images = fake.calls("image")
    videos = fake.calls("video")
    # Every end frame is conditioned on its scene's start frame ...
    assert images[1].request.reference is not None
    # ... and scene N+1 starts on scene N's end frame.
    assert videos[1].request.first_frame == videos[0].request.last_frame
    assert videos[2].request.first_frame == videos[1].request.last_frame
    job = report["jobs"][0]
    assert job["status"] == "complete"
    assert (job["provider_calls"], job["cached_calls"]) == (8, 0)

    manifest = manifest_of(project, "kite")
    scene0, scene1 = manifest["scenes"][0], manifest["scenes"][1]
    assert scene1["keyframes"]["start"]["source"] == "inherited"
    assert scene1["keyframes"]["start"]["path"] == scene0["keyframes"]["end"]["path"]
    assert scene1["keyframes"]["start"]["sha256"] == scene0["keyframes"]["end"]["sha256"]
    assert manifest["output"]["duration"] == pytest.approx(6.0, abs=1 / 12)


def test_unchanged_rerun_makes_no_calls(project, fake):
    project.job("kite", FAKE_JOB)
    assert run(project)["exit_code"] == 0
    fake.history.clear()
    report = run(project)
    assert report["exit_code"] == 0
    assert fake.history == []
    job = report["jobs"][0]
    assert (job["status"], job["provider_calls"], job["cached_calls"]) == ("complete", 0, 0)
    assert len(db_rows(project, "select id from projects")) == 1


def test_changed_motion_template_only_regenerates_clips(project, fake):
    project.job("kite", FAKE_JOB)
    assert run(project)["exit_code"] == 0
    fake.history.clear()
    builtin = (Path(providers.__file__).parent.parent / "templates" / "motion.j2").read_text()
    project.write("templates/motion.j2", builtin + "\nHandheld, slight shake.\n")
    report = run(project)
    assert report["exit_code"] == 0
    assert [c.capability for c in fake.history] == ["video", "video", "video"]
    job = report["jobs"][0]
    assert job["provider_calls"] == 3
    assert job["cached_calls"] == 1 + 4  # the storyboard and four keyframes


def test_changed_override_regenerates_only_what_depends_on_it(project, fake):
    project.job("kite", FAKE_JOB)
    assert run(project)["exit_code"] == 0

    # The last scene's motion: only its clip.
    fake.history.clear()
    project.job(
        "kite",
        FAKE_JOB
        + "scene_overrides:\n  - index: 2\n    video_motion_prompt: Slow tilt up to the sky.\n",
    )
    assert run(project)["exit_code"] == 0
    assert [c.capability for c in fake.history] == ["video"]
    assert "tilt up" in fake.history[0].request.prompt

    # Scene 1's end frame: its end frame and, through the shared frame, scene 2's; their clips.
    fake.history.clear()
    project.job(
        "kite",
        FAKE_JOB
        + "scene_overrides:\n  - index: 1\n    end_frame_prompt: The kite caught in an old oak tree.\n",
    )
    assert run(project)["exit_code"] == 0
    assert [(c.capability, getattr(c.request, "role", None)) for c in fake.history] == [
        ("image", "end"),
        ("video", None),
        ("image", "end"),
        ("video", None),
    ]
    assert "oak tree" in fake.history[0].request.prompt


def test_another_job_with_the_same_inputs_reuses_every_generation(project, fake):
    project.job("kite", FAKE_JOB)
    assert run(project)["exit_code"] == 0
    fake.history.clear()
    project.job("kite-copy", FAKE_JOB)
    report = run(project)
    jobs = {j["name"]: j for j in report["jobs"]}
    assert fake.history == []
    assert (jobs["kite-copy"]["provider_calls"], jobs["kite-copy"]["cached_calls"]) == (0, 8)


def test_failed_calls_are_not_cached_and_the_rerun_continues(project, fake):
    project.job("kite", FAKE_JOB)
    fake.failures["image"] = [
        fail_with("image model overloaded", when=lambda r: "loops" in r.prompt)
    ]
    report = run(project)
    assert report["exit_code"] == 1
    job = report["jobs"][0]
    assert job["status"] == "failed"
    assert "image model overloaded" in job["error"]
    assert db_rows(project, "select status from projects") == [("failed",)]
    made_before = [(c.capability, getattr(c.request, "role", None)) for c in fake.history]

    fake.history.clear()
    report = run(project)
    assert report["exit_code"] == 0
    # The failed end frame is asked for again; nothing that succeeded is.
    assert [(c.capability, getattr(c.request, "role", None)) for c in fake.history] == [
        ("image", "end"),
        ("video", None),
        ("image", "end"),
        ("video", None),
    ]
    assert ("video", None) in made_before  # scene 0's clip was made (and kept) in the failed run
    assert len(db_rows(project, "select id from projects")) == 1  # the same project, continued


def test_failed_clip_is_resubmitted_then_the_project_fails(project, fake):
    project.job("kite", FAKE_JOB.replace("scenes: 3", "scenes: 2"))
    fake.video_state = lambda request, n: "failed" if "lands" in request.prompt else "complete"
    report = run(project)
    job = report["jobs"][0]
    assert job["status"] == "failed"
    assert "fake failure" in job["error"]
    # A failed operation is resubmitted twice (the base class default) before the scene fails.
    landing = [c for c in fake.calls("video") if "lands" in c.request.prompt]
    assert len(landing) == 3
    statuses = db_rows(
        project,
        'select s.status, c.status from scenes s join video_clips c on c.scene_id = s.id order by s."index"',
    )
    assert statuses == [("video_done", "complete"), ("failed", "failed")]


def test_filtered_clip_leaves_a_gap_and_the_project_completes(project, fake):
    project.job("kite", FAKE_JOB)
    fake.video_state = lambda request, n: (
        "rai_filtered" if "loops" in request.prompt else "complete"
    )
    report = run(project)
    assert report["exit_code"] == 0
    manifest = manifest_of(project, "kite")
    assert manifest["gaps"] == [{"index": 1, "reason": "rai_filtered", "detail": "fake filter"}]
    assert manifest["output"]["duration"] == pytest.approx(4.0, abs=1 / 12)


def test_until_stops_cleanly_and_resume_continues(project, fake):
    project.job("kite", FAKE_JOB)
    report = run(project, "--until", "storyboard")
    assert report["exit_code"] == 0
    assert report["jobs"][0]["status"] == "stopped"
    assert [c.capability for c in fake.history] == ["storyboard"]

    fake.history.clear()
    report = run(project, "--until", "keyframes")
    assert report["jobs"][0]["status"] == "stopped"
    assert [c.capability for c in fake.history] == ["image"] * 4

    fake.history.clear()
    result = project.cli("resume", "kite")
    assert result.exit_code == 0, result.output
    assert "complete: kite" in result.stdout
    assert [c.capability for c in fake.history] == ["video"] * 3
    assert db_rows(project, "select status from projects") == [("complete",)]


def test_submitted_operations_are_polled_until_done(project, fake):
    project.job("kite", FAKE_JOB)
    fake.polls_until_done = 3
    report = run(project)
    assert report["exit_code"] == 0
    # Three polls "running", then done, for each of the three operations.
    assert len(fake.polls) == 3 * 4
    assert len(fake.calls("video")) == 3
    assert report["jobs"][0]["provider_calls"] == 8  # polls are not calls


def test_force_ignores_the_cache(project, fake):
    project.job("kite", FAKE_JOB)
    assert run(project)["exit_code"] == 0
    fake.history.clear()
    report = run(project, "--force")
    assert len(fake.history) == 8
    assert report["jobs"][0]["cached_calls"] == 0
    assert len(db_rows(project, "select id from projects")) == 2


def test_status_and_list_json(project, fake):
    project.job("kite", FAKE_JOB)
    run(project)
    listing = json.loads(project.cli("list", "--json").output)
    assert [(p["job"], p["status"]) for p in listing] == [("kite", "complete")]
    assert set(listing[0]) == {
        "project_id",
        "job",
        "status",
        "created_at",
        "output",
        "cost_usd",
        "versions",
    }
    status = json.loads(project.cli("status", "kite", "--json").output)
    assert status["project_id"] == listing[0]["project_id"]
    assert {"project_id", "job", "status", "error_message", "scenes", "cost", "output"} <= set(
        status
    )
    assert [s["clip"]["status"] for s in status["scenes"]] == ["complete"] * 3
    assert status["output"] == listing[0]["output"]
    assert project.cli("status", "nope").exit_code == 2


# -- the real local provider -----------------------------------------------------------------


def test_init_then_run_makes_a_finished_video(scaffolded):
    result = scaffolded.cli("run", "--report", "report.json")
    assert result.exit_code == 0, result.output
    job = scaffolded.jobs_in_report()["example"]
    assert job["status"] == "complete"
    output = scaffolded.root / job["output"]
    info = verify(output)  # decodes every frame
    assert info.width * 9 == info.height * 16
    assert info.audio_codec == "aac"
    assert info.duration == pytest.approx(12.0, abs=1 / 24)
    assert (output.parent / "manifest.json").is_file()
    assert (output.parent / "storyboard.png").is_file()
    manifest = json.loads((output.parent / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["output"]["path"] == job["output"]
    for scene in manifest["scenes"]:
        for kind in ("start", "end"):
            assert (scaffolded.root / scene["keyframes"][kind]["path"]).is_file()
        clip = scaffolded.root / scene["clip"]["path"]
        assert probe(clip).duration == pytest.approx(4.0, abs=1 / 24)

    started = time.monotonic()
    again = scaffolded.cli("run", "--report", "again.json")
    elapsed = time.monotonic() - started
    assert again.exit_code == 0
    job2 = scaffolded.jobs_in_report("again.json")["example"]
    assert (job2["provider_calls"], job2["status"]) == (0, "complete")
    assert elapsed < max(1.0, job["duration_s"] / 3)


def test_crossfade_change_rerenders_only_the_local_clips(project):
    project.job("fade", "prompt: Waves at night. A lantern. Dawn.\nscenes: 3\n")
    assert project.cli("run").exit_code == 0
    project.job(
        "fade", "prompt: Waves at night. A lantern. Dawn.\nscenes: 3\nstitch: {crossfade: 0.25}\n"
    )
    result = project.cli("run", "--report", "report.json")
    assert result.exit_code == 0, result.output
    job = project.jobs_in_report()["fade"]
    # The local renderer puts keyframes at the crossfade edges (so the stitch copies
    # between the windows): its clips are made again, the storyboard and images are not.
    # (Veo's clips are reused: see test_google.)
    assert job["provider_calls"] == 3
    assert job["cached_calls"] == 1 + 4
    info = verify(project.root / job["output"])
    assert info.duration == pytest.approx(3 * 1.0 - 2 * 0.25, abs=1 / 24)


def test_stitch_crossfade_writes_a_preview_and_final_follows_the_job_file(project):
    project.job("fade", "prompt: Waves at night. A lantern. Dawn.\nscenes: 3\n")
    assert project.cli("run", "--report", "report.json").exit_code == 0
    output = project.root / project.jobs_in_report()["fade"]["output"]
    before = sha256_file(output)
    assert probe(output).duration == pytest.approx(3.0, abs=1 / 24)

    result = project.cli("stitch", "fade", "--crossfade", "0.5")
    assert result.exit_code == 0, result.output
    preview = output.parent / "preview-crossfade-0.5.mp4"
    assert probe(preview).duration == pytest.approx(2.0, abs=1 / 24)
    assert "stitch: {crossfade: 0.5}" in result.output and "jobs/fade.yaml" in result.output
    # final.mp4 and its manifest are the job file's, untouched.
    assert sha256_file(output) == before
    manifest = json.loads((output.parent / "manifest.json").read_text())
    assert manifest["stitch"]["crossfade"] == 0

    again = project.cli("run", "--report", "again.json")
    assert again.exit_code == 0, again.output
    job = project.jobs_in_report("again.json")["fade"]
    assert (job["status"], job["provider_calls"], job["cached_calls"]) == ("complete", 0, 0)
    assert sha256_file(output) == before

    # Without --crossfade, `stitch` rebuilds final.mp4 as the job file says.
    result = project.cli("stitch", "fade")
    assert result.exit_code == 0, result.output
    assert probe(output).duration == pytest.approx(3.0, abs=1 / 24)


def test_run_restitches_a_final_video_that_no_longer_matches(project):
    project.job("fade", "prompt: Waves at night. A lantern. Dawn.\nscenes: 2\n")
    assert project.cli("run", "--report", "report.json").exit_code == 0
    output = project.root / project.jobs_in_report()["fade"]["output"]
    before = sha256_file(output)
    output.write_bytes(b"edited by hand")
    result = project.cli("run", "--report", "again.json")
    assert result.exit_code == 0, result.output
    job = project.jobs_in_report("again.json")["fade"]
    assert (job["status"], job["provider_calls"]) == ("complete", 0)
    assert sha256_file(output) == before


def test_output_copy(project):
    project.job("copy", "prompt: A quiet harbour.\nscenes: 1\noutput: ../out/harbour.mp4\n")
    assert project.cli("run").exit_code == 0
    copy = project.root / "out" / "harbour.mp4"
    assert verify(copy).duration == pytest.approx(1.0, abs=1 / 24)
