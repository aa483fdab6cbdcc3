"""Hostile input and hostile conditions: each case with the files that cause it.

Every case ends one of two ways: refused with exit 2 and a sentence (nothing run), or the
job it hits fails alone while the rest of the batch completes and the report, JUnit file
and batch row are written. Nothing leaks a credential; nothing is paid for twice.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from vidpipe.testing.fakes import SCRIPT

FAKE = """\
prompt: {prompt}
provider: fake
scenes: 2
clip_duration: 1
"""


def fake_job(project, name: str, prompt: str = "A kite over a hill. It lands.") -> None:
    project.job(name, FAKE.format(prompt=prompt))


def db(project, sql: str) -> list[tuple]:
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        return conn.execute(sql).fetchall()


def db_text(project) -> str:
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        return "\n".join(conn.iterdump())


def calls(capability: str) -> int:
    return len(SCRIPT.calls(capability))


def one_job_calls() -> dict[str, int]:
    """The provider calls of one two-scene fake job: storyboard, 3 frames, 2 clips."""
    return {"storyboard": 1, "image": 3, "video": 2}


def made() -> dict[str, int]:
    return {c: calls(c) for c in ("storyboard", "image", "video")}


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def finished_batches(project) -> list[str]:
    return [row[0] for row in db(project, "select status from batches")]


# -- secrets ----------------------------------------------------------------------------------


def test_an_exception_quoting_the_api_key_never_reaches_db_report_junit_or_logs(
    project, fake, monkeypatch
):
    # A key with a typographic apostrophe pasted into it: the HTTP layer refuses the header
    # and its exception quotes the whole value (as bytes).
    key = "AIzaSyD-secret’key-0123456789"
    monkeypatch.setenv("GOOGLE_API_KEY", key)

    def leak(request):
        if "leaky" in request.prompt:
            return ValueError(f"Invalid header value {key.encode()!r}")
        return None

    fake.failures["image"] = [leak]
    fake_job(project, "leaky", "A leaky kite. It lands.")
    fake_job(project, "fine")
    result = project.cli("run", "-v", "--report", "r.json", "--junit", "j.xml")
    assert result.exit_code == 1, result.output
    jobs = project.jobs_in_report("r.json")
    assert jobs["fine"]["status"] == "complete"
    assert jobs["leaky"]["status"] == "failed"
    assert jobs["leaky"]["error"].startswith(
        "internal error: ValueError: Invalid header value b'***'"
    )
    assert "\n" not in jobs["leaky"]["error"]
    logs = list((project.root / "tmp").rglob("error.log"))
    assert len(logs) == 1 and "ValueError" in logs[0].read_text()
    escaped = repr(key.encode())[2:-1]
    texts = {
        "database": db_text(project),
        "report": (project.root / "r.json").read_text(),
        "junit": (project.root / "j.xml").read_text(),
        "output": result.output,
        "error.log": logs[0].read_text(),
    }
    for where, text in texts.items():
        assert key not in text and escaped not in text, where
        assert "secret" not in text, where
    assert "***" in texts["error.log"]
    assert finished_batches(project) == ["failed"]


def test_the_database_password_is_masked_in_messages(project):
    result = project.cli("list", "--db", "postgresql+psycopg://me:hunter2-long@127.0.0.1:1/x")
    assert result.exit_code == 2
    assert "hunter2-long" not in result.output
    assert "Traceback" not in result.output


# -- isolation ----------------------------------------------------------------------------------


def test_broken_compressed_data_under_valid_checksums_is_refused_at_validate(project):
    (project.root / "jobs" / "frames").mkdir()
    (project.root / "jobs" / "frames" / "broken.png").write_bytes(png(64, 36, b"\x78\x9cnot zlib"))
    project.job(
        "broken",
        "prompt: A kite.\nscenes: 1\nscene_overrides:\n  - {index: 0, start_image: frames/broken.png}\n",
    )
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "image 'frames/broken.png' is not a readable PNG or JPEG image" in result.output


def test_a_decompression_bomb_is_refused_from_its_header(project):
    (project.root / "jobs" / "frames").mkdir()
    # 20000 × 20000 pixels in a few bytes: never decoded.
    (project.root / "jobs" / "frames" / "bomb.png").write_bytes(
        png(20000, 20000, zlib.compress(b"\0" * 1000))
    )
    project.job(
        "bomb",
        "prompt: A kite.\nscenes: 1\nscene_overrides:\n  - {index: 0, start_image: frames/bomb.png}\n",
    )
    result = project.cli("validate")
    assert result.exit_code == 2, result.output
    assert "image 'frames/bomb.png' has more pixels than the limit of 40,000,000" in result.output


def test_the_pixel_limit_is_configurable(project):
    (project.root / "vidpipe.yaml").write_text(
        project.root.joinpath("vidpipe.yaml").read_text() + "limits: {image_pixels: 1000}\n"
    )
    (project.root / "jobs" / "frames").mkdir()
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (1, 2, 3)).save(buf, format="PNG")
    (project.root / "jobs" / "frames" / "a.png").write_bytes(buf.getvalue())
    project.job(
        "big",
        "prompt: A kite.\nscenes: 1\nscene_overrides:\n  - {index: 0, start_image: frames/a.png}\n",
    )
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "image 'frames/a.png' is 64×36 = 2,304 pixels, more than the limit of 1,000" in (
        result.output
    )


def test_a_lone_surrogate_in_a_prompt_is_refused_where_it_is(project):
    project.job("odd", 'prompt: "A kite \\udc80 over a hill."\n')
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "jobs/odd.yaml:1:9: \\udc80 is not a character (a lone surrogate)" in result.output


def test_odd_bytes_in_an_environment_value_are_refused(project):
    env = {**os.environ, "VIDPIPE_DEFAULTS__STYLE": b"noir\xff".decode("utf-8", "surrogateescape")}
    project.job("kite", "prompt: A kite.\n")
    result = subprocess.run(
        [sys.executable, "-m", "vidpipe", "validate"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "VIDPIPE_DEFAULTS__STYLE holds bytes that are not UTF-8 text (\\udcff)" in result.stderr
    assert "Traceback" not in result.stderr


def test_odd_bytes_in_a_job_file_name_are_a_clear_problem(project):
    name = b"kite\xff.yaml".decode("utf-8", "surrogateescape")
    (project.root / "jobs" / name).write_text("prompt: A kite.\n")
    result = subprocess.run(
        [sys.executable, "-m", "vidpipe", "validate"],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "name" in result.stderr


def test_an_overflowing_lease_is_refused(project):
    project.job("kite", "prompt: A kite.\n")
    result = project.cli("run", env={"VIDPIPE_LEASE_SECONDS": "1e400"})
    assert result.exit_code == 2
    assert "environment variable VIDPIPE_LEASE_SECONDS='1e400'" in result.output


def test_an_unwritable_report_path_is_refused_before_anything_runs(project, fake):
    fake_job(project, "kite")
    (project.root / "afile").write_text("not a folder")
    result = project.cli("run", "--report", "afile/report.json")
    assert result.exit_code == 2
    assert "--report afile/report.json:" in result.output
    assert "is a file, not a folder; nothing was run" in result.output
    assert made() == {"storyboard": 0, "image": 0, "video": 0}


def test_a_report_that_becomes_unwritable_still_leaves_junit_and_the_batch(project, fake):
    fake_job(project, "kite")
    (project.root / "out").mkdir()

    def block(request):
        # Mid-run, the report's folder is replaced by a file.
        if (project.root / "out").is_dir():
            shutil.rmtree(project.root / "out")
            (project.root / "out").write_text("now a file")
        return None

    fake.failures["image"] = [block]
    result = project.cli("run", "--report", "out/r.json", "--junit", "j.xml")
    assert result.exit_code == 1, result.output
    assert "--report out/r.json could not be written" in result.output
    assert "Traceback" not in result.output
    assert "complete" in (project.root / "j.xml").read_text()
    assert finished_batches(project) == ["complete"]


# -- budgets for validation -----------------------------------------------------------------------


def with_template(project, text: str, limits: str = "limits: {template_seconds: 1}\n") -> None:
    (project.root / "vidpipe.yaml").write_text(
        project.root.joinpath("vidpipe.yaml").read_text() + limits
    )
    project.write("templates/story.j2", text)
    project.job("kite", "prompt: A kite.\ntemplates: {storyboard: story.j2}\n")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "Go.\n{{ 'x' * 1000000000 }}",
            "templates/story.j2:2: a repeated string or list would hold 1,000,000,000 items",
        ),
        (
            "{% set xs = [1] * 999999999 %}{{ xs|length }}",
            "templates/story.j2:1: a repeated string or list would hold 999,999,999 items",
        ),
        (
            "{{ 'x'|center(1000000000) }}",
            "templates/story.j2:1: a call's result would hold 1,000,000,000 items",
        ),
        (
            "One.\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "templates/story.j2:2: rendering took longer than 1 s (`limits: template_seconds`",
        ),
        (
            "Again.\n{% include 'story.j2' %}",
            "templates/story.j2:2: the template includes or calls itself without end",
        ),
        (
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            "templates/story.j2:1: the template includes or calls itself without end",
        ),
    ],
    ids=["string-times", "list-times", "center", "nested-range", "self-include", "macro"],
)
def test_templates_that_would_hang_or_explode_are_template_errors(project, template, message):
    # Recursion ends at Python's limit, after a second or so of compiling includes.
    seconds = 1 if "range" in template else 60
    with_template(project, template, f"limits: {{template_seconds: {seconds}}}\n")
    result = project.cli("validate")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_output_size_limit_is_configurable(project):
    with_template(
        project,
        "{% for i in range(300) %}{{ 'abcdefghij' }}{% endfor %}",
        "limits: {template_output_chars: 2000}\n",
    )
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "the rendered prompt would hold 2,010 characters, more than the limit of 2,000" in (
        result.output
    )


def test_a_matrix_of_millions_is_refused_with_its_count_before_expanding(project):
    words = ", ".join(f"w{i}" for i in range(40))
    numbers = ", ".join(str(i) for i in range(40))
    project.job(
        "huge",
        "prompt: A kite.\nmatrix:\n"
        f"  style: [{words}]\n  prompt: [{words}]\n  negative_prompt: [{words}]\n"
        f"  seed: [{numbers}]\n",
    )
    started = time.monotonic()
    result = project.cli("validate")
    assert result.exit_code == 2
    assert "matrix expands to 2,560,000 jobs, more than the limit of 1,000" in result.output
    assert time.monotonic() - started < 60  # never expanded


def wait_for_handler(pid: int, signum: int, timeout: float = 60) -> None:
    """Wait until process `pid` catches `signum` (its handlers are installed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (signum - 1) & 1:
                return
        time.sleep(0.01)
    pytest.fail("the signal handler was never installed")


def test_a_hung_template_stops_on_sigterm_with_143(project):
    with_template(
        project,
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "limits: {template_seconds: 600}\n",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_handler(proc.pid, signal.SIGTERM)
    time.sleep(0.5)  # well into the template
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "SIGTERM received; stopping now" in err


def test_a_second_sigterm_stops_at_once_with_143(project):
    project.job(
        "train", "prompt: A train. A storm. A tunnel. Light.\nscenes: 4\nclip_duration: 2\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", "-q"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list((project.root / "tmp").glob("*/*/keyframes/*.png")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (143, -signal.SIGTERM), err


# -- single flight ----------------------------------------------------------------------------------


def test_three_identical_jobs_at_once_make_the_calls_of_one(project, fake):
    for name in ("a", "b", "c"):
        fake_job(project, name)
    result = project.cli("run", "-j", "3", "--report", "r.json")
    assert result.exit_code == 0, result.output
    assert made() == one_job_calls()
    jobs = project.jobs_in_report("r.json")
    assert sum(j["provider_calls"] for j in jobs.values()) == sum(one_job_calls().values())
    assert db(project, "select count(*) from generations where status != 'complete'") == [(0,)]


LOCAL = "prompt: A lighthouse. A storm. Dawn.\nscenes: 3\n"


def test_two_runners_sharing_a_database_make_each_generation_once(project):
    for name in ("a", "b", "c"):
        project.job(name, LOCAL)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vidpipe", "run", "-q", "-j", "2", "--report", f"r{i}.json"],
            cwd=project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    calls_made = sum(
        j["provider_calls"] for i in (1, 2) for j in project.report(f"r{i}.json")["jobs"]
    )
    # One job's calls: a storyboard, 4 frames (scene N+1 starts on N's end frame), 3 clips.
    assert calls_made == 1 + 4 + 3
    assert dict(db(project, "select capability, count(*) from generations group by 1")) == {
        "storyboard": 1,
        "image": 4,
        "video": 3,
    }


def pause_outside_a_transaction(proc: subprocess.Popen[str], path: Path) -> None:
    """SIGSTOP `proc` at a moment it holds no SQLite write lock (no runner could take a
    lock from a stopped process; that is SQLite, not the lease under test)."""
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.05)
        try:
            with sqlite3.connect(path, timeout=0.2) as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.rollback()
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.02)
    pytest.fail("the runner never paused outside a transaction")


def test_a_paused_runner_that_lost_its_lease_does_not_remake_what_the_other_made(project):
    project.job("long", "prompt: One. Two. Three. Four. Five. Six.\nscenes: 6\nclip_duration: 2\n")
    env = {**os.environ, "VIDPIPE_LEASE_SECONDS": "5"}
    paused = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "run", "-q", "--report", "p.json"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list((project.root / "tmp").glob("*/*/keyframes/*.png")):
        assert time.monotonic() < deadline and paused.poll() is None
        time.sleep(0.01)
    pause_outside_a_transaction(paused, project.root / "vidpipe.db")
    try:
        before = db(project, "select count(*) from generations where status = 'complete'")[0][0]
        time.sleep(6)  # the lease lapses
        other = project.subprocess("run", "-q", "--report", "q.json", env=env)
        assert other.returncode == 0, other.stderr
    finally:
        paused.send_signal(signal.SIGCONT)
    _, err = paused.communicate(timeout=120)
    assert "Traceback" not in err
    job = project.jobs_in_report("p.json")["long"]
    assert job["status"] == "stopped"
    assert "another runner took this job over" in job["error"]
    # At most the call it was in the middle of when paused; nothing after it resumed.
    assert job["provider_calls"] <= before + 1
    assert db(project, "select status from projects") == [("complete",)]
    assert dict(db(project, "select capability, count(*) from generations group by 1")) == {
        "storyboard": 1,
        "image": 7,
        "video": 6,
    }


# -- the object store -------------------------------------------------------------------------------


def test_deleting_a_project_folder_keeps_its_generations_and_gc_frees_only_garbage(project, fake):
    fake_job(project, "kite")
    assert project.cli("run").exit_code == 0
    objects = sorted((project.root / "tmp" / "objects").glob("*/*"))
    assert len(objects) == 3 + 2  # frames and clips (the storyboard is data, not a file)
    shutil.rmtree(next((project.root / "tmp" / "kite").iterdir()))
    SCRIPT.history.clear()
    project.job(
        "kite", FAKE.format(prompt="A kite over a hill. It lands.") + "stitch: {crossfade: 0.2}\n"
    )
    result = project.cli("run", "--report", "r.json")
    assert result.exit_code == 0, result.output
    assert made() == {"storyboard": 0, "image": 0, "video": 0}
    assert project.jobs_in_report("r.json")["kite"]["cached_calls"] == 1 + 3 + 2

    # The new project holds every object: nothing to free, even with no recent grace.
    kept = project.cli("gc", "--keep-days", "0")
    assert kept.output.endswith("removed 0 objects, 0 bytes freed; 5 kept\n"), kept.output

    shutil.rmtree(project.root / "tmp" / "kite")
    dry = project.cli("gc", "--dry-run", "--keep-days", "0")
    assert "would remove 5 objects" in dry.output
    assert len(list((project.root / "tmp" / "objects").glob("*/*"))) == 5
    # Recent generations are kept by default even when no project holds them.
    assert "removed 0 objects" in project.cli("gc").output
    gone = project.cli("gc", "--keep-days", "0", "--json")
    data = json.loads(gone.output)
    assert len(data["objects"]) == 5 and data["bytes_freed"] > 0
    assert list((project.root / "tmp" / "objects").glob("*/*")) == []
    assert db(project, "select count(*) from generations where result_path is not null") == [(0,)]


# -- what counts as done -------------------------------------------------------------------------


def outputs(project) -> Path:
    return next((project.root / "tmp" / "kite").iterdir()) / "output"


@pytest.mark.parametrize(
    "damage",
    ["delete-manifest", "corrupt-manifest", "truncate-sheet"],
)
def test_damaged_outputs_are_rebuilt_without_a_provider_call(project, fake, damage):
    fake_job(project, "kite")
    assert project.cli("run").exit_code == 0
    folder = outputs(project)
    if damage == "delete-manifest":
        (folder / "manifest.json").unlink()
    elif damage == "corrupt-manifest":
        (folder / "manifest.json").write_text("{not json")
    else:
        data = (folder / "storyboard.png").read_bytes()
        (folder / "storyboard.png").write_bytes(data[: len(data) // 2])
    gallery = project.cli("report", "--html", "g.html")
    assert gallery.exit_code == 0, gallery.output
    SCRIPT.history.clear()
    result = project.cli("run", "--report", "r.json")
    assert result.exit_code == 0, result.output
    assert made() == {"storyboard": 0, "image": 0, "video": 0}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    with Image.open(folder / "storyboard.png") as sheet:
        sheet.load()


def test_status_shows_a_truncated_clip_as_damaged(project, fake):
    fake_job(project, "kite")
    assert project.cli("run").exit_code == 0
    clip = next((project.root / "tmp" / "kite").iterdir()) / "clips" / "scene_01.mp4"
    # Replace the file (not write through it: it is a hard link to the stored object).
    data = clip.read_bytes()
    clip.unlink()
    clip.write_bytes(data[:100])
    status = json.loads(project.cli("status", "kite", "--json").output)
    assert [s["clip"]["status"] for s in status["scenes"]] == ["complete", "damaged"]
    assert "clip damaged" in project.cli("status", "kite").output


# -- the database -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "vidpipe.db",
            "database 'vidpipe.db' is not a database URL; for a file write sqlite:///vidpipe.db",
        ),
        ("sqlite://", "database 'sqlite://' is in memory"),
        ("sqlite:///:memory:", "is in memory: the cache would be gone when vidpipe exits"),
        ("sqlite:///jobs", "is a folder; point `database` at a file"),
        ("sqlite:///jobs/kite.yaml", "kite.yaml is not a usable vidpipe database"),
    ],
    ids=["no-scheme", "memory", "memory-file", "folder", "job-file"],
)
def test_unusable_database_urls_are_one_sentence(project, url, message):
    project.job("kite", "prompt: A kite.\n")
    result = project.cli("run", "--db", url)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert (project.root / "jobs" / "kite.yaml").read_text() == "prompt: A kite.\n"


def test_a_truncated_or_foreign_database_is_named_with_what_to_do(project, fake):
    fake_job(project, "kite")
    assert project.cli("run").exit_code == 0
    path = project.root / "vidpipe.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    for leftover in project.root.glob("vidpipe.db-*"):
        leftover.unlink()
    for command in (("run",), ("list",), ("status", "kite")):
        result = project.cli(*command)
        assert result.exit_code == 2, result.output
        assert "vidpipe.db is not a usable vidpipe database" in result.output
        assert "Restore it from a backup" in result.output
    path.unlink()
    with sqlite3.connect(path) as conn:
        conn.execute("create table customers (id integer)")
    result = project.cli("run")
    assert result.exit_code == 2
    assert "holds tables vidpipe did not make (customers)" in result.output


def test_an_empty_database_file_warns_that_the_cache_is_empty(project, fake):
    fake_job(project, "kite")
    (project.root / "vidpipe.db").write_bytes(b"")
    listed = project.cli("list")
    assert listed.exit_code == 0 and (project.root / "vidpipe.db").stat().st_size == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert "vidpipe.db is empty (0 bytes): starting a new, empty cache" in result.output
    (project.root / "vidpipe.db").unlink()
    (project.root / "vidpipe.db").write_bytes(b"")
    quiet = project.cli("run", "--yes")
    assert quiet.exit_code == 0 and "is empty" not in quiet.output


# -- the disk -------------------------------------------------------------------------------------


def in_mount_namespace(project, mount: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run vidpipe with `tmp` mounted as given, in a private mount namespace (no root needed)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.strip()}")
    (project.root / "tmp").mkdir(exist_ok=True)
    script = f'{mount} tmp && exec "$@"'
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", "vidpipe", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_batch_survived(project, result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    jobs = project.jobs_in_report("r.json")
    assert set(jobs) == {"a", "b"}
    failed = [j for j in jobs.values() if j["status"] == "failed"]
    assert failed and all(reason in j["error"] and "\n" not in j["error"] for j in failed)
    assert "<testcase" in (project.root / "j.xml").read_text()
    assert finished_batches(project) == ["failed"]


def test_a_full_disk_mid_run_fails_jobs_alone_and_the_batch_is_reported(project):
    project.job("a", "prompt: A storm. A tunnel.\nscenes: 2\n")
    project.job("b", "prompt: A kite. A hill.\nscenes: 2\n")
    # Room for the batch when it starts; then something else fills the disk.
    fill = (
        "(until ls tmp/*/*/keyframes/*.png >/dev/null 2>&1; do sleep 0.01; done; "
        "cat /dev/zero > tmp/filler 2>/dev/null) &"
    )
    result = in_mount_namespace(
        project,
        f"{fill} mount -t tmpfs -o size=64m tmpfs",
        "run",
        "-j",
        "1",
        "--report",
        "r.json",
        "--junit",
        "j.xml",
    )
    assert_batch_survived(project, result, "No space left on device")


def test_a_read_only_artifacts_folder_fails_jobs_alone_and_the_batch_is_reported(project):
    project.job("a", "prompt: A storm. A tunnel.\nscenes: 2\n")
    project.job("b", "prompt: A kite. A hill.\nscenes: 2\n")
    result = in_mount_namespace(
        project, "mount -t tmpfs -o ro tmpfs", "run", "--report", "r.json", "--junit", "j.xml"
    )
    assert_batch_survived(project, result, "Read-only file system")
