"""The batch/CI features of `vidpipe run` and `vidpipe estimate`, through the CLI.

`estimate`, `--dry-run`, `--max-cost`, `--select`, `--shard`, `--fail-fast`, `--junit`,
`--report`, and the refusal of an invalid batch before anything runs. Jobs use the
recording fake provider (tests/fakes.py), the real local provider at the project's fast
defaults, or the google provider against the local Vertex emulator; every test checks the
files vidpipe wrote and what the providers received.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from vidpipe.batch.runner import shard_of
from vidpipe.pricing import catalog_prices
from vidpipe.testing.fakes import Script, fail_with
from vidpipe.testing.vertex_emulator import VertexEmulator, idea_storyboard

API_KEY = "AIzaTEST-BATCH-KEY"

# --------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def _emulator() -> Iterator[VertexEmulator]:
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.lower().endswith("_proxy"):
                mp.delenv(key, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        with VertexEmulator(polls_until_done=1, storyboard_fn=idea_storyboard) as emulator:
            yield emulator


@pytest.fixture
def emu(_emulator: VertexEmulator) -> Iterator[VertexEmulator]:
    _emulator.reset(config=True)
    yield _emulator
    _emulator.reset(config=True)


def genv(emu: VertexEmulator) -> dict[str, str]:
    return {
        "GOOGLE_API_KEY": API_KEY,
        "GOOGLE_CLOUD_PROJECT": "vidpipe-test",
        "GOOGLE_CLOUD_LOCATION": "us-central1",
        "VIDPIPE_GOOGLE__BASE_URL": emu.url,
        "VIDPIPE_GOOGLE__POLL_INTERVAL": "0.05",
        "VIDPIPE_GOOGLE__RETRY_BASE_DELAY": "0.01",
    }


def google_job(project: Any, name: str, *, scenes: int = 1, extra: str = "") -> str:
    """A Veo-compatible google job whose prompt carries the marker `<name>-marker`."""
    prompt = f"A paper boat sails down a rainy street, {name}-marker"
    project.job(
        name,
        f'prompt: "{prompt}"\nprovider: google\naspect_ratio: "16:9"\n'
        f"clip_duration: 4\nresolution: 720p\nscenes: {scenes}\n{extra}",
    )
    return prompt


def fake_job(project: Any, name: str, *, scenes: int = 1) -> None:
    project.job(
        name, f"prompt: A red kite over a hill, {name}-marker.\nprovider: fake\nscenes: {scenes}\n"
    )


def mentions(emu: VertexEmulator, marker: str) -> int:
    """Requests the emulator received that carry `marker` anywhere in their body."""
    return sum(1 for r in emu.calls() if marker in r.prompt or marker in json.dumps(r.body))


def fake_calls_for(fake: Script, marker: str) -> list[Any]:
    return [c for c in fake.history if marker in repr(c.request)]


def run(project: Any, *args: str, env: dict[str, str] | None = None) -> Any:
    result = project.cli("run", "-q", *args, env=env)
    assert "Traceback" not in result.output
    return result


def names_in(project: Any, rel: str = "report.json") -> list[str]:
    return [j["name"] for j in project.report(rel)["jobs"]]


def project_rows(project: Any) -> list[tuple[Any, ...]]:
    db = project.root / "vidpipe.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("select job_name, status from projects").fetchall()


def png(path: Any, color: tuple[int, int, int]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def storyboard_cost(prompt: str, scenes: int) -> float:
    """The storyboard estimate: ~4 characters a token + ~700 for the template in, and
    150 + 220 a scene out (Provider.planned_usage), at the default storyboard model's prices."""
    price = catalog_prices()["gemini-3.8-flash"]
    tokens_in = len(prompt) // 4 + 700
    tokens_out = 150 + 220 * scenes
    return (
        tokens_in / 1e6 * price["per_million_input_tokens"]
        + tokens_out / 1e6 * price["per_million_output_tokens"]
    )


# --------------------------------------------------------------------------------------
# 1. vidpipe estimate


def test_estimate_counts_calls_and_prices_them_without_calling(project, fake, emu):
    # A local job with two frames given: 1 + 3 - 2 images.
    png(project.root / "jobs" / "frames" / "first.png", (200, 30, 30))
    png(project.root / "jobs" / "frames" / "end1.png", (30, 200, 30))
    project.job(
        "local-three",
        "prompt: Dawn over a quiet harbour. Gulls. A boat leaves.\nscenes: 3\n"
        "scene_overrides:\n"
        "  - {index: 0, start_image: frames/first.png}\n"
        "  - {index: 1, end_image: frames/end1.png}\n",
    )
    g3 = google_job(project, "google-three", scenes=3)
    g_silent = google_job(project, "google-silent", scenes=2, extra="generate_audio: false\n")
    fake_job(project, "fake-two", scenes=2)

    result = project.cli("estimate", "--json", env=genv(emu))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    jobs = {j["name"]: j for j in data["jobs"]}
    assert set(jobs) == {"local-three", "google-three", "google-silent", "fake-two"}

    local = jobs["local-three"]
    assert local["calls"] == {"storyboard": 1, "image": 2, "video": 3}
    assert local["cost_usd"] == 0
    assert local["unpriced_models"] == []

    veo = catalog_prices()["veo-3.1-fast-generate-001"]
    image = catalog_prices()["gemini-3.1-flash-image"]["per_image"]
    google = jobs["google-three"]
    assert google["provider"] == {"storyboard": "google", "image": "google", "video": "google"}
    assert google["calls"] == {"storyboard": 1, "image": 4, "video": 3}
    # Veo 3 makes audio unless told not to: the audio price.
    assert google["by_step"]["video"] == pytest.approx(3 * 4 * veo["per_second_audio"], abs=1e-9)
    assert google["by_step"]["image"] == pytest.approx(4 * image, abs=1e-9)
    assert google["by_step"]["storyboard"] == pytest.approx(storyboard_cost(g3, 3), abs=1e-6)
    assert google["cost_usd"] == pytest.approx(sum(google["by_step"].values()), abs=1e-6)
    assert google["cost_usd"] == pytest.approx(2.072, abs=0.005)  # "about $2" (README)
    assert google["unpriced_models"] == []

    silent = jobs["google-silent"]
    assert silent["calls"] == {"storyboard": 1, "image": 3, "video": 2}
    assert silent["by_step"]["video"] == pytest.approx(2 * 4 * veo["per_second"], abs=1e-9)
    assert silent["cost_usd"] == pytest.approx(
        2 * 4 * veo["per_second"] + 3 * image + storyboard_cost(g_silent, 2), abs=1e-6
    )

    # A provider without prices costs 0 and says so.
    fake_est = jobs["fake-two"]
    assert fake_est["calls"] == {"storyboard": 1, "image": 3, "video": 2}
    assert fake_est["cost_usd"] == 0
    assert sorted(fake_est["unpriced_models"]) == ["fake-image", "fake-text", "fake-video"]

    assert data["total_usd"] == pytest.approx(sum(j["cost_usd"] for j in jobs.values()), abs=1e-6)

    # No call, no database, no artifacts.
    assert emu.calls() == []
    assert fake.history == []
    assert not (project.root / "vidpipe.db").exists()
    assert not (project.root / "tmp").exists()

    # Estimating needs no credentials: the same answer with none set.
    offline = project.cli("estimate", "--json")
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout) == data

    text = project.cli("estimate", env=genv(emu))
    assert text.exit_code == 0, text.output
    assert "google-three" in text.stdout and "images  4, clips  3" in text.stdout
    assert "no price for" in text.stdout  # the fake job's models
    assert f"total: ${data['total_usd']:.2f} for 4 job(s)" in text.stdout
    assert emu.calls() == [] and fake.history == []


# --------------------------------------------------------------------------------------
# 2. run --dry-run


def test_dry_run_plans_every_job_and_creates_nothing(project, fake, emu):
    project.job("local-one", "prompt: A lantern in the fog.\nscenes: 2\n")
    google_job(project, "google-one")
    fake_job(project, "fake-one")
    estimate = json.loads(project.cli("estimate", "--json", env=genv(emu)).stdout)
    expected = {j["name"]: j["cost_usd"] for j in estimate["jobs"]}

    result = run(project, "--dry-run", "--report", "r.json", "--junit", "j.xml", env=genv(emu))
    assert result.exit_code == 0, result.output
    report = project.report("r.json")
    assert {j["name"]: j["status"] for j in report["jobs"]} == dict.fromkeys(expected, "planned")
    assert {j["name"]: j["estimate_usd"] for j in report["jobs"]} == expected
    assert expected["google-one"] > 0
    for job in report["jobs"]:
        assert (job["project_id"], job["output"], job["provider_calls"]) == (None, None, 0)
    assert report["totals"]["by_status"] == {"planned": 3}
    assert report["totals"]["estimate_usd"] == pytest.approx(estimate["total_usd"])
    assert report["totals"]["cost_usd"] == 0

    suite = ET.parse(project.root / "j.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "3")
    # A dry run needs no credentials (a check for pull requests from forks).
    assert run(project, "--dry-run", "--report", "r2.json").exit_code == 0
    assert project.report("r2.json")["jobs"] == report["jobs"]

    # No provider call and no project: not even a database file.
    assert emu.calls() == [] and fake.history == []
    assert not (project.root / "vidpipe.db").exists()
    assert not (project.root / "tmp").exists()
    listing = project.cli("list", "--json")
    assert listing.exit_code == 0 and json.loads(listing.stdout) == []


# --------------------------------------------------------------------------------------
# 3. --max-cost


@pytest.mark.parametrize("jobs_at_once", ["1", "3"])
def test_max_cost_starts_jobs_in_order_while_the_budget_holds(project, emu, jobs_at_once):
    markers = {}
    for name in ("g1-first", "g2-second", "g3-third"):
        google_job(project, name)
        markers[name] = f"{name}-marker"
    estimate = json.loads(project.cli("estimate", "--json", env=genv(emu)).stdout)
    each = {j["name"]: j["cost_usd"] for j in estimate["jobs"]}
    # The same job but for its name (a token more or less in the storyboard prompt).
    assert max(each.values()) - min(each.values()) < 1e-5 and each["g1-first"] > 0.5
    budget = 2.5 * each["g1-first"]  # two jobs fit, the third does not

    result = run(
        project,
        "-j",
        jobs_at_once,
        "--max-cost",
        f"{budget:.4f}",
        "--report",
        "report.json",
        "--junit",
        "junit.xml",
        env=genv(emu),
    )
    assert result.exit_code == 1, result.output
    jobs = project.jobs_in_report()
    assert {n: j["status"] for n, j in jobs.items()} == {
        "g1-first": "complete",
        "g2-second": "complete",
        "g3-third": "skipped_budget",
    }
    third = jobs["g3-third"]
    assert "--max-cost" in third["error"]
    assert (third["provider_calls"], third["cost_usd"], third["output"]) == (0, 0, None)
    assert third["estimate_usd"] == pytest.approx(each["g3-third"])
    # The budget held: what was spent is within it, and the skipped job made no request.
    assert project.report()["totals"]["cost_usd"] <= budget
    assert mentions(emu, markers["g1-first"]) > 0 and mentions(emu, markers["g2-second"]) > 0
    assert mentions(emu, markers["g3-third"]) == 0

    suite = ET.parse(project.root / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "1")
    skipped = suite.find("testcase[@name='g3-third']/skipped")
    assert skipped is not None and "--max-cost" in skipped.get("message")


# --------------------------------------------------------------------------------------
# 4. --select and --shard


def twelve_jobs(project: Any) -> list[str]:
    for name in ("alpha", "bravo", "charlie", "delta"):
        project.job(name, f"prompt: A {name} at dusk.\nscenes: 1\n")
    project.job(
        "promo",
        "prompt: A bottle on a table.\nscenes: 1\nmatrix:\n  style: [noir, anime, pastel, retro]\n",
    )
    project.job(
        "teaser",
        "prompt: A city at night.\nscenes: 1\nmatrix:\n"
        '  aspect_ratio: ["16:9", "9:16"]\n  style: [noir, anime]\n',
    )
    result = run(project, "--dry-run", "--report", "all.json")
    assert result.exit_code == 0, result.output
    names = names_in(project, "all.json")
    assert len(names) == len(set(names)) == 12
    return names


def dry_names(project: Any, *args: str) -> list[str]:
    result = run(project, "--dry-run", "--report", "sel.json", *args)
    assert result.exit_code == 0, result.output
    return names_in(project, "sel.json")


def test_select_picks_jobs_by_name_including_matrix_names(project):
    names = twelve_jobs(project)
    promos = [n for n in names if n.startswith("promo-")]
    assert len(promos) == 4 and "promo-noir" in promos
    assert dry_names(project, "--select", "promo-*") == promos
    assert dry_names(project, "--select", "promo-noir", "--select", "a*") == [
        n for n in names if n in ("alpha", "promo-noir")
    ]
    assert dry_names(project, "--select", "*-noir*") == [n for n in names if "-noir" in n]
    assert dry_names(project, "--select", "teaser-*-anime") == [
        n for n in names if n.startswith("teaser-") and n.endswith("-anime")
    ]
    # A selection that matches no job is a usage error, with or without --dry-run.
    for extra in ((), ("--dry-run",)):
        result = run(project, "--select", "nothing-*", *extra)
        assert result.exit_code == 2, result.output
        assert "--select" in result.output
    assert not (project.root / "vidpipe.db").exists()


def test_shards_are_a_stable_disjoint_cover(project):
    names = twelve_jobs(project)
    split: dict[int, list[list[str]]] = {}
    for n in range(1, 5):
        split[n] = [dry_names(project, "--shard", f"{k}/{n}") for k in range(1, n + 1)]
        flat = [name for shard in split[n] for name in shard]
        assert sorted(flat) == sorted(names), f"N={n}: not disjoint or not complete"
        assert all(split[n]), f"N={n}: an empty shard among 12 jobs"  # a fair hash
        # The split is the documented, stable one (sha256 of the name), not run-dependent.
        for k, shard in enumerate(split[n], start=1):
            assert all(shard_of(name, n) == k for name in shard)
    assert split[1] == [names]
    # Another run, with two more jobs: no existing job changes shard.
    project.job("echo", "prompt: An echo.\nscenes: 1\n")
    project.job("foxtrot", "prompt: A fox.\nscenes: 1\n")
    for k in (1, 2):
        again = dry_names(project, "--shard", f"{k}/2")
        assert [n for n in again if n not in ("echo", "foxtrot")] == split[2][k - 1]
    # --select and --shard combine: the shard of the selection.
    promos = [n for n in names if n.startswith("promo-")]
    assert dry_names(project, "--select", "promo-*", "--shard", "1/2") == [
        n for n in promos if shard_of(n, 2) == 1
    ]


@pytest.mark.parametrize("shard", ["0/3", "4/3", "x", "1/0", "-1/3", "1/2/3", "1/", "a/b"])
def test_invalid_shard_is_a_usage_error(project, shard):
    project.job("one", "prompt: One.\nscenes: 1\n")
    result = project.cli("run", "--shard", shard)
    assert result.exit_code == 2, result.output
    assert "--shard" in result.output
    assert not (project.root / "vidpipe.db").exists()


def test_an_empty_shard_is_not_an_error(project, fake):
    # One job in four shards: three shards are empty, which is fine for a CI matrix.
    fake_job(project, "lonely")
    home = shard_of("lonely", 4)
    for k in range(1, 5):
        result = run(project, "--shard", f"{k}/4", "--report", f"r{k}.json", "--junit", f"j{k}.xml")
        assert result.exit_code == 0, result.output
        report = project.report(f"r{k}.json")
        suite = ET.parse(project.root / f"j{k}.xml").getroot().find("testsuite")
        if k == home:
            assert [(j["name"], j["status"]) for j in report["jobs"]] == [("lonely", "complete")]
            assert suite.get("tests") == "1"
        else:
            assert report["jobs"] == [] and suite.get("tests") == "0"
    assert project_rows(project) == [("lonely", "complete")]


# --------------------------------------------------------------------------------------
# 5. --fail-fast


def test_fail_fast_starts_no_job_after_a_failure(project, fake):
    for name in ("a-first", "b-second", "c-third"):
        fake_job(project, name)
    fake.failures["storyboard"] = [
        fail_with("the model is down", times=None, when=lambda r: "a-first-marker" in r.prompt)
    ]
    result = run(project, "-j", "1", "--fail-fast", "--report", "report.json")
    assert result.exit_code == 1, result.output
    jobs = project.jobs_in_report()
    assert [(n, j["status"]) for n, j in jobs.items()] == [
        ("a-first", "failed"),
        ("b-second", "stopped"),
        ("c-third", "stopped"),
    ]
    assert "the model is down" in jobs["a-first"]["error"]
    for name in ("b-second", "c-third"):
        job = jobs[name]
        assert "not started" in job["error"]
        assert (job["project_id"], job["provider_calls"], job["cached_calls"]) == (None, 0, 0)
        assert fake_calls_for(fake, f"{name}-marker") == []
    assert fake.history and all(c.capability == "storyboard" for c in fake.history)
    assert [row[0] for row in project_rows(project)] == ["a-first"]

    # Without --fail-fast the failure stays the first job's alone.
    fake.history.clear()
    result = run(project, "-j", "1", "--report", "report.json")
    assert result.exit_code == 1
    statuses = {n: j["status"] for n, j in project.jobs_in_report().items()}
    assert statuses == {"a-first": "failed", "b-second": "complete", "c-third": "complete"}


# --------------------------------------------------------------------------------------
# 6. --junit and --report


PRICED_FAKE = "pricing:\n  fake-video: {per_second: 1.0}\n"  # a fake second costs $1


def test_report_and_junit_of_a_mixed_batch(project, fake):
    project.write("vidpipe.yaml", (project.root / "vidpipe.yaml").read_text() + PRICED_FAKE)
    fake_job(project, "a-broken")  # est. $1; fails, spends nothing
    fake_job(project, "b-ok")  # est. $1; spends $1
    project.job(  # the same inputs as b-ok: every call comes from the cache
        "c-copy", "prompt: A red kite over a hill, b-ok-marker.\nprovider: fake\nscenes: 1\n"
    )
    fake_job(project, "d-big", scenes=3)  # est. $3: $1 spent + $3 > $2.50
    fake.failures["storyboard"] = [
        fail_with("quota <exceeded> & gone", times=None, when=lambda r: "a-broken" in r.prompt)
    ]
    result = run(
        project,
        "-j",
        "1",
        "--max-cost",
        "2.5",
        "--report",
        "out/report.json",
        "--junit",
        "out/junit.xml",
    )
    assert result.exit_code == 1, result.output

    report = project.report("out/report.json")
    spec_fields = {
        "name",
        "status",
        "project_id",
        "output",
        "cost_usd",
        "duration_s",
        "provider_calls",
        "cached_calls",
        "error",
    }
    for job in report["jobs"]:
        assert spec_fields <= set(job), job
    jobs = {j["name"]: j for j in report["jobs"]}
    assert [j["name"] for j in report["jobs"]] == ["a-broken", "b-ok", "c-copy", "d-big"]
    assert {n: j["status"] for n, j in jobs.items()} == {
        "a-broken": "failed",
        "b-ok": "complete",
        "c-copy": "complete",
        "d-big": "skipped_budget",
    }
    broken, ok, copy, big = (jobs[n] for n in ("a-broken", "b-ok", "c-copy", "d-big"))
    assert "quota <exceeded> & gone" in broken["error"]
    assert broken["provider_calls"] == len(fake_calls_for(fake, "a-broken-marker")) >= 1
    assert broken["cost_usd"] == 0 and broken["output"] is None and broken["project_id"]
    assert (ok["provider_calls"], ok["cached_calls"], ok["cost_usd"]) == (4, 0, 1.0)
    assert (copy["provider_calls"], copy["cached_calls"], copy["cost_usd"]) == (0, 4, 0)
    assert ok["error"] is None and ok["duration_s"] > 0
    assert (project.root / ok["output"]).is_file() and (project.root / copy["output"]).is_file()
    assert ok["output"].startswith("tmp/b-ok/") and ok["output"].endswith("/output/final.mp4")
    assert big["provider_calls"] == 0 and "--max-cost" in big["error"]
    assert fake_calls_for(fake, "d-big-marker") == []

    totals = report["totals"]
    assert totals["jobs"] == 4
    assert totals["by_status"] == {"failed": 1, "complete": 2, "skipped_budget": 1}
    assert totals["provider_calls"] == sum(j["provider_calls"] for j in jobs.values())
    assert totals["provider_calls"] == len(fake.history)
    assert totals["cached_calls"] == 4
    assert totals["cost_usd"] == 1.0
    # One job after the other: the batch took at least as long as its jobs together.
    assert totals["duration_s"] >= sum(j["duration_s"] for j in jobs.values()) - 0.01
    # The report kept in the database (what `vidpipe report` shows) is this one.
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        (stored,) = conn.execute("select report from batches").fetchone()
    assert json.loads(stored) == report

    root = ET.parse(project.root / "out" / "junit.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a-broken", "b-ok", "c-copy", "d-big"]
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == (
        "4",
        "1",
        "0",
        "1",
    )
    assert float(suite.get("time")) == pytest.approx(totals["duration_s"], abs=0.001)
    for case in cases:
        assert float(case.get("time")) >= 0
    by_name = {c.get("name"): c for c in cases}
    failure = by_name["a-broken"].find("failure")
    assert failure is not None and failure.text == broken["error"]
    assert "quota <exceeded> & gone" in failure.get("message")
    assert by_name["d-big"].find("skipped") is not None
    for name in ("b-ok", "c-copy"):
        assert by_name[name].find("failure") is None and by_name[name].find("skipped") is None
    assert float(by_name["b-ok"].get("time")) == pytest.approx(ok["duration_s"], abs=0.001)


def test_junit_marks_jobs_fail_fast_never_started_as_skipped(project, fake):
    for name in ("a-first", "b-second"):
        fake_job(project, name)
    fake.failures["storyboard"] = [
        fail_with("boom", times=None, when=lambda r: "a-first" in r.prompt)
    ]
    result = run(project, "-j", "1", "--fail-fast", "--junit", "junit.xml")
    assert result.exit_code == 1
    suite = ET.parse(project.root / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "1")
    skipped = suite.find("testcase[@name='b-second']/skipped")
    assert skipped is not None and "not started" in skipped.get("message")


# --------------------------------------------------------------------------------------
# 7. An invalid batch is refused before anything runs


def refused(project: Any, emu: VertexEmulator, *extra: str) -> str:
    result = run(project, "--report", "report.json", "--junit", "junit.xml", *extra, env=genv(emu))
    assert result.exit_code == 2, (extra, result.output)
    assert "nothing was run." in result.stderr and "Traceback" not in result.stderr
    return result.stderr


def assert_nothing_happened(project: Any, fake: Script, emu: VertexEmulator) -> None:
    assert fake.history == [] and emu.calls() == []
    assert not (project.root / "vidpipe.db").exists()
    assert not (project.root / "tmp").exists()
    assert not (project.root / "report.json").exists()
    assert not (project.root / "junit.xml").exists()


def test_invalid_job_files_anywhere_stop_the_batch_before_any_call(project, fake, emu):
    """Selection chooses what runs, not what is valid: an invalid file fails every
    selection and every shard of the batch, before a row, a file or a call exists."""
    fake_job(project, "good")
    google_job(project, "cloud")
    project.job("typo", "prompt: A kite.\nprovider: fake\nscenez: 2\n")
    project.write("jobs/broken.yaml", "prompt: [unclosed\nscenes: 1\n")
    selections = [(), ("--select", "good"), ("--shard", f"{shard_of('good', 2)}/2")]
    for extra in selections:
        errors = refused(project, emu, *extra)
        assert "jobs/typo.yaml:3:1: unknown key 'scenez'" in errors
        assert "jobs/broken.yaml:2:" in errors and "invalid YAML" in errors
        assert "2 problems found" in errors
    assert_nothing_happened(project, fake, emu)

    # A file the schema accepts but the job's provider refuses (Veo makes 4, 6 or 8 s
    # clips) is just as invalid, selected or not. (Schema problems are reported first:
    # provider checks need jobs that load.)
    (project.root / "jobs" / "typo.yaml").unlink()
    (project.root / "jobs" / "broken.yaml").unlink()
    project.job(
        "bad-veo",
        'prompt: A boat.\nprovider: google\naspect_ratio: "1:1"\nclip_duration: 5\n'
        "resolution: 720p\nscenes: 1\n",
    )
    for extra in selections:
        errors = refused(project, emu, *extra)
        assert "jobs/bad-veo.yaml:3:" in errors and "not 1:1" in errors
        assert "jobs/bad-veo.yaml:4:" in errors and "not 5" in errors
        assert "2 problems found" in errors
    assert_nothing_happened(project, fake, emu)

    # `validate` agrees with `run`.
    result = project.cli("validate", env=genv(emu))
    assert result.exit_code == 2 and "jobs/bad-veo.yaml:4:" in result.stderr


def test_credentials_are_only_needed_by_the_selected_jobs(project, fake):
    fake_job(project, "good")
    google_job(project, "cloud")
    # No GOOGLE_API_KEY: a batch with the google job is refused before anything runs ...
    result = run(project)
    assert result.exit_code == 2
    assert "GOOGLE_API_KEY" in result.stderr
    assert fake.history == [] and project_rows(project) == []
    # ... but not one that leaves it out.
    result = run(project, "--select", "good", "--report", "report.json")
    assert result.exit_code == 0, result.output
    assert names_in(project) == ["good"]
    assert project_rows(project) == [("good", "complete")]
