"""Artifacts in a bucket: `artifacts_dir: gs://…` or `s3://…` shared by several machines.

Real servers over HTTP on 127.0.0.1 (the GCS emulator, moto's S3 server) reached through
each library's own settings; "machines" are separate working copies with separate scratch
folders sharing only the database URL and the bucket. The local provider makes the media.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, bucket_fs, free_port, google_env

JOB = "prompt: A kite over a hill. It lands.\nscenes: 2\n"


@pytest.fixture(scope="module", autouse=True)
def _loopback_only() -> Iterator[None]:
    """No request may leave the machine, and nothing may look for real credentials."""
    import google.auth

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.lower().endswith("_proxy"):
                mp.delenv(key, raising=False)
        real_connect = socket.socket.connect

        def connect(self: socket.socket, address: Any) -> Any:
            inet = self.family in (socket.AF_INET, socket.AF_INET6)
            if inet and address[0] not in ("127.0.0.1", "::1", "localhost"):
                raise AssertionError(f"a test tried to reach {address!r}")
            return real_connect(self, address)

        def no_adc(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("google.auth.default() must not be called in tests")

        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(google.auth, "default", no_adc)
        yield


CHANGED = JOB + "scene_overrides:\n  - index: 1\n    video_motion_prompt: The kite spins slowly.\n"

CONFIG = """\
defaults:
  resolution: 360p
  clip_duration: 1
database: {database}
artifacts_dir: {url}
scratch_dir: scratch
{extra}"""


def machine(
    tmp_path: Path, name: str, database: str, url: str, extra: str = "", job: str = JOB
) -> Project:
    """A working copy of the studio's project on one machine: the same vidpipe.yaml and
    jobs, its own folder and its own (empty) scratch folder."""
    root = tmp_path / name
    (root / "jobs").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "vidpipe.yaml").write_text(
        CONFIG.format(database=database, url=url, extra=extra), encoding="utf-8"
    )
    (root / "jobs" / "kite.yaml").write_text(job, encoding="utf-8")
    return Project(root, database)


def run(project: Project, *args: str) -> dict[str, Any]:
    result = project.cli("run", "--report", "report.json", *args)
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    return project.jobs_in_report()["kite"]


def bucket_files(url: str) -> dict[str, bytes]:
    """Every object under the URL's prefix with its bytes, listed through fsspec."""
    fs, root = bucket_fs(url)
    root = root.rstrip("/")
    return {
        name[len(root) + 1 :]: fs.cat_file(name) for name in fs.find(root) if not name.endswith("/")
    }


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_media(project: Project) -> list[Path]:
    scratch = project.root / "scratch"
    return sorted(p for p in scratch.rglob("*.mp4")) if scratch.exists() else []


@pytest.fixture(params=["sqlite", "postgresql"])
def database(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """One database two machines share: a SQLite file both reach, or PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'shared.db'}"


def check_bucket_holds_the_run(project: Project, url: str) -> dict[str, bytes]:
    """Every generation result and every output is in the bucket, bytes as recorded."""
    files = bucket_files(url)
    results = project.sql(
        "select result_path, result_sha256 from generations where result_path is not null"
    )
    assert results
    for path, digest in results:
        assert path == f"objects/{digest[:2]}/{digest}"
        assert sha(files[path]) == digest, path
    for path, digest in project.sql("select path, sha256 from keyframes") + project.sql(
        "select path, sha256 from video_clips where status = 'complete'"
    ):
        # Each project file's bytes are an object (project folders in the bucket hold
        # outputs only).
        assert sha(files[f"objects/{digest[:2]}/{digest}"]) == digest, path
    ((project_id, output, output_sha, manifest_sha, sheet_sha),) = project.sql(
        "select id, output_path, output_sha256, manifest_sha256, sheet_sha256 from projects"
    )
    folder = f"kite/{project_id}/output"
    assert output == f"{folder}/final.mp4"
    assert sha(files[f"{folder}/final.mp4"]) == output_sha
    assert sha(files[f"{folder}/manifest.json"]) == manifest_sha
    assert sha(files[f"{folder}/storyboard.png"]) == sheet_sha
    manifest = json.loads(files[f"{folder}/manifest.json"])
    assert manifest["output"]["path"] == f"{url}/{folder}/final.mp4"
    clip = manifest["scenes"][0]["clip"]
    assert clip["path"] == f"{url}/objects/{clip['sha256'][:2]}/{clip['sha256']}"
    return files


def test_two_machines_share_one_database_and_one_gcs_bucket(tmp_path, database, gcs_bucket):
    first = machine(tmp_path, "first", database, gcs_bucket)
    made = run(first)
    assert made["status"] == "complete" and made["provider_calls"] == 6
    files = check_bucket_holds_the_run(first, gcs_bucket)
    assert made["output"] == f"{gcs_bucket}/{made['output'].split('/studio/', 1)[1]}"

    # Another machine, empty scratch: the unchanged job is up to date from what the
    # database and the bucket say. No provider call, no stitch, no clip downloaded.
    second = machine(tmp_path, "second", database, gcs_bucket)
    again = run(second)
    assert again["status"] == "complete"
    assert (again["provider_calls"], again["cached_calls"]) == (0, 0)
    assert again["output"] == made["output"]
    assert local_media(second) == []
    assert bucket_files(gcs_bucket) == files  # nothing written again
    calls = second.sql("select count(*) from call_log where cached = :no", no=False)
    assert calls == [(6,)]  # the first machine's six, no more

    # `vidpipe stitch` there fetches the clips from the bucket and stitches them.
    stitched = second.cli("stitch", "kite")
    assert stitched.exit_code == 0, stitched.output
    clips = second.sql("select path, sha256 from video_clips")
    assert len(clips) == 2
    for path, digest in clips:
        assert sha((second.root / "scratch" / path).read_bytes()) == digest
    check_bucket_holds_the_run(second, gcs_bucket)

    # A changed scene there: only its clip is made again (the rest from the bucket).
    (second.root / "jobs" / "kite.yaml").write_text(CHANGED, encoding="utf-8")
    changed = run(second)
    assert (changed["provider_calls"], changed["cached_calls"]) == (1, 5)
    assert changed["output"] != made["output"]
    assert changed["output"] in {f"{gcs_bucket}/{k}" for k in bucket_files(gcs_bucket)}

    # And the first machine, back on the changed job: up to date, nothing to make.
    (first.root / "jobs" / "kite.yaml").write_text(CHANGED, encoding="utf-8")
    back = run(first)
    assert (back["provider_calls"], back["cached_calls"]) == (0, 0)


def test_two_machines_share_one_s3_bucket(tmp_path, s3_bucket):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    first = machine(tmp_path, "first", database, s3_bucket)
    assert run(first)["provider_calls"] == 6
    check_bucket_holds_the_run(first, s3_bucket)

    second = machine(tmp_path, "second", database, s3_bucket)
    again = run(second)
    assert (again["provider_calls"], again["cached_calls"]) == (0, 0)
    assert local_media(second) == []
    stitched = second.cli("stitch", "kite")
    assert stitched.exit_code == 0, stitched.output
    assert len(local_media(second)) == 3  # two clips fetched, final.mp4 written

    # The gallery goes to the bucket beside the outputs its players link to.
    report = second.cli("report")
    assert report.exit_code == 0, report.output
    assert f"wrote {s3_bucket}/report.html (1 job)" in report.output
    page = bucket_files(s3_bucket)["report.html"].decode()
    ((project_id,),) = second.sql("select id from projects")
    assert f'src="kite/{project_id}/output/final.mp4"' in page
    assert "data:image/jpeg;base64," in page  # the contact sheet, fetched and inlined

    (second.root / "jobs" / "kite.yaml").write_text(CHANGED, encoding="utf-8")
    changed = run(second)
    assert (changed["provider_calls"], changed["cached_calls"]) == (1, 5)


def test_the_scratch_bound_evicts_what_is_safe_in_the_bucket(tmp_path, gcs_bucket):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    studio = machine(tmp_path, "studio", database, gcs_bucket, extra="scratch_max_bytes: 0\n")
    assert run(studio)["provider_calls"] == 6
    scratch = studio.root / "scratch"
    # Everything the bucket holds was evicted after the run; nothing else is left.
    left = [p for p in scratch.rglob("*") if p.is_file()]
    assert all(p.suffix not in (".mp4", ".png") for p in left), left
    assert "objects" not in {p.relative_to(scratch).parts[0] for p in left}

    # Unchanged: up to date from the bucket. A new film from the same generations (a
    # new project for the changed job file): every keyframe and clip comes back from the
    # bucket, no provider call.
    assert run(studio)["provider_calls"] == 0
    (studio.root / "jobs" / "kite.yaml").write_text(JOB + "output: out.mp4\n", encoding="utf-8")
    again = run(studio)
    assert (again["provider_calls"], again["cached_calls"]) == (0, 6)
    ((output_sha,),) = studio.sql("select output_sha256 from projects order by created_at desc")[:1]
    assert sha((studio.root / "jobs" / "out.mp4").read_bytes()) == output_sha


def test_gc_frees_the_scratch_folder_and_leaves_the_bucket_alone(tmp_path, gcs_bucket):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    studio = machine(tmp_path, "studio", database, gcs_bucket)
    run(studio)
    before = bucket_files(gcs_bucket)
    assert local_media(studio)
    result = studio.cli("gc", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["bytes_freed"] > 0 and data["bucket"]["unreferenced"] == 0
    assert data["bucket"]["objects"] == sum(k.startswith("objects/") for k in before)
    assert local_media(studio) == []
    assert bucket_files(gcs_bucket) == before
    text = studio.cli("gc")
    assert f"the bucket {gcs_bucket} was left as it is" in text.output
    # Nothing was lost: the project stitches again from the bucket.
    stitched = studio.cli("stitch", "kite")
    assert stitched.exit_code == 0, stitched.output


def test_output_may_be_a_bucket_url(tmp_path, gcs_bucket, s3_bucket):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    # The artifacts in one store, the deliverable in another.
    delivery = s3_bucket.replace("/studio", "/deliveries")
    job = JOB + f"output: {delivery}/{{{{ job.name }}}}.mp4\n"
    first = machine(tmp_path, "first", database, gcs_bucket, job=job)
    run(first)
    ((output_sha,),) = first.sql("select output_sha256 from projects")
    assert sha(bucket_files(delivery)["kite.mp4"]) == output_sha
    second = machine(tmp_path, "second", database, gcs_bucket, job=job)
    assert run(second)["provider_calls"] == 0
    assert local_media(second) == []


def test_a_local_output_copy_on_another_machine_comes_from_the_bucket(tmp_path, gcs_bucket):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    job = JOB + "output: ../out/kite.mp4\n"
    first = machine(tmp_path, "first", database, gcs_bucket, job=job)
    run(first)
    ((output_sha,),) = first.sql("select output_sha256 from projects")
    second = machine(tmp_path, "second", database, gcs_bucket, job=job)
    again = run(second)
    assert (again["provider_calls"], again["cached_calls"]) == (0, 0)
    assert sha((second.root / "out" / "kite.mp4").read_bytes()) == output_sha
    # The final video came from the bucket; no clip was fetched, nothing stitched.
    assert [p.name for p in local_media(second)] == ["final.mp4"]


# -- what a user sees when the bucket cannot be used ------------------------------------------


def one_sentence(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def refused(project: Project, *args: str) -> str:
    result = project.cli(*args)
    assert result.exit_code == 2, result.output
    return one_sentence(result.output)


def test_an_unsupported_scheme_is_refused(project):
    project.write("vidpipe.yaml", "artifacts_dir: ftp://files.example/studio\n")
    project.job("kite", JOB)
    for command in ("run", "list", "validate"):
        line = refused(project, command)
        assert "ftp:// is not supported; use gs://BUCKET/PREFIX" in line, line


def test_a_missing_library_says_what_to_install(project, monkeypatch):
    project.write("vidpipe.yaml", "artifacts_dir: gs://studio-bucket/films\n")
    project.job("kite", JOB)
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if it were not installed
    line = refused(project, "run")
    assert "needs gcsfs, which is not installed; run pip install 'vidpipe[gcs]'" in line
    monkeypatch.setitem(sys.modules, "s3fs", None)
    project.write("vidpipe.yaml", "artifacts_dir: s3://studio-bucket/films\n")
    assert "pip install 'vidpipe[s3]'" in refused(project, "run")


@pytest.mark.parametrize("scheme", ["gs", "s3"])
def test_an_unreachable_endpoint_is_refused_before_any_work(project, monkeypatch, scheme):
    port = free_port()
    if scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        setting = "STORAGE_EMULATOR_HOST"
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://user:hunter2-long@127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
        setting = "AWS_ENDPOINT_URL"
    project.write("vidpipe.yaml", f"artifacts_dir: {scheme}://studio-bucket/films\n")
    project.job("kite", JOB)
    line = refused(project, "run")
    assert "cannot reach the storage endpoint http://" in line, line
    assert f"127.0.0.1:{port} for {scheme}://studio-bucket/films" in line, line
    assert f"start it, or fix {setting}" in line
    assert "hunter2-long" not in line and "testing-secret" not in line
    assert not (project.root / "vidpipe.db").exists()  # nothing was run


def test_a_missing_bucket_says_how_to_create_it(project, gcs_bucket):
    missing = "gs://no-such-bucket-here/films"
    project.write("vidpipe.yaml", f"artifacts_dir: {missing}\nscratch_dir: scratch\n")
    project.job("kite", JOB)
    line = refused(project, "run")
    assert "bucket 'no-such-bucket-here' of gs://no-such-bucket-here/films does not exist" in line
    assert "gcloud storage buckets create gs://no-such-bucket-here" in line


def test_an_output_url_with_an_unsupported_scheme_is_located(project):
    path = project.job("kite", JOB + "output: ftp://files.example/kite.mp4\n")
    result = project.cli("validate")
    assert result.exit_code == 2, result.output
    assert "jobs/kite.yaml:3:9: output 'ftp://files.example/kite.mp4': ftp:// is not supported" in (
        result.output
    ), result.output
    assert path.is_file()


def test_scratch_settings(project, monkeypatch, tmp_path):
    from vidpipe.spec.config import load_config

    project.write("vidpipe.yaml", "artifacts_dir: gs://studio-bucket/films/\n")
    cache = tmp_path / "cache"
    config = load_config(cwd=project.root, env={"XDG_CACHE_HOME": str(cache)})
    assert config.artifacts_url == "gs://studio-bucket/films"
    assert config.artifacts_dir.parent == cache / "vidpipe" / "scratch"
    assert config.artifacts_dir.name.startswith("studio-bucket-films-")
    assert config.scratch_max_bytes == 20 * 10**9
    env = {"VIDPIPE_SCRATCH_DIR": "/var/tmp/vp", "VIDPIPE_SCRATCH_MAX_BYTES": "1.5GiB"}
    config = load_config(cwd=project.root, env=env)
    assert (config.artifacts_dir, config.scratch_max_bytes) == (Path("/var/tmp/vp"), 1.5 * 2**30)
    project.write("vidpipe.yaml", "artifacts_dir: tmp\n")
    local = load_config(cwd=project.root, env={})
    assert (local.artifacts_dir, local.artifacts_url) == (project.root / "tmp", None)
    shutil.rmtree(cache, ignore_errors=True)


# -- Veo writes its clips straight into the bucket ----------------------------------------


def test_veo_writes_clips_into_the_bucket_and_each_is_fetched_once(
    tmp_path, gcs_bucket, emu, monkeypatch
):
    from tests.conftest import google_env
    from vidpipe.objectstore import Bucket

    # The Vertex emulator writes clips for `storageUri` into the storage emulator, as
    # Vertex writes into the caller's bucket.
    emu.storage_host = os.environ["STORAGE_EMULATOR_HOST"]
    veo = gcs_bucket.replace("/studio", "/veo-output")
    job = (
        'prompt: "A paper boat sails down a rainy street"\nprovider: google\n'
        'aspect_ratio: "16:9"\nclip_duration: 4\nresolution: 720p\nscenes: 2\n'
    )
    extra = f"google: {{output_gcs_uri: {veo}}}\n"
    traffic: dict[str, list[str]] = {"put": [], "get_url": [], "copy_url": []}
    for name in traffic:
        original = getattr(Bucket, name)

        def spy(self, *args, _original=original, _name=name):  # type: ignore[no-untyped-def]
            traffic[_name].append(str(args[-1] if _name != "get_url" else args[0]))
            return _original(self, *args)

        monkeypatch.setattr(Bucket, name, spy)

    database = f"sqlite:///{tmp_path / 'shared.db'}"
    env = google_env(emu, "AIzaTEST-SECRET-KEY-123")
    first = machine(tmp_path, "first", database, gcs_bucket, extra=extra, job=job)
    result = first.cli("run", "--report", "report.json", env=env)
    assert result.exit_code == 0, result.output
    assert first.jobs_in_report()["kite"]["status"] == "complete"
    submits = emu.calls("predictLongRunning")
    assert [s.body["parameters"]["storageUri"] for s in submits] == [veo, veo]

    files = bucket_files(gcs_bucket.rsplit("/", 1)[0] + "/")  # the whole bucket
    written = {k: v for k, v in files.items() if k.startswith("veo-output/")}
    assert len(written) == 2, sorted(files)  # what Veo wrote
    clips = first.sql("select sha256 from video_clips where status = 'complete'")
    assert sorted(sha(v) for v in written.values()) == sorted(d for (d,) in clips)
    for (digest,) in clips:
        assert sha(files[f"studio/objects/{digest[:2]}/{digest}"]) == digest
        # Kept by a copy inside the bucket: never uploaded.
        assert not any(digest in rel for rel in traffic["put"])
    bucket = gcs_bucket.split("/")[2]
    # Each clip downloaded exactly once, from where Veo wrote it.
    assert sorted(traffic["get_url"]) == sorted(f"gs://{bucket}/{rel}" for rel in written)
    assert len(traffic["copy_url"]) == 2
    # No download through the Vertex emulator's own storage either.
    assert not [r for r in emu.requests if r.path.startswith("/storage/")]

    second = machine(tmp_path, "second", database, gcs_bucket, extra=extra, job=job)
    again = second.cli("run", "--report", "report.json", env=env)
    assert again.exit_code == 0, again.output
    (row,) = second.report()["jobs"]
    assert (row["provider_calls"], row["cached_calls"]) == (0, 0)
    assert len(emu.calls("predictLongRunning")) == 2


def test_an_output_missing_from_the_bucket_is_made_again(tmp_path, s3_bucket):
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    studio = machine(tmp_path, "studio", database, s3_bucket)
    run(studio)
    assert run(studio)["provider_calls"] == 0  # unchanged (the quick path may answer)
    ((project_id, output_sha),) = studio.sql("select id, output_sha256 from projects")
    fs, root = bucket_fs(s3_bucket)
    fs.rm(f"{root.rstrip('/')}/kite/{project_id}/output/final.mp4")
    # The local copy is intact, but the bucket is what other machines see: stitched and
    # published again, from the clips at hand, with no provider call.
    again = run(studio)
    assert (again["provider_calls"], again["cached_calls"]) == (0, 0)
    assert sha(bucket_files(s3_bucket)[f"kite/{project_id}/output/final.mp4"]) == output_sha


# -- workers on two machines: one queue, one database, one bucket -------------------------

IDEAS = [
    "A lighthouse at dawn",
    "A tram in the fog",
    "A kite over the dunes",
    "A paper boat on a puddle",
    "A moth at a lamp",
    "A harbour at night",
]


def test_two_workers_on_two_machines_share_one_batch_through_the_bucket(
    tmp_path, pg_url, gcs_bucket
):
    # Twelve jobs in six pairs made of the same generations: two machines' workers make
    # them at the same time, each with its own working copy and its own scratch folder.
    copies = [machine(tmp_path, name, pg_url, gcs_bucket) for name in ("first", "second")]
    for copy in copies:
        (copy.root / "jobs" / "kite.yaml").unlink()
        for block in range(3):
            for twin in range(2):
                for k in range(2):
                    idea = IDEAS[block * 2 + k]
                    copy.job(f"{block}{twin}{k}-job", f"prompt: {idea}.\nscenes: 1\n")
    first, second = copies
    submitted = first.cli("submit", "-q")
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "vidpipe", "worker", "--drain", "-j", "2", "-q"],
            cwd=copy.root,
            env=dict(os.environ),
            stdout=(copy.root / "worker.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for copy in copies
    ]
    for copy, proc in zip(copies, workers, strict=True):
        assert proc.wait(timeout=240) == 0, (copy.root / "worker.log").read_text()

    statuses = first.sql("select status from batch_items where batch_id = :b", b=batch_id)
    assert sorted(s for (s,) in statuses) == ["done"] * 12
    # Each generation made (paid for) once, wherever it was needed.
    paid = [k for (k,) in first.sql("select key from call_log where cached = :no", no=False)]
    assert len(paid) == len(set(paid)) == 6 * 4
    # Every object and every output is in the bucket, bytes as recorded.
    files = bucket_files(gcs_bucket)
    for path, digest in first.sql(
        "select result_path, result_sha256 from generations where result_path is not null"
    ):
        assert sha(files[path]) == digest
    projects = first.sql("select id, job_name, output_sha256, manifest_sha256 from projects")
    assert len(projects) == 12
    for project_id, job, output_sha, manifest_sha in projects:
        assert sha(files[f"{job}/{project_id}/output/final.mp4"]) == output_sha
        assert sha(files[f"{job}/{project_id}/output/manifest.json"]) == manifest_sha
    # Both machines worked, each in its own scratch folder.
    for copy in copies:
        assert list((copy.root / "scratch" / "objects").rglob("*")), copy.root.name
    # One report for the whole batch, from either machine, beside the outputs.
    shown = second.cli("report", "--batch", batch_id)
    assert shown.exit_code == 0, shown.output
    assert f"wrote {gcs_bucket}/report.html (12 jobs)" in shown.output


def test_a_machine_killed_mid_batch_leaves_its_clips_to_the_other_without_paying_twice(
    tmp_path, pg_url, gcs_bucket, emu
):
    # Two machines, each its own working copy and scratch folder, sharing PostgreSQL and
    # the bucket. The first is killed (SIGKILL) while two Veo operations it submitted are
    # being polled; the second machine finishes the batch from the bucket and the database.

    env = google_env(emu, "AIzaTEST-MACHINE-SECRET")
    copies = [machine(tmp_path, name, pg_url, gcs_bucket) for name in ("first", "second")]
    for copy in copies:
        (copy.root / "jobs" / "kite.yaml").unlink()
        for name in ("boat", "kite", "tram"):
            copy.job(
                name,
                f'prompt: "A {name} in the rain"\nprovider: google\naspect_ratio: "16:9"\n'
                "clip_duration: 4\nresolution: 720p\nscenes: 1\n",
            )
    first, second = copies
    submitted = first.cli("submit", "-q", env=env)
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.strip()
    emu.polls_until_done = 10_000  # nothing finishes while the first machine lives
    log = (first.root / "worker.log").open("w")
    doomed = subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "worker", "--drain", "-j", "2"],
        cwd=first.root,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    try:
        while not (
            len(emu.operations) == 2 and all(op.polls >= 2 for op in emu.operations.values())
        ):
            assert doomed.poll() is None, (first.root / "worker.log").read_text()
            assert time.monotonic() < deadline, "no two clips submitted and polled in time"
            time.sleep(0.05)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    in_flight = set(emu.operations)
    assert len(emu.calls("predictLongRunning")) == 2

    emu.polls_until_done = 0
    done = subprocess.run(
        [sys.executable, "-m", "vidpipe", "worker", "--drain", "-j", "2"],
        cwd=second.root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # One submission per clip: the killed machine's two were polled from the other one.
    assert len(emu.calls("predictLongRunning")) == 3
    polled = {r.operation_name for r in emu.calls("fetchPredictOperation")}
    assert in_flight <= polled
    statuses = second.sql("select status from batch_items where batch_id = :b", b=batch_id)
    assert sorted(s for (s,) in statuses) == ["done"] * 3
    paid = [k for (k,) in second.sql("select key from call_log where cached = :no", no=False)]
    assert len(paid) == len(set(paid)) == 3 * 4  # storyboard, 2 frames, clip per job
    # The first machine's storyboards and keyframes came to the second through the bucket.
    files = bucket_files(gcs_bucket)
    for job, project_id, output_sha in second.sql(
        "select job_name, id, output_sha256 from projects"
    ):
        assert sha(files[f"{job}/{project_id}/output/final.mp4"]) == output_sha
    assert "AIzaTEST-MACHINE-SECRET" not in done.stdout + done.stderr
