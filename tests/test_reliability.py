"""Crash safety, concurrent runners and hostile input through `vidpipe run` (real processes)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
from conftest import recorded_artifacts_intact

from vidpipe.artifacts import TMP_MARK
from vidpipe.media import verify

BATCH = {
    "harbour": "prompt: Fog over a harbour. A bell rings. Boats leave at dawn.\nscenes: 3\n",
    "desert": "prompt: A caravan crosses dunes. Wind lifts the sand.\nscenes: 2\nstitch: {crossfade: 0.25}\n",
    "forest": "prompt: A deer drinks from a stream. It looks up. It runs.\nscenes: 3\naspect_ratio: '9:16'\n",
}
EXPECTED = {"harbour": 3.0, "desert": 2 * 1.0 - 0.25, "forest": 3.0}


def write_batch(project) -> None:
    for name, text in BATCH.items():
        project.job(name, text)


def popen(project, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", "-q", *args],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def final_run_is_complete(project) -> dict:
    result = project.subprocess("run", "--report", "report.json")
    assert result.returncode == 0, result.stderr
    jobs = project.jobs_in_report()
    for name, seconds in EXPECTED.items():
        assert jobs[name]["status"] == "complete"
        assert verify(project.root / jobs[name]["output"]).duration == pytest.approx(
            seconds, abs=1 / 24
        )
    recorded_artifacts_intact(project)
    assert [p for p in (project.root / "tmp").rglob("*") if TMP_MARK in p.name] == []
    return jobs


# -- SIGKILL at seeded random moments ----------------------------------------------------------

KILL_POINTS = 20


@pytest.mark.slow
def test_sigkill_at_random_moments_then_a_final_run_completes(project):
    write_batch(project)
    rng = random.Random(20261126)
    # Time a whole uninterrupted batch elsewhere first, to spread kills across all of it.
    probe = project.root.parent / "probe"
    probe.mkdir()
    (probe / "vidpipe.yaml").write_text((project.root / "vidpipe.yaml").read_text())
    (probe / "jobs").mkdir()
    for name, text in BATCH.items():
        (probe / "jobs" / f"{name}.yaml").write_text(text)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "vidpipe", "run", "-q", "-j", "3"], cwd=probe, check=True)
    full = time.monotonic() - started

    killed = 0
    cycles = 0
    finished = False
    while killed < KILL_POINTS:
        cycles += 1
        assert cycles < KILL_POINTS * 3, "the batch keeps finishing before the kill point"
        if finished or cycles % 7 == 0:
            # Start over from nothing when a run got to the end (every later run would be
            # served from the cache and finish before its kill point) and now and then, so
            # kills land in every phase.
            for path in ("vidpipe.db", "vidpipe.db-wal", "vidpipe.db-shm"):
                (project.root / path).unlink(missing_ok=True)
            subprocess.run(["rm", "-rf", str(project.root / "tmp")], check=True)
        proc = popen(project, "-j", "3")
        time.sleep(rng.uniform(0.2, max(0.5, full * 0.9)))
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        recorded_artifacts_intact(project)
    final_run_is_complete(project)


# -- two runners at once -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.both_databases
def test_two_concurrent_runners_make_each_generation_once(project):
    write_batch(project)
    first = popen(project, "-j", "2", "--report", "a.json")
    time.sleep(0.1)
    second = popen(project, "-j", "2", "--report", "b.json")
    out_a = first.communicate(timeout=300)
    out_b = second.communicate(timeout=300)
    assert first.returncode == 0, out_a[1]
    assert second.returncode == 0, out_b[1]
    a, b = project.jobs_in_report("a.json"), project.jobs_in_report("b.json")
    for name in BATCH:
        assert a[name]["status"] == b[name]["status"] == "complete"
        assert a[name]["project_id"] == b[name]["project_id"]
    generations = project.sql("select count(*) from generations")[0][0]
    projects = project.sql("select count(*) from projects")[0][0]
    made = sum(j["provider_calls"] for j in a.values()) + sum(
        j["provider_calls"] for j in b.values()
    )
    # One storyboard, 1 + scenes images and scenes clips per job: what one runner alone makes.
    one_runner = sum(1 + (1 + n) + n for n in (3, 2, 3))
    assert generations == made == one_runner
    assert projects == len(BATCH)
    recorded_artifacts_intact(project)


def test_a_new_database_file_another_runner_is_writing_is_waited_for(project):
    """Shards of a CI matrix on one new SQLite file: while one runner writes the new file,
    another switching it to WAL got "database is locked" at once (SQLite does not wait
    busy_timeout there) and failed, blaming a write held for 30 s."""
    import sqlite3

    project.job("shard", "prompt: one shard of a matrix\nscenes: 1\n")
    other = sqlite3.connect(project.root / "vidpipe.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a write in progress on the new, empty file
    proc = popen(project, "--until", "storyboard")
    time.sleep(1.5)  # vidpipe is waiting on the file by now
    other.execute("ROLLBACK")
    other.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "locked" not in err
    assert project.sql("select status from projects") == [("stopped",)]


# -- hostile input through run: refused before anything is created ----------------------------

Case = namedtuple("Case", "files expected")

HOSTILE = {
    "malformed-yaml": Case(
        {"jobs/a.yaml": b"prompt: [unclosed\n"}, "jobs/a.yaml:2:1: invalid YAML"
    ),
    "python-tag": Case(
        {"jobs/a.yaml": b'prompt: !!python/object/apply:os.system ["touch pwned"]\n'},
        "jobs/a.yaml:1:9: tag !!python/object/apply:os.system is not allowed",
    ),
    "alias-bomb": Case(
        {
            "jobs/a.yaml": (
                b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                + b"".join(
                    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n".encode()
                    for p, n in zip("abcdefgh", "bcdefghi", strict=True)
                )
                + b"prompt: boom\n"
            )
        },
        "alias bomb",
    ),
    "non-utf8": Case(
        {"jobs/a.yaml": b"prompt: caf\xe9\n"}, "jobs/a.yaml:1:12: file is not UTF-8 text"
    ),
    "unknown-key": Case(
        {"jobs/a.yaml": b"prompt: x\npromt: y\n"}, "jobs/a.yaml:2:1: unknown key 'promt'"
    ),
    "output-escape": Case(
        {"jobs/a.yaml": b"prompt: x\noutput: ../../elsewhere.mp4\n"}, "leaves the project"
    ),
    "absolute-output": Case(
        {"jobs/a.yaml": b"prompt: x\noutput: /tmp/x.mp4\n"}, "must be relative"
    ),
    "template-escape": Case(
        {"jobs/a.yaml": b"prompt: x\ntemplates: {motion: ../../../etc/passwd}\n"},
        "leaves the project",
    ),
    "sandbox": Case(
        {
            "jobs/a.yaml": b"prompt: x\n",
            "templates/motion.j2": b"{{ cycler.__init__.__globals__.os.system('touch pwned') }}\n",
        },
        "not allowed in the template sandbox",
    ),
    "fake-image": Case(
        {
            "jobs/a.yaml": b"prompt: x\nscene_overrides: [{index: 0, start_image: fake.png}]\n",
            "jobs/fake.png": b"not a png",
        },
        "is not a readable PNG or JPEG image",
    ),
    "duplicate-names": Case(
        {"jobs/a.yaml": b"prompt: x\n", "jobs/b.yaml": b"name: a\nprompt: y\n"},
        "used more than once",
    ),
    "unknown-provider": Case(
        {"jobs/a.yaml": b"prompt: x\nprovider: acme\n"}, "unknown provider 'acme'"
    ),
    "too-many-scenes": Case({"jobs/a.yaml": b"prompt: x\nscenes: 99\n"}, "more than max_scenes"),
    "empty-file": Case({"jobs/a.yaml": b""}, "file is empty"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_through_run_creates_nothing(project, case):
    for rel, data in HOSTILE[case].files.items():
        path = project.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    started = time.monotonic()
    result = project.subprocess("run", timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stderr
    assert HOSTILE[case].expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "nothing was run" in result.stderr or "Error:" in result.stderr
    assert not (project.root / "vidpipe.db").exists()
    assert not (project.root / "tmp").exists()
    assert not (project.root / "pwned").exists()


# -- resource checks ---------------------------------------------------------------------------

DiskUsage = namedtuple("DiskUsage", "total used free")


def test_low_disk_warns_and_too_little_refuses(project, monkeypatch):
    project.job("a", "prompt: A quiet harbour.\nscenes: 1\n")
    monkeypatch.setattr("shutil.disk_usage", lambda _p: DiskUsage(10**12, 10**12 - 10**9, 10**9))
    result = project.cli("run")
    assert result.exit_code == 0
    assert "warning: only 953.7 MB free where artifacts are written" in result.stderr

    project.job("b", "prompt: A long film.\nscenes: 15\nclip_duration: 8\nresolution: 1080p\n")
    monkeypatch.setattr("shutil.disk_usage", lambda _p: DiskUsage(10**12, 10**12 - 10**7, 10**7))
    result = project.cli("run")
    assert result.exit_code == 2
    assert "not enough free disk for this batch" in result.stderr
    assert "Traceback" not in result.output


# -- integrity on resume -----------------------------------------------------------------------


def test_a_damaged_artifact_is_made_again(project):
    project.job("a", "prompt: Fog over a harbour. A bell rings.\nscenes: 2\n")
    assert project.cli("run", "--until", "keyframes").exit_code == 0
    frame = next((project.root / "tmp").glob("a/*/keyframes/scene_00_end.png"))
    good = frame.read_bytes()
    frame.write_bytes(good[: len(good) // 2])  # truncated behind vidpipe's back
    result = project.cli("run", "--report", "report.json")
    assert result.exit_code == 0, result.output
    job = project.jobs_in_report()["a"]
    assert job["status"] == "complete"
    assert frame.read_bytes() == good  # redrawn (the local provider is deterministic)
    recorded_artifacts_intact(project)
    assert isinstance(Path(job["output"]), Path)
