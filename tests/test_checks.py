"""Compile-time checks: refused by `validate` and by `run` before any provider call,
each at `path:line:column`, exit 2."""

from __future__ import annotations

import io
from pathlib import Path

from conftest import refused
from PIL import Image

SUMMARY_ONLY = "nothing was run"


def png(path: Path, size: tuple[int, int]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())


def both_refuse(project, *problems: str) -> None:
    """`validate` and `run` refuse with exactly these problems; the run creates nothing."""
    refused(project.cli("validate"), *problems)
    refused(project.cli("run"), *problems)
    assert not (project.root / "vidpipe.db").exists()
    assert not (project.root / "tmp").exists()


def test_crossfade_longer_than_half_the_shortest_clip(project):
    project.job("fade", "prompt: Waves.\nscenes: 2\nstitch:\n  crossfade: 0.6\n")
    both_refuse(
        project,
        "jobs/fade.yaml:4:14: stitch.crossfade 0.6 s is longer than half the shortest clip "
        "(clips are 1 s); use at most 0.5",
    )


def test_crossfade_counts_scene_durations(project):
    project.job(
        "fade",
        "prompt: Waves.\nscenes: 2\nclip_duration: 4\nstitch: {crossfade: 1}\n"
        "scene_overrides:\n  - index: 1\n    duration: 1\n",
    )
    both_refuse(
        project,
        "jobs/fade.yaml:4:21: stitch.crossfade 1 s is longer than half the shortest clip "
        "(scene 1's clip is 1 s); use at most 0.5",
    )


def test_nan_and_infinity_are_refused(project):
    project.job("nan", "prompt: Waves.\nstitch:\n  crossfade: .nan\n")
    project.job("inf", "prompt: Waves.\nduration: .inf\n")
    both_refuse(
        project,
        "jobs/inf.yaml:2:11: .inf is not a finite number; write a number such as 0.5",
        "jobs/nan.yaml:3:14: .nan is not a finite number; write a number such as 0.5",
    )


def test_nan_flags_are_refused(project):
    project.job("ok", "prompt: Waves.\nscenes: 1\n")
    for args in (("run", "--max-cost", "nan"), ("run", "--max-cost", "inf")):
        result = project.cli(*args)
        assert result.exit_code == 2 and "is not a finite number" in result.output
    assert not (project.root / "vidpipe.db").exists()
    result = project.cli("stitch", "ok", "--crossfade", "nan")
    assert result.exit_code == 2 and "is not a finite number" in result.output


def test_two_jobs_with_one_output(project):
    project.job("a", "prompt: Waves.\noutput: ../out/film.mp4\n")
    project.job("b", "prompt: Dunes.\noutput: ../out/film.mp4\n")
    project.job("m", "prompt: Hills.\noutput: ../out/m.mp4\nmatrix:\n  style: [noir, anime]\n")
    both_refuse(
        project,
        "jobs/a.yaml:2:9: output 'out/film.mp4' is written by 2 jobs of this batch (a, b); "
        "give each job its own output",
        "jobs/b.yaml:2:9: output 'out/film.mp4' is written by 2 jobs of this batch (a, b); "
        "give each job its own output",
        "jobs/m.yaml:2:9: output 'out/m.mp4' is written by 2 jobs of this batch "
        "(m-noir, m-anime); give each job its own output",
    )


def test_output_over_what_the_project_owns(project):
    project.job("db", "prompt: Waves.\noutput: ../vidpipe.db\n")
    project.job("job", "prompt: Waves.\noutput: other.yaml\n")
    project.job("other", "prompt: Waves.\n")
    project.job("dot", "prompt: Waves.\noutput: .\n")
    project.job("config", "prompt: Waves.\noutput: ../vidpipe.yaml\n")
    both_refuse(
        project,
        "jobs/config.yaml:2:9: output 'vidpipe.yaml' would overwrite the configuration "
        "vidpipe.yaml; name a new file, such as out/config.mp4",
        "jobs/db.yaml:2:9: output 'vidpipe.db' would overwrite the database vidpipe.db; "
        "name a new file, such as out/db.mp4",
        "jobs/dot.yaml:2:9: output 'jobs' would overwrite the folder jobs; "
        "name a new file, such as out/dot.mp4",
        "jobs/job.yaml:2:9: output 'jobs/other.yaml' would overwrite the job file "
        "jobs/other.yaml; name a new file, such as out/job.mp4",
    )


def test_override_image_of_another_shape(project):
    png(project.root / "jobs" / "square.png", (300, 300))
    project.job(
        "img",
        "prompt: Waves.\nscenes: 1\nscene_overrides:\n  - index: 0\n    start_image: square.png\n",
    )
    both_refuse(
        project,
        "jobs/img.yaml:5:18: start_image is 300x300 (1.000:1), but the job is 16:9 (1.778:1); "
        "use an image of that shape, or write `start_image: {path: …, fit: pad}` (or fit: crop)",
    )
    # With fit, the image is letterboxed to the job's frame and the job runs.
    project.job(
        "img",
        "prompt: Waves.\nscenes: 1\nscene_overrides:\n  - index: 0\n"
        "    start_image: {path: square.png, fit: pad}\n",
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    frame = next((project.root / "tmp" / "img").rglob("scene_00_start.png"))
    with Image.open(frame) as img:
        width, height = img.size
    assert abs(width / height - 16 / 9) < 0.01
