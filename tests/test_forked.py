"""`run -j N` on the local renderer: jobs in forked processes, as a user runs them.

Real `vidpipe run` subprocesses: every job done once and each generation made once,
the same films as `-j 1`, progress of every job on the terminal, signals that reach the
job processes, and a dead job process failing its own job alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, recorded_artifacts_intact

from vidpipe.media import verify

JOB = """\
prompt: "A {what} crosses a desert. A storm gathers. Rain on the windows."
scenes: {scenes}
"""


def jobs(project: Project, count: int, scenes: int = 2) -> list[str]:
    names = [f"trip-{k}" for k in range(count)]
    for k, name in enumerate(names):
        project.job(name, JOB.format(what=f"train number {k}", scenes=scenes))
    return names


def runners(project: Project) -> set[str]:
    """The runner of every pipeline run: host:pid:token."""
    return {row[0] for row in project.sql("select runner from pipeline_runs")}


def processes_in(root: Path) -> list[int]:
    """Live processes (not zombies) whose working folder is `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != root:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def start(project: Project, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", *args],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"vidpipe finished too soon: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the point to act at was never reached")
        time.sleep(0.01)


def keyframe_folders(project: Project) -> int:
    return len({p.parent for p in (project.root / "tmp").glob("*/*/keyframes/*.png")})


skip_without_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="job processes are forked (Linux here)"
)
pytestmark = skip_without_fork


@pytest.mark.both_databases
def test_local_jobs_run_in_job_processes_and_make_each_generation_once(project, tmp_path):
    names = jobs(project, 4)
    # Two files asking for the same film: whichever process gets there second reuses it.
    project.job("trip-copy", JOB.format(what="train number 0", scenes=2))
    result = project.subprocess("run", "-q", "-j", "2", "--report", "report.json")
    assert result.returncode == 0, result.stderr
    report = project.report()
    assert report["totals"]["by_status"] == {"complete": 5}
    # Two job processes did the work, neither of them the command's own process.
    assert len(runners(project)) == 2
    calls = report["totals"]["provider_calls"]
    assert calls == len(project.sql("select key from generations")) == 4 * 6
    assert report["totals"]["cached_calls"] == 6
    recorded_artifacts_intact(project)

    # The same films as one job at a time, in threads of one process.
    other = Project(tmp_path / "serial", project.database)
    other.root.mkdir()
    (other.root / "vidpipe.yaml").write_text((project.root / "vidpipe.yaml").read_text())
    if project.backend == "sqlite":
        jobs(other, 4)
        serial = other.subprocess("run", "-q", "-j", "1", "--report", "report.json")
        assert serial.returncode == 0, serial.stderr
        assert len(runners(other)) == 1
        for name in names:
            a = project.root / project.jobs_in_report()[name]["output"]
            b = other.root / other.jobs_in_report()[name]["output"]
            assert a.read_bytes() == b.read_bytes(), name


def test_every_jobs_progress_reaches_the_terminal_once(project):
    names = jobs(project, 3)
    result = project.subprocess("run", "-j", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    for name in names:
        assert sum(line.endswith(f"{name}: started") for line in lines) == 1, result.stderr
        assert sum(f"{name}: complete" in line for line in lines) == 1, result.stderr
        assert any(f"{name}: clips 2/2" in line for line in lines), result.stderr
    assert lines[-1].startswith("[3/3]") or "3 complete" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_every_job_process_cleanly_and_the_next_run_resumes(project, signum):
    jobs(project, 4, scenes=4)
    proc = start(project, "-q", "-j", "2")
    wait_for(lambda: keyframe_folders(project) >= 2, proc)
    if signum == signal.SIGINT:
        # Ctrl-C: the terminal signals the whole process group.
        for pid in [proc.pid, *children_of(proc.pid)]:
            os.kill(pid, signum)
    else:
        proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert err.count(f"{signal.Signals(signum).name} received") == 1, err
    assert "Traceback" not in err
    time.sleep(0.2)
    assert processes_in(project.root) == []
    statuses = {row[0] for row in project.sql("select status from projects")}
    assert "running" not in statuses and "stopped" in statuses
    recorded_artifacts_intact(project)
    again = project.subprocess("run", "-q", "-j", "2", "--report", "report.json")
    assert again.returncode == 0, again.stderr
    assert project.report()["totals"]["by_status"] == {"complete": 4}
    # What the stopped run made is kept: the next run makes only the rest.
    assert project.report()["totals"]["provider_calls"] < 4 * 10
    assert len(project.sql("select key from generations")) == 4 * 10


def test_a_killed_run_takes_its_job_processes_with_it(project):
    jobs(project, 4, scenes=4)
    proc = start(project, "-q", "-j", "2")
    wait_for(lambda: keyframe_folders(project) >= 2, proc)
    assert len(children_of(proc.pid)) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while processes_in(project.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_in(project.root) == []  # no orphan goes on working (or leasing)
    recorded_artifacts_intact(project)
    again = project.subprocess("run", "-q", "-j", "2", "--report", "report.json")
    assert again.returncode == 0, again.stderr
    assert project.report()["totals"]["by_status"] == {"complete": 4}
    for job in project.report()["jobs"]:
        assert verify(project.root / job["output"]).duration == pytest.approx(4.0, abs=0.05)


def test_a_job_process_that_dies_fails_its_job_alone(project):
    jobs(project, 4, scenes=4)
    proc = start(project, "-q", "-j", "2", "--report", "report.json")
    wait_for(lambda: keyframe_folders(project) >= 2, proc)
    victim = children_of(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    report = project.jobs_in_report()
    failed = [j for j in report.values() if j["status"] == "failed"]
    assert len(failed) == 1, report
    assert failed[0]["error"] == (
        "the process running this job was killed by signal 9 before it finished; run again "
        "to resume it (what it made is kept)"
    )
    # The other process took the remaining jobs.
    assert sorted(j["status"] for j in report.values()).count("complete") == 3
    recorded_artifacts_intact(project)
    again = project.subprocess("run", "-q", "--report", "report.json")
    assert again.returncode == 0, again.stderr
    assert project.report()["totals"]["by_status"] == {"complete": 4}


def allowed_cores(pid: int) -> set[int] | None:
    """The cores process `pid` may run on (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    listed = next(line for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
    cores: set[int] = set()
    for part in listed.split(":")[1].strip().split(","):
        first, _, last = part.partition("-")
        cores.update(range(int(first), int(last or first) + 1))
    return cores


def job_process_cores(proc: subprocess.Popen[str]) -> dict[int, set[int]]:
    """Each job process of the run `proc` and the cores it last had, seen until it ends."""
    seen: dict[int, set[int]] = {}
    while proc.poll() is None:
        for child in children_of(proc.pid):
            cores = allowed_cores(child)
            if cores is not None:
                seen[child] = cores
        time.sleep(0.005)
    return seen


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores to place jobs on")
def test_a_job_process_per_core_keeps_to_its_own_core(project):
    # One job process per core: each is kept to a core of its own (left to the scheduler,
    # x264's threads of both processes wandered across both cores and waited on each
    # other), and only cores the run was given are handed out.
    given = sorted(os.sched_getaffinity(0))[:2]
    jobs(project, 4, scenes=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", "-q", "-j", "2"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, given),
    )
    placed = job_process_cores(proc)
    assert proc.returncode == 0, proc.communicate()
    assert sorted(placed.values(), key=min) == [{given[0]}, {given[1]}]


def test_more_job_processes_than_cores_share_the_cores_they_were_given(project):
    one = min(os.sched_getaffinity(0))
    jobs(project, 3, scenes=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", "-q", "-j", "2", "--report", "report.json"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {one}),
    )
    placed = job_process_cores(proc)
    assert proc.returncode == 0, proc.communicate()
    assert len(placed) == 2
    assert all(cores == {one} for cores in placed.values())
    assert project.report()["totals"]["by_status"] == {"complete": 3}
