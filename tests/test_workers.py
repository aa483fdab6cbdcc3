"""A batch queued with `vidpipe submit` and run by `vidpipe worker`s, on SQLite and
PostgreSQL: claims, takeovers of a dead worker's jobs, working copies that differ, and
one report for the whole batch wherever its jobs ran."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, google_env, recorded_artifacts_intact, refused

from vidpipe.testing.fakes import Script
from vidpipe.testing.vertex_emulator import VertexEmulator

CHECK_OUT = "check out the commit the batch was submitted from"


def submit(project: Project, *args: str, env: dict[str, str] | None = None) -> str:
    """`vidpipe submit -q ARGS`; the batch id it printed."""
    result = project.cli("submit", "-q", *args, env=env)
    assert result.exit_code == 0, result.output
    batch_id = result.stdout.strip()
    assert batch_id and " " not in batch_id, result.output
    return batch_id


def items(project: Project, batch_id: str) -> list[dict[str, Any]]:
    rows = project.sql(
        "select job_name, status, worker, attempts, outcome from batch_items "
        "where batch_id = :b order by position",
        b=batch_id,
    )
    return [
        {
            "job": job,
            "status": status,
            "worker": worker,
            "attempts": attempts,
            "outcome": json.loads(outcome) if isinstance(outcome, str) else outcome,
        }
        for job, status, worker, attempts, outcome in rows
    ]


def batches(project: Project) -> list[dict[str, Any]]:
    result = project.cli("batches", "--json")
    assert result.exit_code == 0, result.output
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def paid_once(project: Project) -> int:
    """Every generation was made (paid for) exactly once; how many there were."""
    paid = project.sql("select key from call_log where cached = :no", no=False)
    keys = [k for (k,) in paid]
    assert len(keys) == len(set(keys)), "a generation was made twice"
    (made,) = project.sql("select count(*) from generations")[0]
    assert made == len(keys)
    return len(keys)


def start_worker(project: Project, name: str, *args: str, env: dict[str, str] | None = None):
    """A real `python -m vidpipe worker ARGS` process, its output in NAME.log."""
    log = (project.root / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "vidpipe", "worker", *args],
        cwd=project.root,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on n threads released together; the answers in thread order."""
    barrier = threading.Barrier(n)
    answers: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------
# submit


@pytest.mark.both_databases
def test_submit_refuses_what_run_refuses_and_queues_nothing(project: Project) -> None:
    project.job("good", "prompt: A lighthouse at dawn.\nscenes: 1\n")
    project.job("bad", "prompt: A lighthouse at dusk.\nscenes: 1\nstyle: [oops]\n")
    refused(project.cli("submit"), "jobs/bad.yaml:3:8: style must be text (got a list)")

    (project.root / "jobs" / "bad.yaml").unlink()
    result = project.cli("submit", "--select", "nothing-*")
    assert result.exit_code == 2, result.output
    assert "no job name matches --select nothing-*" in result.output

    # A job file outside the project (no worker's working copy has it).
    outside = project.root.parent / "elsewhere.yaml"
    outside.write_text("prompt: A boat.\nscenes: 1\n")
    result = project.cli("submit", str(outside))
    assert result.exit_code == 2, result.output
    assert "leaves the project" in result.output
    assert batches(project) == []


# --------------------------------------------------------------------------------------
# one worker drains a batch; the batch is listed and reported whole


@pytest.mark.both_databases
def test_a_worker_drains_a_submitted_batch(project: Project, fake: Script) -> None:
    project.job("alpha", "prompt: A kite over the dunes.\nscenes: 1\n")
    project.job(
        "promo", "prompt: A bottle on a table.\nscenes: 1\nmatrix:\n  style: [noir, anime]\n"
    )
    result = project.cli("submit", "--provider", "fake")
    assert result.exit_code == 0, result.output
    batch_id = result.output.split()[2].rstrip(":")
    assert result.output.splitlines()[0] == f"queued batch {batch_id}: 3 jobs"
    assert f"vidpipe worker --batch {batch_id} --drain" in result.output
    assert [i["status"] for i in items(project, batch_id)] == ["queued"] * 3
    (listed,) = batches(project)
    assert listed["status"] == "queued" and listed["by_status"] == {"queued": 3}
    assert listed["selection"] == "submit jobs/ --provider fake"
    assert fake.history == []  # submitting calls no provider
    early = project.cli("report", "--batch", batch_id)
    assert early.exit_code == 2
    assert f"batch '{batch_id}' has not finished: its jobs are still running or queued" in (
        early.output
    )

    result = project.cli("worker", "--drain", "-j", "2", "--report", "report.json")
    assert result.exit_code == 0, result.output
    assert f"this worker ran 3 jobs; batch {batch_id}: 3 jobs finished (3 complete)" in (
        result.stdout
    )
    report = project.report()
    assert report["batch_id"] == batch_id
    assert [j["name"] for j in report["jobs"]] == ["alpha", "promo-noir", "promo-anime"]
    assert {j["status"] for j in report["jobs"]} == {"complete"}
    assert {j["source"] for j in report["jobs"]} == {"jobs/alpha.yaml", "jobs/promo.yaml"}
    assert report["totals"]["provider_calls"] == len(fake.history) == paid_once(project)
    assert [(i["status"], i["attempts"]) for i in items(project, batch_id)] == [("done", 1)] * 3
    recorded_artifacts_intact(project)

    (listed,) = batches(project)
    assert listed["status"] == "complete" and listed["by_status"] == {"complete": 3}
    assert listed["provider_calls"] == report["totals"]["provider_calls"]
    shown = project.cli("report", "--batch", batch_id)
    assert shown.exit_code == 0, shown.output
    assert "(3 jobs)" in shown.output
    html = (project.root / "tmp" / "report.html").read_text()
    assert all(name in html for name in ("alpha", "promo-noir", "promo-anime"))

    # The same batch again: a new batch whose jobs are all up to date, at no cost.
    made = len(fake.history)
    again = submit(project, "--provider", "fake")
    assert again != batch_id
    result = project.cli("worker", "--batch", again, "--drain", "-q", "--report", "again.json")
    assert result.exit_code == 0, result.output
    totals = project.report("again.json")["totals"]
    assert totals["by_status"] == {"complete": 3} and totals["provider_calls"] == 0
    assert len(fake.history) == made


def test_a_batch_submitted_until_a_step_stops_there_on_every_worker(
    project: Project, fake: Script
) -> None:
    project.job("alpha", "prompt: A kite over the dunes.\nscenes: 2\n")
    batch_id = submit(project, "--provider", "fake", "--until", "storyboard")
    result = project.cli("worker", "--drain", "-q", "--report", "report.json")
    assert result.exit_code == 0, result.output
    (job,) = project.report()["jobs"]
    assert (job["status"], job["error"]) == ("stopped", None)
    assert [c.capability for c in fake.history] == ["storyboard"]
    assert [i["status"] for i in items(project, batch_id)] == ["done"]
    (listed,) = batches(project)
    assert listed["selection"] == "submit jobs/ --until storyboard --provider fake"


@pytest.mark.both_databases
def test_a_working_copy_that_differs_fails_its_item_without_a_call(
    project: Project, fake: Script
) -> None:
    project.job("same", "prompt: A paper boat on a puddle.\nscenes: 1\n")
    project.job("edited", "prompt: A tram in the fog.\nscenes: 1\n")
    project.job("gone", "prompt: A moth at a lamp.\nscenes: 1\n")
    batch_id = submit(project, "--provider", "fake")
    # This working copy is not the commit the batch was submitted from.
    project.job("edited", "prompt: A tram in the snow.\nscenes: 1\n")
    (project.root / "jobs" / "gone.yaml").unlink()

    result = project.cli("worker", "--drain", "--report", "report.json")
    assert result.exit_code == 1, result.output
    jobs = project.jobs_in_report()
    assert jobs["same"]["status"] == "complete"
    assert jobs["edited"]["status"] == "failed"
    assert jobs["edited"]["error"] == (
        "jobs/edited.yaml here differs from the submitted one (the job file, its templates "
        f"or the vidpipe.yaml defaults changed); {CHECK_OUT}"
    )
    assert jobs["gone"]["error"] == f"jobs/gone.yaml is not in this working copy; {CHECK_OUT}"
    assert jobs["edited"]["provider_calls"] == jobs["gone"]["provider_calls"] == 0
    prompts = [c.request.prompt for c in fake.calls("storyboard")]
    assert len(prompts) == 1 and "paper boat" in prompts[0]
    assert [i["status"] for i in items(project, batch_id)] == ["failed", "failed", "done"]
    (listed,) = batches(project)
    assert listed["status"] == "failed"
    assert listed["by_status"] == {"complete": 1, "failed": 2}


@pytest.mark.both_databases
def test_a_lapsed_claim_is_taken_over_and_drain_waits_for_a_live_one(
    project: Project, fake: Script
) -> None:
    for name in ("one", "two", "three"):
        project.job(name, f"prompt: A lantern, {name}.\nscenes: 1\n")
    batch_id = submit(project, "--provider", "fake")
    now = datetime.now(UTC).replace(tzinfo=None)
    # A worker on another machine claimed "one" and died long ago; another holds "two"
    # for 3 more seconds and then dies too. Neither can be seen to be dead from here.
    for job, expires in (("one", now - timedelta(hours=1)), ("two", now + timedelta(seconds=3))):
        project.sql(
            "update batch_items set status = 'claimed', worker = 'elsewhere:42:abc', "
            "attempts = 1, lease_expires_at = :t where batch_id = :b and job_name = :j",
            t=expires,
            b=batch_id,
            j=job,
        )
    started = time.monotonic()
    result = project.cli("worker", "--batch", batch_id, "--drain", "-q")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 2  # it waited for the live lease to lapse
    rows = items(project, batch_id)
    assert {i["job"]: (i["status"], i["attempts"]) for i in rows} == {
        "one": ("done", 2),
        "two": ("done", 2),
        "three": ("done", 1),
    }
    assert "elsewhere:42:abc" not in {i["worker"] for i in rows}


@pytest.mark.both_databases
def test_claims_are_disjoint_and_renewed_with_the_project_leases(project: Project) -> None:
    from vidpipe.store import Store
    from vidpipe.store.queue import WorkQueue

    stores = [Store(project.store_url) for _ in range(6)]
    try:
        queue = WorkQueue(stores[0])
        batch_id = queue.submit(
            {"submitted": True}, [(f"job-{n:02d}", f"jobs/{n}.yaml", "d" * 64) for n in range(10)]
        )
        # Six workers claiming two jobs each at the same moment: ten jobs, none twice.
        claims = at_once(
            6, lambda i: WorkQueue(stores[i]).claim(f"host-{i}:1:token", 2, 60, batch_id)
        )
        taken = [c.job_name for claimed in claims for c in claimed]
        assert sorted(taken) == [f"job-{n:02d}" for n in range(10)]
        assert max(len(claimed) for claimed in claims) == 2
        # The lease keeper's renewal (one transaction for projects and items) extends
        # only this worker's claims.
        i = next(i for i, claimed in enumerate(claims) if claimed)
        owner = f"host-{i}:1:token"
        before = dict(project.sql("select job_name, lease_expires_at from batch_items"))
        stores[i].renew([], owner, 3600)
        after = dict(project.sql("select job_name, lease_expires_at from batch_items"))
        mine = {c.job_name for c in claims[i]}
        assert {j for j in after if after[j] != before[j]} == mine
        # Given back (a clean stop): queued again, the claim not counted as an attempt.
        for claim in claims[i]:
            queue.release(claim, owner)
        rows = project.sql("select job_name, status, attempts from batch_items")
        assert {(j, s, a) for j, s, a in rows if j in mine} == {(j, "queued", 0) for j in mine}
    finally:
        for store in stores:
            store.close()


def test_an_unknown_batch_is_a_usage_error(project: Project) -> None:
    result = project.cli("worker", "--batch", "20990101-000000-abcdef", "--drain")
    assert result.exit_code == 2, result.output
    assert "no submitted batch '20990101-000000-abcdef' in the database" in result.output


# --------------------------------------------------------------------------------------
# real worker processes sharing one batch


def twelve_jobs(project: Project) -> None:
    """Twelve jobs in six pairs made of the same generations, two queue places apart, so
    two workers taking two jobs at a time make the same generations at the same time."""
    ideas = [
        "A lighthouse at dawn",
        "A tram in the fog",
        "A kite over the dunes",
        "A paper boat on a puddle",
        "A moth at a lamp",
        "A harbour at night",
    ]
    for block in range(3):
        for twin in range(2):
            for k in range(2):
                idea = ideas[block * 2 + k]
                project.job(f"{block}{twin}{k}-job", f"prompt: {idea}.\nscenes: 1\n")


@pytest.mark.both_databases
def test_two_worker_processes_share_a_batch_and_make_each_generation_once(
    project: Project,
) -> None:
    twelve_jobs(project)
    batch_id = submit(project)
    workers = [start_worker(project, f"w{n}", "--drain", "-j", "2", "-q") for n in (1, 2)]
    for n, proc in enumerate(workers, 1):
        assert proc.wait(timeout=120) == 0, (project.root / f"w{n}.log").read_text()
    rows = items(project, batch_id)
    assert len(rows) == 12 and {i["status"] for i in rows} == {"done"}
    # Both took jobs (each claims as soon as it starts, and a job takes far longer than a
    # claim), and every job ran once.
    took = {i["worker"] for i in rows}
    assert len(took) == 2, took
    assert {i["attempts"] for i in rows} == {1}
    assert paid_once(project) == 6 * 4  # a storyboard, two frames and a clip per idea
    (listed,) = batches(project)
    assert listed["status"] == "complete" and listed["by_status"] == {"complete": 12}
    assert listed["provider_calls"] == 6 * 4
    shown = project.cli("report", "--batch", batch_id)
    assert shown.exit_code == 0 and "(12 jobs)" in shown.output, shown.output
    recorded_artifacts_intact(project)


def test_sigterm_gives_the_jobs_in_flight_back_to_the_queue(project: Project) -> None:
    for name in ("slow-a", "slow-b", "slow-c"):
        project.job(name, f"prompt: A slow river, {name}. Reeds. A heron.\nscenes: 3\n")
    batch_id = submit(project)
    proc = start_worker(project, "w", "-j", "2")
    wait_for(
        lambda: len(list((project.root / "tmp").glob("*/*/keyframes/*.png"))) >= 1,
        60,
        "a keyframe",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    log = (project.root / "w.log").read_text()
    assert "SIGTERM received" in log and "Traceback" not in log
    rows = items(project, batch_id)
    assert {i["status"] for i in rows} == {"queued"}, rows
    assert {i["attempts"] for i in rows} == {0}
    assert {s for (s,) in project.sql("select status from projects")} <= {"stopped"}
    result = project.cli("worker", "--drain", "-q")
    assert result.exit_code == 0, result.output
    assert {i["status"] for i in items(project, batch_id)} == {"done"}


# --------------------------------------------------------------------------------------
# a worker killed while Veo makes its clips


@pytest.mark.both_databases
def test_a_killed_workers_jobs_are_finished_without_paying_twice(
    project: Project, emu: VertexEmulator
) -> None:
    for name in ("boat", "kite", "tram"):
        project.job(
            name,
            f'prompt: "A {name} in the rain"\nprovider: google\naspect_ratio: "16:9"\n'
            "clip_duration: 4\nresolution: 720p\nscenes: 1\n",
        )
    env = google_env(emu, "AIzaTEST-WORKER-SECRET")
    batch_id = submit(project, env=env)
    emu.polls_until_done = 10_000  # nothing finishes while the first worker lives
    first = start_worker(project, "first", "--drain", "-j", "2", env=env)

    def polled() -> bool:
        assert first.poll() is None, (project.root / "first.log").read_text()
        ops = list(emu.operations.values())
        return len(ops) == 2 and all(op.polls >= 2 for op in ops)

    try:
        wait_for(polled, 60, "two submitted and polled clips")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    in_flight = set(emu.operations)
    assert len(emu.calls("predictLongRunning")) == 2
    rows = items(project, batch_id)
    assert sorted(i["status"] for i in rows) == ["claimed", "claimed", "queued"]

    mark = len(emu.requests)
    emu.polls_until_done = 0
    second = project.subprocess(
        "worker", "--batch", batch_id, "--drain", "-j", "2", "--report", "report.json", env=env
    )
    assert second.returncode == 0, second.stdout + second.stderr
    # One submission per clip: the two in flight were polled, not submitted again.
    assert len(emu.calls("predictLongRunning")) == 3
    later = emu.requests[mark:]
    polled_again = {r.operation_name for r in later if r.rpc == "fetchPredictOperation"}
    assert in_flight <= polled_again
    jobs = project.jobs_in_report()
    assert {j["status"] for j in jobs.values()} == {"complete"}
    taken_over = [name for name, j in jobs.items() if j["provider_calls"] == 0]
    assert len(taken_over) == 2  # their clips came from the recorded operations
    assert sorted(i["attempts"] for i in items(project, batch_id)) == [1, 2, 2]
    assert paid_once(project) == 3 * 4  # storyboard, 2 frames, clip per job
    (listed,) = batches(project)
    assert listed["status"] == "complete" and listed["by_status"] == {"complete": 3}
    assert "AIzaTEST-WORKER-SECRET" not in Path(project.root / "report.json").read_text()


# --------------------------------------------------------------------------------------
# what a worker will not do


def test_a_worker_without_credentials_gives_its_job_back(
    project: Project, emu: VertexEmulator
) -> None:
    project.job(
        "boat",
        'prompt: "A boat"\nprovider: google\naspect_ratio: "16:9"\nclip_duration: 4\n'
        "resolution: 720p\nscenes: 1\n",
    )
    batch_id = submit(project, env=google_env(emu, "AIzaTEST-WORKER-SECRET"))
    result = project.cli("worker", "--drain")  # this machine has no credentials
    assert result.exit_code == 2, result.output
    assert "the google provider needs credentials" in result.output
    assert [(i["status"], i["attempts"]) for i in items(project, batch_id)] == [("queued", 0)]
    assert emu.requests == []


def test_a_job_whose_workers_keep_dying_is_failed(project: Project, fake: Script) -> None:
    project.job("doomed", "prompt: A balloon near a cactus.\nscenes: 1\n")
    batch_id = submit(project, "--provider", "fake")
    project.sql(
        "update batch_items set status = 'claimed', worker = 'elsewhere:42:abc', "
        "attempts = 3, lease_expires_at = :t",
        t=datetime(2000, 1, 1),
    )
    result = project.cli("worker", "--drain", "--report", "report.json")
    assert result.exit_code == 1, result.output
    (job,) = project.report()["jobs"]
    assert job["status"] == "failed"
    assert job["error"] == (
        "3 workers took this job and none finished it (each was killed or lost the "
        "database); run it alone with `vidpipe run jobs/doomed.yaml` to see why"
    )
    assert fake.history == []
    assert [(i["status"], i["attempts"]) for i in items(project, batch_id)] == [("failed", 4)]
