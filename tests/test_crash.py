"""SIGKILL a real `vidpipe run` mid-step, run again: a complete, valid result, nothing truncated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import recorded_artifacts_intact

from vidpipe.artifacts import TMP_MARK
from vidpipe.media import verify

JOB = """\
prompt: A train crosses a desert. A storm gathers. Rain on the windows. The train enters a tunnel. Light at the end.
scenes: 5
clip_duration: 2
stitch: {crossfade: 0.5}
"""


def start(project) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", "-q"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status(project) -> str | None:
    from sqlalchemy.exc import DBAPIError

    if project.backend == "sqlite" and not (project.root / "vidpipe.db").exists():
        return None
    try:
        rows = project.sql("select status from projects")
    except DBAPIError:  # locked, or not made yet
        return None
    return rows[0][0] if rows else None


def files(project, pattern: str) -> list[Path]:
    return sorted((project.root / "tmp").glob(pattern))


def kill_when(project, ready: Callable[[], bool], timeout: float = 120) -> None:
    proc = start(project)
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"vidpipe finished before the kill point: {proc.stderr.read() if proc.stderr else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kill point never reached")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def finish_and_check(project) -> None:
    recorded_artifacts_intact(project)
    result = project.subprocess("run", "--report", "report.json")
    assert result.returncode == 0, result.stderr
    job = project.jobs_in_report()["train"]
    assert job["status"] == "complete"
    info = verify(project.root / job["output"])
    assert info.duration == pytest.approx(5 * 2 - 4 * 0.5, abs=1 / 24)
    recorded_artifacts_intact(project)
    leftovers = [p for p in (project.root / "tmp").rglob("*") if TMP_MARK in p.name]
    assert leftovers == []
    assert project.sql("select count(*) from projects")[0][0] == 1
    # Every keyframe and clip was made once: nothing paid for twice across the crash.
    made = project.sql("select capability, count(*) from generations group by capability")
    assert dict(made) == {"storyboard": 1, "image": 6, "video": 5}


@pytest.mark.slow
def test_killed_during_keyframes(project):
    project.job("train", JOB)
    kill_when(
        project,
        lambda: (
            len(files(project, "*/*/keyframes/*.png")) >= 3
            and not files(project, "*/*/clips/scene_02.mp4")
        ),
    )
    finish_and_check(project)


@pytest.mark.slow
@pytest.mark.both_databases
def test_killed_during_clips(project):
    project.job("train", JOB)
    kill_when(project, lambda: len(files(project, "*/*/clips/*.mp4")) >= 2)
    finish_and_check(project)


@pytest.mark.slow
@pytest.mark.both_databases
def test_killed_during_stitching(project):
    project.job("train", JOB)
    kill_when(project, lambda: status(project) == "stitching")
    assert not files(project, "*/*/output/final.mp4") or status(project) != "complete"
    finish_and_check(project)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_cleanly_then_the_next_run_resumes(project, signum):
    project.job("train", JOB)
    proc = start(project)
    deadline = time.monotonic() + 60
    while not files(project, "*/*/keyframes/*.png"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert f"{signal.Signals(signum).name} received" in err
    assert "Traceback" not in err
    assert status(project) == "stopped"
    recorded_artifacts_intact(project)
    finish_and_check(project)


def test_a_second_sigint_stops_at_once(project):
    project.job("train", JOB)
    proc = start(project)
    deadline = time.monotonic() + 60
    while not files(project, "*/*/keyframes/*.png"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    # 130 from our handler, or the default SIGINT death if it landed during interpreter exit.
    assert proc.returncode in (130, -signal.SIGINT)
    finish_and_check(project)
