"""`vidpipe plan`, `run --dry-run` and `--max-cost`: what is new, why, and what it costs.

Jobs use the google provider against the local Vertex emulator so that prices are real
(non-zero); every claim the plan makes is checked against what the following run did.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vidpipe.testing.vertex_emulator import VertexEmulator, idea_storyboard

API_KEY = "AIzaTEST-PLAN-KEY"


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


def png(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())


def google_job(project: Any, name: str, *, scenes: int = 2, extra: str = "") -> Path:
    return project.job(
        name,
        f'prompt: "A paper boat sails down a rainy street ({name})"\n'
        "provider: google\n"
        'aspect_ratio: "16:9"\n'
        "clip_duration: 4\n"
        "resolution: 720p\n"
        f"scenes: {scenes}\n{extra}",
    )


def plan_json(project: Any, emu: VertexEmulator, *args: str) -> dict[str, Any]:
    result = project.cli("plan", "--json", *args, env=genv(emu))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def statuses(job: dict[str, Any]) -> dict[str, str]:
    return {g["node"]: g["status"] for g in job["generations"]}


def run_job(project: Any, emu: VertexEmulator, *args: str) -> dict[str, Any]:
    result = project.cli("run", "-q", "--report", "report.json", *args, env=genv(emu))
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = project.report()
    return report


def with_motion(marker: str) -> str:
    return (
        "scene_overrides:\n"
        "  - index: 0\n"
        "    start_image: start.png\n"
        "  - index: 1\n"
        f'    video_motion_prompt: "Slow push-in on the harbour, {marker}"\n'
    )


def test_plan_says_what_is_new_why_and_what_it_costs(project, emu):
    png(project.root / "jobs" / "start.png", (1280, 720), (200, 40, 40))
    google_job(project, "boat", extra=with_motion("calm"))
    estimate = json.loads(project.cli("estimate", "--json", env=genv(emu)).stdout)["jobs"][0]
    one_clip = estimate["by_step"]["video"] / 2
    assert one_clip > 0

    # Nothing made yet: everything is new, priced as the estimate prices it.
    first = plan_json(project, emu)["jobs"][0]
    assert first["storyboard_pending"] is True
    assert set(statuses(first).values()) == {"new"}
    # Scene 0 starts on the job's image: no start frame to generate.
    assert list(statuses(first)) == [
        "storyboard",
        "scene 0 end frame",
        "scene 0 clip",
        "scene 1 end frame",
        "scene 1 clip",
    ]
    assert first["new_cost_usd"] == pytest.approx(estimate["cost_usd"])
    pending = first["generations"][1]
    assert pending["key"] is None and pending["reasons"] == [
        "depends on the storyboard, which is new"
    ]
    assert emu.calls() == []
    assert not (project.root / "vidpipe.db").exists()

    report = run_job(project, emu)
    assert report["jobs"][0]["status"] == "complete"
    keys = {g["key"] for g in plan_json(project, emu)["jobs"][0]["generations"]}

    # Unchanged: every generation is reused, at $0.00, with the keys the run used.
    unchanged = plan_json(project, emu)["jobs"][0]
    assert set(statuses(unchanged).values()) == {"reuse"}
    assert unchanged["new_cost_usd"] == 0 and unchanged["stitch"]["status"] == "reuse"
    assert {g["key"] for g in unchanged["generations"]} == keys
    text = project.cli("plan", env=genv(emu))
    assert text.exit_code == 0, text.output
    assert "total: 0 new generations $0.00, 5 reused" in text.stdout

    # One scene's motion prompt edited: exactly that clip is new, priced at one clip.
    google_job(project, "boat", extra=with_motion("stormy"))
    edited = plan_json(project, emu)["jobs"][0]
    new = [g for g in edited["generations"] if g["status"] == "new"]
    assert [g["node"] for g in new] == ["scene 1 clip"]
    assert new[0]["reasons"] == ["scene 1's motion prompt changed (scene 1's video_motion_prompt)"]
    assert edited["new_cost_usd"] == pytest.approx(one_clip)
    text = project.cli("plan", env=genv(emu)).stdout
    assert "+ scene 1 clip" in text and f"${one_clip:.2f}" in text

    emu.reset()
    report = run_job(project, emu)
    job = report["jobs"][0]
    assert (job["provider_calls"], job["cost_usd"]) == (1, pytest.approx(one_clip))

    # The start image replaced by other bytes: the plan names the file.
    png(project.root / "jobs" / "start.png", (1280, 720), (40, 40, 200))
    replaced = plan_json(project, emu)["jobs"][0]
    assert statuses(replaced) == {
        "storyboard": "reuse",
        "scene 0 end frame": "new",
        "scene 0 clip": "new",
        "scene 1 end frame": "new",
        "scene 1 clip": "new",
    }
    reasons = {g["node"]: g["reasons"] for g in replaced["generations"]}
    assert reasons["scene 0 end frame"] == ["scene 0's start_image (jobs/start.png) changed"]
    assert "scene 0's start_image (jobs/start.png) changed" in reasons["scene 0 clip"]
    assert reasons["scene 1 end frame"] == ["scene 0's end frame is new"]


def test_dry_run_and_max_cost_pick_the_same_jobs(project, emu):
    for name in ("a-cached", "b-new", "c-new"):
        google_job(project, name, scenes=1)
    run_job(project, emu, "--select", "a-cached")
    each = json.loads(project.cli("estimate", "--json", env=genv(emu)).stdout)["jobs"]
    whole = {j["name"]: j["cost_usd"] for j in each}
    # Charged its whole estimate, the cached job would leave room for one more job only;
    # charged what is new ($0), it leaves room for b but not c.
    budget = 1.5 * whole["b-new"]
    assert whole["a-cached"] + whole["b-new"] > budget

    dry = project.cli(
        "run", "--dry-run", "--max-cost", f"{budget:.4f}", "--report", "dry.json", env=genv(emu)
    )
    assert dry.exit_code == 1, dry.output
    planned = project.jobs_in_report("dry.json")
    assert {n: j["status"] for n, j in planned.items()} == {
        "a-cached": "planned",
        "b-new": "planned",
        "c-new": "skipped_budget",
    }
    assert planned["a-cached"]["estimate_usd"] == 0
    assert "planned cost $" in dry.output

    emu.reset()
    real = project.cli(
        "run", "-q", "--max-cost", f"{budget:.4f}", "--report", "real.json", env=genv(emu)
    )
    assert real.exit_code == 1, real.output
    ran = project.jobs_in_report("real.json")
    assert {n: j["status"] for n, j in ran.items()} == {
        "a-cached": "complete",
        "b-new": "complete",
        "c-new": "skipped_budget",
    }
    assert ran["c-new"]["error"] == planned["c-new"]["error"]
    assert not any("c-new" in r.prompt for r in emu.calls())
