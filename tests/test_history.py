"""The morning questions: what ran (`batches`), what it cost (`costs`), what changed
(`report --compare previous`, `list`, `status`), and how far a batch has got (progress).

Costs are checked against the `--report` JSON of real runs of the google provider (the
real SDK against the local Vertex emulator, so every call has a price).
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import google_env
from PIL import Image
from test_report import assert_not_blank, assert_self_contained, browse, cards

from vidpipe.batch.progress import Meter
from vidpipe.store.ids import SCHEMA_VERSION
from vidpipe.testing.vertex_emulator import VertexEmulator

API_KEY = "AIzaTEST-HISTORY-SECRET"


def genv(emu: VertexEmulator) -> dict[str, str]:
    return google_env(emu, API_KEY)


def google_job(project: Any, name: str, motion: str) -> None:
    project.job(
        name,
        f'prompt: "A paper boat sails down a rainy street, {name}-marker"\nprovider: google\n'
        'aspect_ratio: "16:9"\nclip_duration: 4\nresolution: 720p\nscenes: 2\n'
        f"scene_overrides:\n  - {{index: 1, video_motion_prompt: {motion}}}\n",
    )


def cents(amount: float) -> int:
    return round(amount * 100)


# --------------------------------------------------------------------------------------
# batches and costs


def test_batches_and_costs_add_up_three_google_batches(project, emu):
    env = genv(emu)
    google_job(project, "boat", "Slow pan right")
    google_job(project, "kite", "Slow pan left")
    # 1. Both jobs, from nothing; not quiet, so the progress lines show spend and time left.
    first = project.cli("run", "--max-cost", "20", "--report", "r1.json", env=env)
    assert first.exit_code == 0, first.output
    progress = [line for line in first.stderr.splitlines() if ": complete" in line]
    assert len(progress) == 2, first.stderr
    assert re.search(r"^\[1/2\] .*\(\$\d+\.\d\d of \$20\.00 · ~\d+s left\)$", progress[0])
    spent = project.report("r1.json")["totals"]["cost_usd"]
    assert progress[1].startswith("[2/2] ") and progress[1].endswith(f"(${spent:.2f} of $20.00)")
    # 2. One motion prompt changed: only that clip is new, the rest comes from the cache.
    google_job(project, "boat", "Fast push in")
    assert project.cli("run", "-q", "--report", "r2.json", env=env).exit_code == 0
    # 3. One job made again from scratch: --force pays for every call again.
    result = project.cli("run", "-q", "--select", "kite", "--force", "--report", "r3.json", env=env)
    assert result.exit_code == 0, result.output
    reports = [project.report(f"r{i}.json") for i in (1, 2, 3)]
    totals = [r["totals"] for r in reports]
    assert all(t["cost_usd"] > 0 for t in totals)
    assert totals[1]["provider_calls"] == 1 and totals[1]["cached_calls"] > 0

    # vidpipe batches: newest first, each as its report has it, with its selection.
    listed = json.loads(project.cli("batches", "--json").stdout)
    assert [b["batch_id"] for b in listed] == [r["batch_id"] for r in reversed(reports)]
    for row, report in zip(listed, reversed(reports), strict=True):
        t = report["totals"]
        assert cents(row["cost_usd"]) == cents(t["cost_usd"])
        assert (row["provider_calls"], row["cached_calls"]) == (
            t["provider_calls"],
            t["cached_calls"],
        )
        assert row["by_status"] == t["by_status"] and row["status"] == "complete"
        assert row["duration_s"] == t["duration_s"]
    assert [b["selection"] for b in listed] == [
        "jobs/ --select kite --force",
        "jobs/",
        "jobs/ --max-cost 20",
    ]
    assert json.loads(project.cli("batches", "--json", "--limit", "1").stdout) == listed[:1]
    text = project.cli("batches").stdout.splitlines()
    assert len(text) == 3
    assert text[0].startswith(reports[2]["batch_id"])
    assert f"${totals[2]['cost_usd']:.2f}" in text[0] and "--select kite --force" in text[0]
    assert "1 complete" in text[0] and "2 complete" in text[2]

    # vidpipe costs: the same money, by day, by batch, by job and by model.
    spent = sum(t["cost_usd"] for t in totals)
    by_day = json.loads(project.cli("costs", "--by", "day", "--json").stdout)
    today = datetime.now(UTC).date().isoformat()
    assert [r["day"] for r in by_day["rows"]] == [today]
    assert cents(by_day["total"]["cost_usd"]) == cents(spent)
    assert by_day["total"]["calls"] == sum(t["provider_calls"] for t in totals)
    assert by_day["total"]["cached_calls"] == sum(t["cached_calls"] for t in totals)
    by_batch = json.loads(project.cli("costs", "--by", "batch", "--json").stdout)
    assert [(r["batch"], cents(r["cost_usd"]), r["cached_calls"]) for r in by_batch["rows"]] == [
        (r["batch_id"], cents(r["totals"]["cost_usd"]), r["totals"]["cached_calls"])
        for r in reports
    ]
    by_job = json.loads(project.cli("costs", "--by", "job", "--json").stdout)
    per_job: dict[str, float] = {}
    for report in reports:
        for job in report["jobs"]:
            per_job[job["name"]] = per_job.get(job["name"], 0.0) + job["cost_usd"]
    assert {r["job"]: cents(r["cost_usd"]) for r in by_job["rows"]} == {
        name: cents(cost) for name, cost in per_job.items()
    }
    by_model = json.loads(project.cli("costs", "--by", "model", "--json").stdout)
    models = {r["model"]: r for r in by_model["rows"]}
    assert set(models) == {
        "google/gemini-3.8-flash",
        "google/gemini-3.1-flash-image",
        "google/veo-3.1-fast-generate-001",
    }
    assert models["google/gemini-3.1-flash-image"]["cached_calls"] > 0  # beside, at $0
    assert cents(by_model["total"]["cost_usd"]) == cents(spent)

    text = project.cli("costs", "--by", "day").stdout.splitlines()
    assert text[0].split() == ["day", "calls", "cached", "cost"]
    assert text[1].split()[0] == today
    assert text[-1].split() == [
        "total",
        str(by_day["total"]["calls"]),
        str(by_day["total"]["cached_calls"]),
        f"${spent:.2f}",
    ]
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    later = json.loads(project.cli("costs", "--since", tomorrow, "--json").stdout)
    assert later["rows"] == [] and later["total"]["cost_usd"] == 0
    bad = project.cli("costs", "--since", "last tuesday")
    assert bad.exit_code == 2 and "'last tuesday' does not match the format" in bad.stderr

    # The report of the last (selective) batch says which batch it shows and how to pick.
    result = project.cli("report")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"showing batch {reports[2]['batch_id']}, the last finished one "
        "(jobs/ --select kite --force); `vidpipe batches` lists the others, `--batch ID` picks one"
    )
    assert (project.root / "tmp" / "report.html").is_file()
    assert not (project.root / "report.html").exists()

    # list: one row per job (its newest project and cost); --all every version.
    rows = json.loads(project.cli("list", "--json").stdout)
    assert [r["job"] for r in rows] == ["kite", "boat"]
    assert [r["versions"] for r in rows] == [2, 2]
    kite = next(j for j in reports[2]["jobs"] if j["name"] == "kite")
    assert rows[0]["project_id"] == kite["project_id"]
    assert cents(rows[0]["cost_usd"]) == cents(kite["cost_usd"])
    assert len(json.loads(project.cli("list", "--all", "--json").stdout)) == 4
    for path in project.root.glob("r*.json"):
        assert API_KEY not in path.read_text()


def test_costs_and_batches_of_an_empty_project(project):
    assert project.cli("batches").stdout == "no batches yet; `vidpipe run` makes one\n"
    result = project.cli("costs")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].split() == ["total", "0", "0", "$0.00"]
    assert not (project.root / "vidpipe.db").exists()  # reading creates no database


def test_a_database_without_the_call_log_carries_its_generations_over(project):
    project.job("harbour", "prompt: Dawn over a quiet harbour.\nscenes: 2\n")
    assert project.cli("run", "-q").exit_code == 0
    db = project.root / "vidpipe.db"
    # Turn it back into a schema-2 database: no call log (nor what schemas 4 to 6 added).
    with sqlite3.connect(db) as conn:
        conn.execute("drop table batch_items")
        conn.execute("drop table call_log")
        conn.execute("alter table keyframes drop column reference_images")
        conn.execute("alter table video_clips drop column reference_images")
        conn.execute("alter table generations drop column lease_expires_at")
        conn.execute("alter table projects drop column manifest_sha256")
        conn.execute("alter table projects drop column sheet_sha256")
        conn.execute("update vidpipe_meta set value = '2' where key = 'schema_version'")
        made = conn.execute("select count(*) from generations where status='complete'").fetchone()
    data = json.loads(project.cli("costs", "--by", "job", "--json").stdout)
    assert data["rows"] == [
        {"job": "harbour", "calls": made[0], "cached_calls": 0, "cost_usd": 0.0}
    ]
    with sqlite3.connect(db) as conn:
        version = conn.execute("select value from vidpipe_meta").fetchone()[0]
    assert version == str(SCHEMA_VERSION)


# --------------------------------------------------------------------------------------
# versions side by side, list, status


def png(path: Path, color: tuple[int, int, int]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (640, 360), color).save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def harbour(motion: str) -> str:
    return (
        "prompt: Dawn over a quiet harbour. A boat leaves.\nscenes: 2\n"
        "scene_overrides:\n"
        "  - {index: 0, start_image: frames/dawn.png}\n"
        f"  - {{index: 1, video_motion_prompt: {motion}}}\n"
    )


def test_compare_previous_shows_both_versions_with_what_changed(project, tmp_path):
    png(project.root / "jobs" / "frames" / "dawn.png", (200, 120, 60))
    project.job("harbour", harbour("Slow pan right across the water"))
    assert project.cli("run", "-q", "--report", "first.json").exit_code == 0
    project.job("harbour", harbour("Fast push in on the boat"))
    project.job("lantern", "prompt: A lantern in the fog.\nscenes: 1\n")
    assert project.cli("run", "-q", "--report", "second.json").exit_code == 0
    first = project.jobs_in_report("first.json")["harbour"]
    second = project.jobs_in_report("second.json")["harbour"]
    assert first["project_id"] != second["project_id"]

    result = project.cli("report", "--html", "site/compare.html", "--compare", "previous")
    assert result.exit_code == 0, result.output
    page = project.root / "site" / "compare.html"
    assert_self_contained(page)
    dom, image = browse(page, tmp_path)
    assert_not_blank(image)
    shown = cards(dom)
    assert sorted(shown) == ["harbour", "lantern"]
    card = shown["harbour"]
    assert card.count("<video") == 2  # this version and the previous one
    assert f'src="../{second["output"]}"' in card and f'src="../{first["output"]}"' in card
    assert f'data-project="{first["project_id"]}"' in card
    changes = re.search(r'<div class="changes">.*?<ul>(.*?)</ul>', card, flags=re.S)
    assert changes is not None
    # The plan's reason for the one new generation.
    assert re.findall(r"<li>(.*?)</li>", changes.group(1)) == [
        "scene 1's motion prompt changed (scene 1's video_motion_prompt)"
    ]
    assert card.count("version cost") == 2
    # The previous version's half of the card is drawn: the right half of the first card
    # holds a player and a contact sheet, not the page's flat background.
    right = image.convert("L").crop((660, 200, 1240, 700))
    lo, hi = right.getextrema()
    assert hi - lo > 150
    assert "first version of this job" in shown["lantern"]
    assert shown["lantern"].count("<video") == 1

    # list: one row per job; --all every version; an unknown status names the valid ones.
    lines = project.cli("list").stdout.splitlines()
    assert lines[0].split() == ["project", "status", "job", "created", "cost", "output"]
    assert sorted(line.split()[2] for line in lines[1:]) == ["harbour", "lantern"]
    assert "(2 versions)" in next(line for line in lines if " harbour " in line)
    assert len(project.cli("list", "--all").stdout.splitlines()) == 1 + 3
    assert project.cli("list", "--status", "failed").stdout == "no failed projects\n"
    bad = project.cli("list", "--status", "done")
    assert bad.exit_code == 2
    assert (
        "Invalid value for '--status': 'done' is not one of 'pending', 'storyboarding', "
        "'keyframing', 'generating_video', 'stitching', 'complete', 'failed', 'stopped'."
    ) in bad.stderr

    # status: where every keyframe and clip of the new version came from, and its runs.
    text = project.cli("status", "harbour").stdout.splitlines()
    scenes = [line.split() for line in text if line.startswith("  scene")]
    assert [s[3:9] for s in scenes] == [
        ["start", "override", "end", "cached", "clip", "cached"],
        ["start", "inherited", "end", "cached", "clip", "generated"],
    ]
    runs = text[text.index("runs:") + 1 :]
    assert len([r for r in runs if r.startswith("  20")]) == 1
    batch = project.report("second.json")["batch_id"]
    assert runs[0].endswith(f"batch {batch}") and "1 new" in runs[0]


def test_meter_estimates_the_time_left_from_measured_latencies():
    meter = Meter(max_cost=5.0)
    meter.plan({"storyboard": 2, "image": 4, "video": 4}, jobs=2, workers=2)
    assert meter.eta() is None
    assert meter.summary() == "$0.00 of $5.00"
    meter.call("storyboard", cost=0.01, latency=2.0, cached=False)
    meter.call("image", cost=0.04, latency=4.0, cached=False)
    meter.call("image", cost=0.0, latency=None, cached=True)
    # Left: 1 storyboard (2 s), 2 images (4 s), 4 clips at the mean of what was measured
    # (3 s); two jobs at once, and a job's two clips polled together.
    assert meter.eta() == pytest.approx(1 * 2 / 2 + 2 * 4 / 2 + 4 * 3 / 4)
    assert meter.summary() == "$0.05 of $5.00 · ~8s left"
