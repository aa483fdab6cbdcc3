"""End-to-end tests of the `google` provider: the real CLI, the real google-genai SDK, and
the local Vertex emulator (tests/vertex_emulator.py) standing in for Vertex AI.

Nothing is mocked between `vidpipe run` and the HTTP requests: each test writes job files,
runs the CLI (in-process with Click's runner, or as a real `python -m vidpipe` process),
then checks what the emulator received and what vidpipe wrote (the database, the
manifest, the reports, the stitched video). Only loopback addresses may be reached.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import google.auth
import pytest

from vidpipe.media import probe
from vidpipe.pricing import PriceTable
from vidpipe.providers import Usage
from vidpipe.testing.vertex_emulator import RecordedRequest, VertexEmulator, idea_storyboard

# conftest.Project, only for annotations (tests/ is not a package).
Project = Any

API_KEY = "AIzaTEST-SECRET-KEY-123"
PROJECT = "vidpipe-test"
LOCATION = "us-central1"
FRAME = 1 / 24  # the emulator's clips are 24 fps


# --------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module", autouse=True)
def _loopback_only() -> Iterator[None]:
    """No request may leave the machine, and nothing may look for real credentials."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.lower().endswith("_proxy"):
                mp.delenv(key, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")

        def no_adc(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("google.auth.default() must not be called in tests")

        mp.setattr(google.auth, "default", no_adc)
        real_connect = socket.socket.connect

        def connect(self: socket.socket, address: Any) -> Any:
            inet = self.family in (socket.AF_INET, socket.AF_INET6)
            if inet and address[0] not in ("127.0.0.1", "::1", "localhost"):
                raise AssertionError(f"a test tried to reach {address!r}")
            return real_connect(self, address)

        mp.setattr(socket.socket, "connect", connect)
        yield


@pytest.fixture(scope="module")
def _emulator(_loopback_only: None) -> Iterator[VertexEmulator]:
    # One server per module: its video cache makes repeated clips cheap.
    with VertexEmulator(polls_until_done=1) as emulator:
        yield emulator


@pytest.fixture
def emu(_emulator: VertexEmulator) -> Iterator[VertexEmulator]:
    _emulator.reset(config=True)
    yield _emulator
    _emulator.reset(config=True)


# --------------------------------------------------------------------------------------
# Helpers


def genv(emu: VertexEmulator, **extra: Any) -> dict[str, str]:
    """The environment that points vidpipe's google provider at the emulator."""
    env = {
        "GOOGLE_API_KEY": API_KEY,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "GOOGLE_CLOUD_LOCATION": LOCATION,
        "VIDPIPE_GOOGLE__BASE_URL": emu.url,
        "VIDPIPE_GOOGLE__POLL_INTERVAL": "0.05",
        "VIDPIPE_GOOGLE__RETRY_BASE_DELAY": "0.01",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def google_job(
    project: Project,
    name: str,
    *,
    scenes: int = 1,
    aspect: str = "16:9",
    extra: str = "",
) -> Path:
    """A google job with Veo-compatible settings (the project's defaults are 360p / 1 s)."""
    text = (
        f'prompt: "A paper boat sails down a rainy street ({name})"\n'
        "provider: google\n"
        f'aspect_ratio: "{aspect}"\n'
        "clip_duration: 4\n"
        "resolution: 720p\n"
        f"scenes: {scenes}\n"
        f"{extra}"
    )
    return project.job(name, text)


def motion_override(index: int, marker: str) -> str:
    """A scene override whose motion prompt carries `marker` (to aim emulator faults)."""
    return (
        "scene_overrides:\n"
        f"  - index: {index}\n"
        f'    video_motion_prompt: "Slow push-in on the harbour, {marker}"\n'
    )


def run(project: Project, emu: VertexEmulator, *args: str, **env: Any) -> Any:
    """`vidpipe run -q --report report.json ARGS` in-process."""
    return project.cli("run", "-q", "--report", "report.json", *args, env=genv(emu, **env))


def job_report(project: Project, name: str) -> dict[str, Any]:
    return project.jobs_in_report()[name]


def manifest_of(project: Project, name: str) -> dict[str, Any]:
    output = job_report(project, name)["output"]
    assert output, f"job {name} has no output"
    data: dict[str, Any] = json.loads(
        (project.root / output).with_name("manifest.json").read_text()
    )
    return data


def status_json(project: Project, emu: VertexEmulator, ref: str) -> dict[str, Any]:
    result = project.cli("status", ref, "--json", env=genv(emu))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def image_calls(emu: VertexEmulator) -> list[RecordedRequest]:
    return [r for r in emu.calls("generateContent") if _modalities(r)]


def storyboard_calls(emu: VertexEmulator) -> list[RecordedRequest]:
    return [
        r
        for r in emu.calls("generateContent")
        if (r.body.get("generationConfig") or {}).get("responseMimeType") == "application/json"
    ]


def _modalities(rec: RecordedRequest) -> list[str]:
    return [
        m.upper() for m in (rec.body.get("generationConfig") or {}).get("responseModalities") or []
    ]


def veo_clip_cost(seconds: int = 4) -> float:
    """The price of one clip of the default Veo model (Veo 3 makes audio by default)."""
    usage = Usage(video_seconds=seconds, audio=True)
    return PriceTable({}).cost("google", "veo-3.1-fast-generate-001", usage)


def db_rows(project: Project, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(project.root / "vidpipe.db")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


# --------------------------------------------------------------------------------------
# 1. The happy path, end to end


def test_vertical_three_scene_job_end_to_end(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "vertical", scenes=3, aspect="9:16")
    result = run(project, emu, "--junit", "junit.xml")
    assert result.exit_code == 0, result.output
    no_traceback(result.output)

    # One structured-output storyboard call.
    (board,) = storyboard_calls(emu)
    cfg = board.body["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    # The scene count is pinned in the schema, so structured output cannot miss it.
    scenes_schema = cfg["responseJsonSchema"]["properties"]["scenes"]
    assert (scenes_schema["minItems"], scenes_schema["maxItems"]) == (3, 3)
    assert not any(k.startswith("$") for k in cfg["responseJsonSchema"])
    assert board.model == "gemini-3.8-flash"
    # An API key with a project: project URLs, each model at its catalog location (the
    # Gemini 3 models at `global`, Veo at its region), the key in a header.
    assert board.path.startswith(f"/v1beta1/projects/{PROJECT}/locations/global/")
    assert board.headers["x-goog-api-key"] == API_KEY

    manifest = manifest_of(project, "vertical")
    assert manifest["status"] == "complete"
    scenes = manifest["scenes"]
    assert [s["index"] for s in scenes] == [0, 1, 2]

    def frame_bytes(scene: int, kind: str) -> bytes:
        return (project.root / scenes[scene]["keyframes"][kind]["path"]).read_bytes()

    # Four image calls: scene 0's start from text, then three end frames, each an edit of
    # its scene's start frame (the exact bytes vidpipe recorded).
    images = image_calls(emu)
    assert len(images) == 4
    assert all(r.model == "gemini-3.1-flash-image" for r in images)
    assert all(r.location == "global" for r in images)
    image_configs = [r.body["generationConfig"]["imageConfig"] for r in images]
    assert all(c == {"aspectRatio": "9:16", "imageSize": "1K"} for c in image_configs)
    assert images[0].inline_images == []
    for scene, rec in enumerate(images[1:]):
        assert rec.inline_images == [frame_bytes(scene, "start")], f"end frame of scene {scene}"

    # Continuity: scene N+1 starts on scene N's end frame (same file, same hash).
    for n in (1, 2):
        start, prev_end = scenes[n]["keyframes"]["start"], scenes[n - 1]["keyframes"]["end"]
        assert start["source"] == "inherited"
        assert (start["path"], start["sha256"]) == (prev_end["path"], prev_end["sha256"])
    assert scenes[0]["keyframes"]["start"]["source"] == "generated"
    for s in scenes:
        for kind in ("start", "end"):
            kf = s["keyframes"][kind]
            assert hashlib.sha256(frame_bytes(s["index"], kind)).hexdigest() == kf["sha256"]

    # Three Veo submissions, first + last frame, 4 s, 9:16.
    submissions = emu.calls("predictLongRunning")
    assert len(submissions) == 3
    by_prompt = {s["prompts"]["motion"]: s["index"] for s in scenes}
    assert len(by_prompt) == 3
    seen = set()
    for rec in submissions:
        assert rec.model == "veo-3.1-fast-generate-001"
        assert rec.path.startswith(f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}/")
        inst, params = rec.body["instances"][0], rec.body["parameters"]
        assert inst["image"]["bytesBase64Encoded"] and inst["lastFrame"]["bytesBase64Encoded"]
        assert params["durationSeconds"] == 4
        assert params["aspectRatio"] == "9:16"
        assert params["resolution"] == "720p"
        scene = by_prompt[inst["prompt"]]
        seen.add(scene)
        assert rec.inline_images == [frame_bytes(scene, "start"), frame_bytes(scene, "end")]
    assert seen == {0, 1, 2}
    assert emu.calls("fetchPredictOperation"), "operations were polled"

    # The stitched video: 3 × 4 s, vertical.
    out = project.root / manifest["output"]["path"]
    info = probe(out)
    assert abs(info.duration - 12.0) <= FRAME + 1e-6, info
    assert info.height > info.width
    assert manifest["gaps"] == []
    assert all(s["clip"]["status"] == "complete" for s in scenes)

    # Cost: manifest, report and `status --json` agree and are not zero.
    entry = job_report(project, "vertical")
    assert entry["status"] == "complete"
    assert entry["output"] == manifest["output"]["path"]
    assert manifest["cost"]["actual_usd"] > 0
    assert entry["cost_usd"] > 0
    assert entry["cost_usd"] == pytest.approx(manifest["cost"]["actual_usd"], abs=1e-6)
    assert set(manifest["cost"]["by_step"]) == {"storyboard", "image", "video"}
    assert manifest["cost"]["by_step"]["video"] == pytest.approx(3 * veo_clip_cost())
    assert entry["provider_calls"] == 1 + 4 + 3  # polls are not counted
    status = status_json(project, emu, "vertical")
    assert status["status"] == "complete"
    assert status["cost"]["actual_usd"] == pytest.approx(manifest["cost"]["actual_usd"])

    # Running it again does nothing and costs nothing.
    before = len(emu.requests)
    again = run(project, emu)
    assert again.exit_code == 0, again.output
    assert len(emu.requests) == before
    assert job_report(project, "vertical")["cost_usd"] == 0


def test_a_crossfade_change_pays_for_no_new_clip(project: Project, emu: VertexEmulator) -> None:
    # The local renderer places keyframes at the crossfade, so its clips depend on it; Veo
    # places its own, and a paid clip must not be made again for a new crossfade.
    google_job(project, "fade", scenes=2)
    assert run(project, emu).exit_code == 0
    before = len(emu.requests)
    google_job(project, "fade", scenes=2, extra="stitch: {crossfade: 0.5}\n")
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    assert len(emu.requests) == before
    manifest = manifest_of(project, "fade")
    assert manifest["output"]["mode"] == "crossfade"
    assert manifest["output"]["stitch_path"] in ("smart", "full")


# --------------------------------------------------------------------------------------
# 2. Quota and server storms


def test_storms_of_429_and_503_are_survived(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "storm")
    # The storyboard call: a 429 asking for 1 s, then a 429 without Retry-After.
    emu.fail_next("generateContent", 429, retry_after=1)
    emu.fail_next("generateContent", 429)
    # An image call: two 503s.
    emu.fail_next("generateContent", 503, count=2, match=lambda r: bool(_modalities(r)))
    emu.fail_next("predictLongRunning", 503, count=2)
    emu.fail_next("fetchPredictOperation", 503, count=2)

    result = run(project, emu)
    assert result.exit_code == 0, result.output
    assert job_report(project, "storm")["status"] == "complete"
    assert emu.faults == [], "every queued fault was hit"

    boards = storyboard_calls(emu)
    assert [r.status for r in boards] == [429, 429, 200]
    waited = boards[1].time - boards[0].time
    assert waited >= 0.95, f"Retry-After: 1 was not honoured (retried after {waited:.3f} s)"
    # Without Retry-After: exponential backoff from VIDPIPE_GOOGLE__RETRY_BASE_DELAY (0.01 s).
    assert boards[2].time - boards[1].time < 0.9

    statuses = [r.status for r in image_calls(emu)]
    assert statuses == [503, 503, 200, 200]
    submits = emu.calls("predictLongRunning")
    assert [r.status for r in submits] == [503, 503, 200]
    assert len(emu.operations) == 1, "only the accepted submission made an operation"
    polls = emu.calls("fetchPredictOperation")
    assert [r.status for r in polls][:2] == [503, 503]
    assert polls[-1].status == 200
    (op,) = emu.operations.values()
    assert op.done
    assert {r.operation_name for r in polls} == {op.name}
    info = probe(project.root / job_report(project, "storm")["output"])
    assert abs(info.duration - 4.0) <= FRAME + 1e-6


def test_retry_delay_in_a_429_body_is_honoured(project: Project, emu: VertexEmulator) -> None:
    # Vertex's 429 rarely carries Retry-After; the wait is in the body's RetryInfo.
    google_job(project, "quota")
    emu.fail_next("predictLongRunning", 429, retry_delay="3s")
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    first, second = emu.calls("predictLongRunning")
    assert (first.status, second.status) == (429, 200)
    waited = second.time - first.time
    assert waited >= 3.0, f"retryDelay 3s was not honoured (retried after {waited:.3f} s)"


def test_a_daily_quota_is_not_retried(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "daily")
    quota = {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}],
    }
    emu.fail_next("generateContent", 429, count=None, details=[quota])
    result = run(project, emu)
    assert result.exit_code == 1, result.output
    assert len(emu.requests) == 1  # waiting seconds cannot bring back a daily quota
    assert "429" in job_report(project, "daily")["error"]


def test_transient_errors_give_up_after_max_retries(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "stormy")
    emu.fail_next("generateContent", 503, count=None)
    result = run(project, emu, VIDPIPE_GOOGLE__MAX_RETRIES=2)
    assert result.exit_code == 1, result.output
    no_traceback(result.output)
    assert len(emu.requests) == 3  # 1 + 2 retries, then the job fails
    error = job_report(project, "stormy")["error"]
    assert "still failing after 3 attempts" in error and "503" in error
    assert status_json(project, emu, "stormy")["status"] == "failed"


def test_unreachable_endpoint_is_retried_then_fails_cleanly(
    project: Project, emu: VertexEmulator
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    google_job(project, "offline")
    result = run(project, emu, VIDPIPE_GOOGLE__BASE_URL=closed, VIDPIPE_GOOGLE__MAX_RETRIES=2)
    assert result.exit_code == 1, result.output
    no_traceback(result.output)
    error = job_report(project, "offline")["error"]
    assert "network error" in error and "after 3 attempts" in error


# --------------------------------------------------------------------------------------
# 3–5. Clips that do not come back: filtered, failed, never finished


def test_rai_filtered_clip_leaves_a_gap(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "filtered", scenes=3, extra=motion_override(1, "MARKER-RAI-7731"))
    emu.rai_filtered(match="MARKER-RAI-7731")
    result = run(project, emu)
    assert result.exit_code == 0, result.output

    entry = job_report(project, "filtered")
    assert entry["status"] == "complete"
    manifest = manifest_of(project, "filtered")
    assert manifest["status"] == "complete"
    assert [(g["index"], g["reason"]) for g in manifest["gaps"]] == [(1, "rai_filtered")]
    assert "safety filter" in manifest["gaps"][0]["detail"]
    clips = {s["index"]: s["clip"] for s in manifest["scenes"]}
    assert clips[1]["status"] == "rai_filtered" and clips[1]["path"] is None
    assert clips[0]["status"] == clips[2]["status"] == "complete"
    # Filtered generations are not resubmitted (and not billed).
    assert len(emu.calls("predictLongRunning")) == 3
    assert manifest["cost"]["by_step"]["video"] == pytest.approx(2 * veo_clip_cost())
    info = probe(project.root / manifest["output"]["path"])
    assert abs(info.duration - 8.0) <= FRAME + 1e-6
    assert status_json(project, emu, "filtered")["gaps"][0]["index"] == 1


def test_failed_operation_is_resubmitted(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "flaky", scenes=2, extra=motion_override(1, "MARKER-ERR-1"))
    emu.operation_error(count=1, match="MARKER-ERR-1")
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    assert job_report(project, "flaky")["status"] == "complete"

    submits = emu.calls("predictLongRunning")
    marked = [r for r in submits if "MARKER-ERR-1" in r.prompt]
    assert len(submits) == 3 and len(marked) == 2
    manifest = manifest_of(project, "flaky")
    assert manifest["gaps"] == []
    assert manifest["scenes"][1]["clip"]["attempts"] == 2
    assert abs(probe(project.root / manifest["output"]["path"]).duration - 8.0) <= FRAME + 1e-6


def test_operation_failing_forever_fails_the_job(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "broken", scenes=2, extra=motion_override(1, "MARKER-ERR-2"))
    emu.operation_error(count=None, match="MARKER-ERR-2", message="Emulated Veo meltdown.")
    result = run(project, emu)
    assert result.exit_code == 1, result.output
    no_traceback(result.output)

    submits = emu.calls("predictLongRunning")
    assert sum("MARKER-ERR-2" in r.prompt for r in submits) == 3  # 1 + 2 resubmits
    assert len(submits) == 4
    entry = job_report(project, "broken")
    assert entry["status"] == "failed"
    assert "Emulated Veo meltdown." in entry["error"] and "scene 1" in entry["error"]
    status = status_json(project, emu, "broken")
    assert status["status"] == "failed"
    assert "Emulated Veo meltdown." in status["error_message"]
    clips = {s["index"]: s["clip"] for s in status["scenes"]}
    assert clips[0]["status"] == "complete"
    assert clips[1]["status"] == "failed" and clips[1]["attempts"] == 3

    # Once the model behaves, a new run pays only for the clip that failed.
    emu.clear_faults()
    emu.requests.clear()
    again = run(project, emu)
    assert again.exit_code == 0, again.output
    (resubmit,) = emu.calls("predictLongRunning")
    assert "MARKER-ERR-2" in resubmit.prompt
    assert storyboard_calls(emu) == [] and image_calls(emu) == []
    entry = job_report(project, "broken")
    assert entry["status"] == "complete"
    assert entry["provider_calls"] == 1
    manifest = manifest_of(project, "broken")
    assert [s["clip"]["status"] for s in manifest["scenes"]] == ["complete", "complete"]


def test_never_finishing_operation_times_out(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "stuck", scenes=2, extra=motion_override(1, "MARKER-SLOW"))
    emu.never_finish(match="MARKER-SLOW")
    started = time.monotonic()
    result = run(project, emu, VIDPIPE_GOOGLE__POLL_TIMEOUT=1)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed < 20

    manifest = manifest_of(project, "stuck")
    assert manifest["status"] == "complete"
    assert [(g["index"], g["reason"]) for g in manifest["gaps"]] == [(1, "timed_out")]
    assert manifest["scenes"][1]["clip"]["status"] == "timed_out"
    stuck = [op for op in emu.operations.values() if "MARKER-SLOW" in op.prompt]
    assert len(stuck) == 1 and stuck[0].polls >= 2 and not stuck[0].done
    assert len(emu.calls("predictLongRunning")) == 2  # a timeout is not resubmitted
    assert abs(probe(project.root / manifest["output"]["path"]).duration - 4.0) <= FRAME + 1e-6
    assert "the next run or `vidpipe resume` polls it again" in manifest["gaps"][0]["detail"]
    (operation,) = (op.name for op in stuck)

    # `resume` polls the recorded operation again (still running: still a gap) ...
    resumed = project.cli("resume", "stuck", "-q", env=genv(emu, VIDPIPE_GOOGLE__POLL_TIMEOUT=1))
    assert resumed.exit_code == 0, resumed.output
    assert len(emu.calls("predictLongRunning")) == 2
    assert stuck[0].polls >= 4
    assert manifest_of(project, "stuck")["gaps"][0]["reason"] == "timed_out"

    # ... and once it has finished, the next run uses its clip, billed once, never
    # submitted again.
    emu.release_operations()
    emu.requests.clear()
    again = run(project, emu)
    assert again.exit_code == 0, again.output
    assert emu.calls("predictLongRunning") == []
    assert {p.operation_name for p in emu.calls("fetchPredictOperation")} == {operation}
    entry = job_report(project, "stuck")
    assert entry["provider_calls"] == 0 and entry["cost_usd"] == pytest.approx(veo_clip_cost())
    manifest = manifest_of(project, "stuck")
    assert manifest["gaps"] == []
    assert manifest["scenes"][1]["clip"]["status"] == "complete"
    assert manifest["cost"]["by_step"]["video"] == pytest.approx(2 * veo_clip_cost())
    assert abs(probe(project.root / manifest["output"]["path"]).duration - 8.0) <= FRAME + 1e-6
    # Up to date now: nothing left to poll.
    emu.requests.clear()
    assert run(project, emu).exit_code == 0 and emu.requests == []


def test_policy_refusal_is_submitted_once(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "refused", scenes=2, extra=motion_override(1, "MARKER-POLICY"))
    reason = (
        "The prompt could not be submitted. This prompt contains sensitive words that "
        "violate Google's Responsible AI practices. Support codes: 58061214"
    )
    emu.operation_error(count=None, match="MARKER-POLICY", code=3, message=reason)
    result = run(project, emu)
    assert result.exit_code == 1, result.output
    no_traceback(result.output)
    # The answer cannot change: one submission, not three.
    assert sum("MARKER-POLICY" in r.prompt for r in emu.calls("predictLongRunning")) == 1
    entry = job_report(project, "refused")
    assert entry["status"] == "failed"
    assert "scene 1" in entry["error"] and reason in entry["error"]
    clips = {s["index"]: s["clip"] for s in status_json(project, emu, "refused")["scenes"]}
    assert clips[1]["status"] == "failed" and clips[1]["attempts"] == 1


def test_operation_unknown_to_the_server_is_submitted_again(
    project: Project, emu: VertexEmulator
) -> None:
    # An operation that expired, or that a restarted server lost: polling it again can
    # never succeed, so the clip is submitted again (as for a failed operation).
    google_job(project, "vanished")
    emu.fail_next("fetchPredictOperation", 404, message="Operation not found (emulated).")
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    assert len(emu.calls("predictLongRunning")) == 2
    manifest = manifest_of(project, "vanished")
    assert manifest["scenes"][0]["clip"]["attempts"] == 2
    assert manifest["gaps"] == []


# --------------------------------------------------------------------------------------
# 6. A run killed while polling resumes polling and never pays twice


def max_in_window(times: list[float], window: float) -> int:
    """The most timestamps in any window [t, t + window)."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_while_polling_resumes_the_same_operations(
    project: Project, emu: VertexEmulator
) -> None:
    google_job(project, "killed", scenes=3)
    emu.polls_until_done = 10_000  # nothing finishes while the first runner lives
    env = {**os.environ, **genv(emu, VIDPIPE_LEASE_SECONDS=5)}
    log = project.root / "first-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidpipe", "run", "-q"],
            cwd=project.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:

            def all_polled() -> bool:
                assert proc.poll() is None, log.read_text()
                ops = list(emu.operations.values())
                return len(ops) == 3 and all(op.polls >= 2 for op in ops)

            wait_for(all_polled, 60, "three submitted and polled operations")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    names = set(emu.operations)
    assert len(emu.calls("predictLongRunning")) == 3
    # Every submission was recorded before its first poll.
    rows = db_rows(project, "SELECT status, operation_id FROM video_clips")
    assert sorted(r[1] for r in rows) == sorted(names)
    assert {r[0] for r in rows} <= {"submitted", "polling"}
    (status,) = db_rows(project, "SELECT status FROM projects")
    assert status == ("generating_video",)

    mark = len(emu.requests)
    emu.polls_until_done = 0  # the recorded operations are done at their next poll
    # The killed runner's lease is short (5 s) in case the new runner cannot tell it is dead.
    result = run(project, emu, VIDPIPE_LEASE_SECONDS=5)
    assert result.exit_code == 0, result.output

    later = emu.requests[mark:]
    assert [r for r in later if r.rpc != "fetchPredictOperation"] == []
    assert {r.operation_name for r in later} == names
    assert all(op.done for op in emu.operations.values())
    entry = job_report(project, "killed")
    assert entry["status"] == "complete"
    assert entry["provider_calls"] == 0  # polls only: nothing was submitted again
    manifest = manifest_of(project, "killed")
    assert all(s["clip"]["status"] == "complete" for s in manifest["scenes"])
    assert all(s["clip"]["attempts"] == 1 for s in manifest["scenes"])
    assert abs(probe(project.root / manifest["output"]["path"]).duration - 12.0) <= FRAME + 1e-6


# --------------------------------------------------------------------------------------
# 7–8. Answers without a usable storyboard or image


@pytest.mark.parametrize("mode", ["not_json", "schema"])
def test_invalid_storyboard_once_is_asked_again(
    project: Project, emu: VertexEmulator, mode: str
) -> None:
    google_job(project, f"board-{mode.replace('_', '-')}")
    emu.invalid_storyboard_json(count=1, mode=mode)
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    assert len(storyboard_calls(emu)) == 2
    entry = job_report(project, f"board-{mode.replace('_', '-')}")
    assert entry["status"] == "complete"
    assert entry["provider_calls"] == 2 + 2 + 1


@pytest.mark.parametrize("mode", ["not_json", "schema"])
def test_invalid_storyboard_three_times_fails_cleanly(
    project: Project, emu: VertexEmulator, mode: str
) -> None:
    name = f"bad-{mode.replace('_', '-')}"
    google_job(project, name)
    emu.invalid_storyboard_json(count=None, mode=mode)
    result = run(project, emu, "--junit", "junit.xml")
    assert result.exit_code == 1, result.output
    no_traceback(result.output)
    assert len(storyboard_calls(emu)) == 3
    assert image_calls(emu) == [] and emu.calls("predictLongRunning") == []
    error = job_report(project, name)["error"]
    assert "storyboard" in error and "3 attempts" in error
    assert ("invalid JSON" in error) if mode == "not_json" else ("schema" in error)
    status = status_json(project, emu, name)
    assert status["status"] == "failed" and status["error_message"] == error
    assert "<failure" in (project.root / "junit.xml").read_text()


@pytest.mark.parametrize("mode", ["IMAGE_SAFETY", "NO_IMAGE", "blocked"])
def test_missing_image_once_is_asked_again(
    project: Project, emu: VertexEmulator, mode: str
) -> None:
    name = f"img-{mode.lower().replace('_', '-')}"
    google_job(project, name)
    emu.missing_image(count=1, mode=mode)
    # The first mode runs to the end; the others stop after the keyframes (what they test).
    until = () if mode == "IMAGE_SAFETY" else ("--until", "keyframes")
    result = run(project, emu, *until)
    assert result.exit_code == 0, result.output
    assert len(image_calls(emu)) == 3  # start (twice), end
    entry = job_report(project, name)
    assert entry["status"] == ("complete" if not until else "stopped")
    scene = status_json(project, emu, name)["scenes"][0]
    assert {k: v["source"] for k, v in scene["keyframes"].items()} == {
        "start": "generated",
        "end": "generated",
    }


def test_missing_image_forever_fails_with_the_reason(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "no-image")
    emu.missing_image(count=None, mode="IMAGE_SAFETY")
    result = run(project, emu)
    assert result.exit_code == 1, result.output
    no_traceback(result.output)
    assert len(image_calls(emu)) == 3
    assert emu.calls("predictLongRunning") == []
    error = job_report(project, "no-image")["error"]
    assert "IMAGE_SAFETY" in error and "no image" in error
    assert status_json(project, emu, "no-image")["status"] == "failed"


def test_blocked_prompt_forever_names_the_block_reason(
    project: Project, emu: VertexEmulator
) -> None:
    google_job(project, "blocked")
    emu.missing_image(count=None, mode="blocked")
    result = run(project, emu)
    assert result.exit_code == 1, result.output
    assert "PROHIBITED_CONTENT" in job_report(project, "blocked")["error"]


# --------------------------------------------------------------------------------------
# 9. The API key is never written anywhere


def files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path.relative_to(root)))
    return hits


REPORTS = ("--report", "out/report.json", "--junit", "out/junit.xml")


def test_api_key_is_never_written_or_printed(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "secret-ok")
    google_job(project, "secret-bad", extra=motion_override(0, "MARKER-KEY"))
    # A server that echoes the key in its error message (an HTTP 400: not retried)...
    emu.fail_next(
        "predictLongRunning",
        400,
        count=None,
        match="MARKER-KEY",
        message=f"API key {API_KEY} may not call this model (emulated).",
    )
    # ...and in a transient error, which `-v` logs when it retries.
    emu.fail_next(
        "generateContent",
        503,
        match=lambda r: "secret-ok" in r.prompt and not _modalities(r),
        message=f"backend hiccup for key={API_KEY}",
    )
    env = {**os.environ, **genv(emu)}
    proc = subprocess.run(
        [sys.executable, "-m", "vidpipe", "run", "-v", "-j", "2", *REPORTS],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    no_traceback(proc.stderr)
    # The key was really used, and really echoed back by the server...
    assert {r.headers.get("x-goog-api-key") for r in emu.requests} == {API_KEY}
    assert any(r.status == 400 for r in emu.requests) and any(r.status == 503 for r in emu.requests)
    # ...yet it is nowhere: not in the output, not in any file (database, WAL, manifests,
    # reports, junit, artifacts).
    assert API_KEY not in proc.stdout and API_KEY not in proc.stderr
    jobs = project.jobs_in_report("out/report.json")
    assert jobs["secret-ok"]["status"] == "complete"
    assert jobs["secret-bad"]["status"] == "failed"
    assert "***" in jobs["secret-bad"]["error"]
    assert "backend hiccup for key=***" in proc.stderr  # the -v log of the retry

    for ref in ("secret-ok", "secret-bad"):
        status = project.cli("status", ref, "--json", env=genv(emu))
        assert API_KEY not in status.output
        plain = project.cli("status", ref, env=genv(emu))
        assert API_KEY not in plain.output
    assert API_KEY not in project.cli("list", "--json", env=genv(emu)).output
    gallery = project.cli("report", "--html", "out/gallery.html", env=genv(emu))
    assert gallery.exit_code == 0, gallery.output
    assert "***" in (project.root / "out" / "gallery.html").read_text()  # the redacted error
    assert files_containing(project.root, API_KEY.encode()) == []
    assert (project.root / "vidpipe.db").is_file()
    assert (project.root / "out" / "junit.xml").is_file()


def test_api_key_is_redacted_from_a_refusal(project: Project, emu: VertexEmulator) -> None:
    google_job(project, "refused")
    emu.fail_next("generateContent", 400, message=f"API key not valid: {API_KEY}")
    result = run(project, emu)
    assert result.exit_code == 1
    assert API_KEY not in result.output
    error = job_report(project, "refused")["error"]
    assert "refused" in error and "400" in error and "***" in error
    assert files_containing(project.root, API_KEY.encode()) == []


# --------------------------------------------------------------------------------------
# 10. Pre-flight refusals: nothing is sent


def line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


PREFLIGHT_CASES = {
    "square": ('aspect_ratio: "1:1"', "makes 16:9 or 9:16 video, not 1:1"),
    "five-seconds": ("clip_duration: 5", "makes clips of 4, 6, 8 seconds, not 5"),
    "veo2-four": (
        "models: {video: veo-2.0-generate-001}\nclip_duration: 4",
        "makes clips of 5, 6, 7, 8 seconds, not 4",
    ),
    "veo3-0": ("models: {video: veo-3.0-generate-001}", "cannot end a clip on a given last frame"),
    "low-res": ("resolution: 360p", "renders 720p, 1080p or 4k, not 360p"),
    "lite-4k": (
        "models: {video: veo-3.1-lite-generate-001}\nresolution: 4k",
        "veo-3.1-lite-generate-001 renders 720p or 1080p, not 4k",
    ),
    "veo2-sound": (
        "models: {video: veo-2.0-generate-001}\nclip_duration: 6\ngenerate_audio: true",
        "veo-2.0-generate-001 makes silent clips; remove generate_audio: true",
    ),
    "retired-storyboard": (
        "models: {storyboard: gemini-2.5-flash}",
        "gemini-2.5-flash was retired on 2026-10-20 and no longer answers; "
        "use gemini-3.8-flash instead",
    ),
    "unknown-model": (
        "models: {image: gemini-9-image}",
        "gemini-9-image is not a google model in the catalog",
    ),
}


@pytest.mark.parametrize("case", sorted(PREFLIGHT_CASES))
def test_preflight_refusals_make_no_request(
    project: Project, emu: VertexEmulator, case: str
) -> None:
    setting, message = PREFLIGHT_CASES[case]
    key = setting.splitlines()[-1].split(":")[0]
    lines = {
        "prompt": "prompt: A fox crosses a frozen lake",
        "provider": "provider: google",
        "aspect_ratio": 'aspect_ratio: "16:9"',
        "clip_duration": "clip_duration: 4",
        "resolution": "resolution: 720p",
    }
    for line in setting.splitlines():
        lines[line.split(":")[0]] = line
    path = project.job(case, "\n".join(lines.values()) + "\n")
    if case in ("veo3-0", "retired-storyboard", "unknown-model"):
        key = "models"

    for command in (("run",), ("validate",)):
        result = project.cli(*command, env=genv(emu))
        assert result.exit_code == 2, result.output
        no_traceback(result.output)
        located = f"jobs/{case}.yaml:{line_of(path, key + ':')}:"
        assert any(
            line.startswith(located) and message in line for line in result.stderr.splitlines()
        ), result.stderr
        assert "nothing was run" in result.stderr
    assert emu.requests == []
    assert not (project.root / "tmp").exists()


def test_preflight_locates_values_from_vidpipe_yaml_defaults(
    project: Project, emu: VertexEmulator
) -> None:
    # The project's vidpipe.yaml has `defaults: {resolution: 360p, clip_duration: 1}`.
    project.job("from-defaults", "prompt: A fox crosses a frozen lake\nprovider: google\n")
    result = project.cli("run", env=genv(emu))
    assert result.exit_code == 2, result.output
    config = project.root / "vidpipe.yaml"
    assert f"vidpipe.yaml:{line_of(config, 'resolution:')}:" in result.stderr
    assert f"vidpipe.yaml:{line_of(config, 'clip_duration:')}:" in result.stderr
    assert "renders 720p, 1080p or 4k, not 360p" in result.stderr
    assert emu.requests == []


def test_api_key_alone_is_refused_for_veo_before_any_request(
    project: Project, emu: VertexEmulator
) -> None:
    # Express mode serves generateContent only: Veo would answer 400 after the storyboard
    # and keyframes were paid for, so the job is refused before anything is sent.
    google_job(project, "express", scenes=3)
    env = genv(emu)
    del env["GOOGLE_CLOUD_PROJECT"], env["GOOGLE_CLOUD_LOCATION"]
    result = project.cli("run", env=env)
    assert result.exit_code == 2, result.output
    no_traceback(result.output)
    assert "veo-3.1-fast-generate-001 (predictLongRunning (Veo))" in result.stderr
    assert "GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION" in result.stderr
    assert emu.requests == []
    assert not (project.root / "tmp").exists()
    # The emulator, like the service, refuses Veo without a project (vidpipe got there first).
    probe_client = emu.client("express")
    from google.genai import errors as genai_errors
    from google.genai import types

    with pytest.raises(genai_errors.ClientError) as refused:
        probe_client.models.generate_videos(
            model="veo-3.1-fast-generate-001",
            source=types.GenerateVideosSource(prompt="a boat"),
            config=types.GenerateVideosConfig(duration_seconds=4),
        )
    assert refused.value.code == 400
    assert "Invalid resource field value" in str(refused.value.message)
    # A storyboard-only run needs generateContent alone: the key is enough.
    stopped = project.cli("run", "-q", "--until", "storyboard", env=env)
    assert stopped.exit_code == 0, stopped.output


def test_missing_credentials_refused_before_any_request(
    project: Project, emu: VertexEmulator
) -> None:
    google_job(project, "no-creds")
    env = genv(emu)
    del env["GOOGLE_API_KEY"], env["GOOGLE_CLOUD_PROJECT"]
    result = project.cli("run", env=env)
    assert result.exit_code == 2, result.output
    no_traceback(result.output)
    for variable in ("GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
        assert variable in result.stderr
    assert emu.requests == []
    assert not (project.root / "tmp").exists()
    # `validate` and `--dry-run` need no credentials.
    assert project.cli("validate", env=env).exit_code == 0
    dry = project.cli("run", "--dry-run", "--report", "plan.json", env=env)
    assert dry.exit_code == 0, dry.output
    assert project.jobs_in_report("plan.json")["no-creds"]["status"] == "planned"
    assert emu.requests == []


# --------------------------------------------------------------------------------------
# 11–12. A batch shares one rate limiter, and polls many operations at once


def test_batch_submissions_share_the_video_rate_limit(
    project: Project, emu: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limiter and the real setting (VIDPIPE_RATE_LIMITS__VIDEO), with a window of
    # 1 s instead of 60 s so the test takes seconds: 1 submission per 1 s window.
    from functools import partial

    import vidpipe.providers.google.provider as google_provider
    from vidpipe.providers.ratelimit import RateLimiter

    window = 1.0
    monkeypatch.setattr(google_provider, "RateLimiter", partial(RateLimiter, window=window))
    emu.storyboard_fn = idea_storyboard
    for name in ("rl-a", "rl-b", "rl-c"):
        google_job(project, name)
    result = run(project, emu, "-j", "3", VIDPIPE_RATE_LIMITS__VIDEO=1)
    assert result.exit_code == 0, result.output
    assert {j["status"] for j in project.report()["jobs"]} == {"complete"}

    submitted = [r.time for r in emu.calls("predictLongRunning")]
    assert len(submitted) == 3
    # Never more than 1 in any window (slack for the variable trip to the emulator)...
    assert max_in_window(submitted, window - 0.3) == 1
    # ...so three submissions span at least two full windows.
    assert max(submitted) - min(submitted) >= 2 * window - 0.3
    assert len(image_calls(emu)) == 6


def test_batch_jobs_run_and_poll_concurrently(project: Project, emu: VertexEmulator) -> None:
    emu.latency = 0.2
    emu.polls_until_done = 3
    emu.video_fps = 4  # small clips: the emulator renders one at a time
    emu.storyboard_fn = idea_storyboard
    for name in ("solo", "par-a", "par-b", "par-c"):
        google_job(project, name)
    # Imports are paid once per process: not by whichever run comes first.
    import google.genai  # noqa: F401

    import vidpipe.outputs.manifest
    import vidpipe.providers.google  # noqa: F401

    started = time.monotonic()
    alone = run(project, emu, "--select", "solo")
    single = time.monotonic() - started
    assert alone.exit_code == 0, alone.output
    mark = len(emu.requests)

    started = time.monotonic()
    batch = run(project, emu, "--select", "par-*", "-j", "3")
    three = time.monotonic() - started
    assert batch.exit_code == 0, batch.output
    assert [j["status"] for j in project.report()["jobs"]] == ["complete"] * 3
    assert three < 2.2 * single, f"3 jobs took {three:.2f} s, one took {single:.2f} s"

    # The three jobs' operations were in flight at the same time.
    later = emu.requests[mark:]
    submits = [r for r in later if r.rpc == "predictLongRunning"]
    polls = [r for r in later if r.rpc == "fetchPredictOperation"]
    assert len(submits) == 3 and len(polls) == 3 * 4
    names = {p.operation_name for p in polls}
    assert len(names) == 3
    last_poll = {name: max(p.time for p in polls if p.operation_name == name) for name in names}
    first_poll = {name: min(p.time for p in polls if p.operation_name == name) for name in names}
    assert max(first_poll.values()) < min(last_poll.values()), "polled one after the other"
    print(f"one job {single:.2f} s, three jobs with -j 3 {three:.2f} s")


# --------------------------------------------------------------------------------------
# Other models: Veo 2, Imagen


OLDER_MODELS = """\
models:
  # Still served to this project (an allowlist, say): brought back from retirement.
  veo-2.0-generate-001: {status: ga, retires: null}
  imagen-4.0-generate-001:
    status: ga
    retires: null
    prices: {per_image: 0.05, source: "our contract", read: "2026-11-01"}
"""


def test_models_changed_in_vidpipe_yaml_are_checked_and_priced_from_there(
    project: Project, emu: VertexEmulator
) -> None:
    from vidpipe.catalog import build

    config = project.root / "vidpipe.yaml"
    config.write_text(config.read_text() + OLDER_MODELS)
    # The emulator, like the service for this project, serves them too.
    emu.catalog = build(
        {
            "veo-2.0-generate-001": {"status": "ga", "retires": None},
            "imagen-4.0-generate-001": {"status": "ga", "retires": None},
        }
    )
    job = google_job(
        project,
        "older-models",
        scenes=2,
        extra="models: {image: imagen-4.0-generate-001, video: veo-2.0-generate-001}\n",
    )
    # Checked against the catalog entry: Veo 2 makes 5 to 8 s clips.
    refused = project.cli("validate", env=genv(emu))
    assert refused.exit_code == 2
    assert "veo-2.0-generate-001 makes clips of 5, 6, 7, 8 seconds, not 4" in refused.stderr
    job.write_text(job.read_text().replace("clip_duration: 4", "clip_duration: 5"))

    estimate = project.cli("estimate", "--json", env=genv(emu))
    assert estimate.exit_code == 0, estimate.output
    (planned,) = json.loads(estimate.stdout)["jobs"]
    assert planned["by_step"]["image"] == pytest.approx(3 * 0.05)  # priced from vidpipe.yaml
    assert planned["unpriced_models"] == []

    result = run(project, emu)
    assert result.exit_code == 0, result.output
    # Imagen draws every keyframe from its prompt (it cannot edit an image).
    predicts = emu.calls("predict")
    assert len(predicts) == 3 and image_calls(emu) == []
    assert all(r.model == "imagen-4.0-generate-001" and not r.inline_images for r in predicts)
    submits = emu.calls("predictLongRunning")
    assert len(submits) == 2
    for rec in submits:
        assert rec.model == "veo-2.0-generate-001"
        assert rec.body["parameters"]["durationSeconds"] == 5
        assert "generateAudio" not in rec.body["parameters"]  # Veo 2 has no audio option
        assert rec.body["instances"][0]["lastFrame"]
    manifest = manifest_of(project, "older-models")
    assert manifest["models"]["video"] == "veo-2.0-generate-001"
    out = probe(project.root / manifest["output"]["path"])
    assert abs(out.duration - 10.0) <= FRAME + 1e-6
    assert out.audio_codec is None  # Veo 2 clips are video-only, and so is their stitch
    assert manifest["cost"]["by_step"]["image"] == pytest.approx(3 * 0.05)
    clip = PriceTable({}).cost("google", "veo-2.0-generate-001", Usage(video_seconds=5))
    assert manifest["cost"]["by_step"]["video"] == pytest.approx(2 * clip)


def test_clips_written_to_cloud_storage_are_downloaded(
    project: Project, emu: VertexEmulator
) -> None:
    google_job(project, "to-gcs")
    result = run(project, emu, VIDPIPE_GOOGLE__OUTPUT_GCS_URI="gs://vidpipe-test/clips")
    assert result.exit_code == 0, result.output
    (submit,) = emu.calls("predictLongRunning")
    assert submit.body["parameters"]["storageUri"] == "gs://vidpipe-test/clips"
    downloads = [r for r in emu.requests if r.path.startswith("/storage/v1/b/vidpipe-test/o/")]
    assert len(downloads) == 1 and downloads[0].status == 200
    manifest = manifest_of(project, "to-gcs")
    clip = project.root / manifest["scenes"][0]["clip"]["path"]
    assert clip.read_bytes() in emu.gcs_objects.values()
    assert abs(probe(project.root / manifest["output"]["path"]).duration - 4.0) <= FRAME + 1e-6


# --------------------------------------------------------------------------------------
# Provider details that the emulator does not exercise


def make_provider(project: Project, **env: str) -> Any:
    from vidpipe.providers.google import GoogleProvider
    from vidpipe.spec.config import load_config

    return GoogleProvider(load_config(cwd=project.root, env=env))


def fake_adc(monkeypatch: pytest.MonkeyPatch, project_id: str | None = "adc-project") -> list[Any]:
    """Application Default Credentials that hold a static token (never refreshed)."""
    from google.oauth2.credentials import Credentials

    calls: list[Any] = []

    def default(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("scopes"))
        return Credentials(token="adc-token"), project_id

    monkeypatch.setattr(google.auth, "default", default)
    return calls


def no_adc(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.exceptions import DefaultCredentialsError

    def default(*args: Any, **kwargs: Any) -> Any:
        raise DefaultCredentialsError("Your default credentials were not found (test).")

    monkeypatch.setattr(google.auth, "default", default)


def test_credentials_and_locations(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidpipe.errors import ConfigError
    from vidpipe.providers.google.client import credentials

    provider = make_provider(project)
    with pytest.raises(ConfigError, match="GOOGLE_API_KEY"):
        provider.check_ready({"video"})
    provider.check_ready(set())  # a batch that does not use the provider needs nothing

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    calls = fake_adc(monkeypatch)
    provider.check_ready({"storyboard"})
    provider.check_ready({"video"})
    assert calls == [["https://www.googleapis.com/auth/cloud-platform"]]  # looked up once
    assert credentials(provider.settings).project == "my-project"

    # Each model goes where the catalog serves it; GOOGLE_CLOUD_LOCATION (or
    # google.location) is for models the catalog gives no location.
    def location(p: Any, step: str, model: str) -> str:
        return str(p.clients.location_for(p.catalog, step, model))

    assert location(provider, "video", "veo-3.1-generate-001") == "us-central1"
    assert location(provider, "image", "gemini-3.1-flash-image") == "global"
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    assert location(provider, "storyboard", "a-model-of-our-own") == "europe-west4"
    assert location(provider, "video", "veo-3.1-generate-001") == "us-central1"
    # google.locations overrides the catalog per step.
    moved = make_provider(project, VIDPIPE_GOOGLE__LOCATIONS__VIDEO="europe-west4")
    assert location(moved, "video", "veo-3.1-generate-001") == "europe-west4"
    assert location(moved, "image", "gemini-3.1-flash-image") == "global"

    monkeypatch.setenv("GOOGLE_API_KEY", API_KEY)
    no_adc(monkeypatch)
    make_provider(project).check_ready({"video"})  # a key with a project needs no ADC


def test_project_without_adc_is_refused_before_any_request(
    project: Project, emu: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_adc(monkeypatch)
    google_job(project, "no-adc")
    env = genv(emu, GOOGLE_CLOUD_PROJECT="my-project")
    del env["GOOGLE_API_KEY"]
    result = project.cli("run", env=env)
    assert result.exit_code == 2, result.output
    no_traceback(result.output)
    assert "my-project" in result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "GOOGLE_API_KEY" in result.stderr
    assert emu.requests == []


def test_project_mode_with_adc_end_to_end(
    project: Project, emu: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_adc(monkeypatch)
    google_job(project, "adc")
    env = genv(emu, GOOGLE_CLOUD_PROJECT="my-project")
    del env["GOOGLE_API_KEY"]
    result = project.cli("run", "-q", "--report", "report.json", env=env)
    assert result.exit_code == 0, result.output
    assert job_report(project, "adc")["status"] == "complete"
    model_calls = [r for r in emu.requests if r.rpc]
    assert {(r.rpc, r.project, r.location) for r in model_calls} == {
        ("generateContent", "my-project", "global"),  # Gemini 3 models are served globally
        ("predictLongRunning", "my-project", "us-central1"),
        ("fetchPredictOperation", "my-project", "us-central1"),
    }
    assert {r.headers.get("authorization") for r in model_calls} == {"Bearer adc-token"}
    assert all("x-goog-api-key" not in r.headers for r in model_calls)
    (op,) = emu.operations
    assert op.startswith("projects/my-project/locations/us-central1/publishers/google/models/")


def test_credentials_that_cannot_be_refreshed_fail_the_job_cleanly(
    project: Project, emu: VertexEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from google.oauth2.credentials import Credentials

    # An expired token with nothing to refresh it: google-auth raises RefreshError.
    expired = Credentials(token="old-token", expiry=dt.datetime(2000, 1, 1))
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (expired, "my-project"))
    google_job(project, "expired")
    env = genv(emu, GOOGLE_CLOUD_PROJECT="my-project")
    del env["GOOGLE_API_KEY"]
    result = project.cli("run", "-q", "--report", "report.json", env=env)
    assert result.exit_code == 1, result.output
    no_traceback(result.output)
    error = job_report(project, "expired")["error"]
    assert "credentials were refused" in error and "gcloud auth" in error
    assert status_json(project, emu, "expired")["status"] == "failed"
    assert emu.requests == []


def test_storyboard_schema_is_pinned_without_touching_the_original() -> None:
    from vidpipe.providers.google.provider import _pinned_scene_count
    from vidpipe.spec.schema import load_schema

    original = load_schema("storyboard")
    before = json.dumps(original, sort_keys=True)
    pinned = _pinned_scene_count(original, 5)
    assert pinned["properties"]["scenes"]["minItems"] == 5
    assert pinned["properties"]["scenes"]["maxItems"] == 5
    assert not any(key.startswith("$") for key in pinned)
    assert json.dumps(load_schema("storyboard"), sort_keys=True) == before


def test_image_answers_skip_thoughts_and_become_png() -> None:
    import io

    from google.genai import types
    from PIL import Image

    from vidpipe.providers.google.provider import _as_png, _finish_reason, _first_image

    def encoded(color: tuple[int, int, int], fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), color).save(buf, format=fmt)
        return buf.getvalue()

    draft, final = encoded((255, 0, 0), "PNG"), encoded((0, 0, 255), "JPEG")
    response = types.GenerateContentResponse(
        candidates=[
            types.Candidate(
                content=types.Content(
                    role="model",
                    parts=[
                        types.Part(text="planning", thought=True),
                        types.Part(
                            inline_data=types.Blob(data=draft, mime_type="image/png"), thought=True
                        ),
                        types.Part(inline_data=types.Blob(data=final, mime_type="image/jpeg")),
                    ],
                )
            )
        ]
    )
    data, mime = _first_image(response)
    assert (data, mime) == (final, "image/jpeg")
    png = _as_png(final, mime)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (8, 8) and img.getpixel((4, 4))[2] > 200

    blocked = types.GenerateContentResponse(
        prompt_feedback=types.GenerateContentResponsePromptFeedback(block_reason="SAFETY")
    )
    assert _first_image(blocked) == (None, None)
    assert _finish_reason(blocked) == "prompt blocked: SAFETY"


# --------------------------------------------------------------------------------------
# Video-only clips: `generate_audio: false` (and Veo 2) give MP4s without an audio track.
# The rule: a film has an audio track when any clip has one (clips without it contribute
# silence of their own length); when no clip has one, neither has the film.


def test_video_only_clips_stitch_with_hard_cuts_and_crossfades(
    project: Project, emu: VertexEmulator
) -> None:
    from vidpipe.media import verify

    google_job(project, "silent", scenes=3, extra="generate_audio: false\n")
    result = run(project, emu)
    assert result.exit_code == 0, result.output
    for rec in emu.calls("predictLongRunning"):
        assert rec.body["parameters"]["generateAudio"] is False
    manifest = manifest_of(project, "silent")
    for scene in manifest["scenes"]:
        assert probe(project.root / scene["clip"]["path"]).audio_codec is None
    film = verify(project.root / manifest["output"]["path"])
    assert abs(film.duration - 12.0) <= FRAME + 1e-6
    assert film.audio_codec is None
    # Silent clips are priced at the silent rate.
    assert manifest["cost"]["by_step"]["video"] == pytest.approx(
        3 * PriceTable({}).cost("google", "veo-3.1-fast-generate-001", Usage(video_seconds=4))
    )

    faded = project.cli("stitch", "silent", "--crossfade", "0.5", env=genv(emu))
    assert faded.exit_code == 0, faded.output
    # A crossfade on the command line writes a preview beside final.mp4.
    path = project.root / faded.stdout.split("wrote a preview: ", 1)[1].split(" ", 1)[0]
    film = verify(path)
    assert abs(film.duration - (12.0 - 2 * 0.5)) <= FRAME + 1e-6
    assert film.audio_codec is None


@pytest.mark.parametrize("crossfade", [0.0, 0.5])
def test_clips_with_and_without_audio_stitch_to_one_soundtrack(
    tmp_path: Path, crossfade: float
) -> None:
    from PIL import Image

    from vidpipe.media import stitch, verify
    from vidpipe.testing.vertex_emulator import make_mp4

    clips = []
    for i, audio in enumerate((True, False, True)):
        path = tmp_path / f"clip{i}.mp4"
        frame = Image.new("RGB", (320, 180), (40 * i, 90, 160))
        path.write_bytes(make_mp4(2.0, (320, 180), first=frame, last=frame, audio=audio))
        clips.append(path)
    out = tmp_path / "film.mp4"
    stitch(clips, out, crossfade=crossfade)
    film = verify(out)
    expected = 6.0 - 2 * crossfade
    assert abs(film.duration - expected) <= FRAME + 1e-6
    assert film.audio_codec == "aac"
    assert film.audio_duration is not None
    assert abs(film.audio_duration - expected) <= 0.05  # the silent clip's length is kept


def test_an_image_over_the_inline_limit_is_refused_before_any_request(
    project: Project, emu: VertexEmulator
) -> None:
    from PIL import Image

    # Noise does not compress: a 1700 × 1700 PNG is over the 7 MB Gemini image models
    # take inline (the end frame is an edit of this start frame).
    noise = Image.frombytes("RGB", (1700, 1700), os.urandom(1700 * 1700 * 3))
    noise.save(project.root / "jobs" / "huge.png")
    size_mb = (project.root / "jobs" / "huge.png").stat().st_size / 1e6
    assert size_mb > 7
    path = google_job(
        project,
        "huge",
        extra="scene_overrides:\n  - {index: 0, start_image: huge.png}\n",
    )
    result = project.cli("run", env=genv(emu))
    assert result.exit_code == 2, result.output
    line = line_of(path, "start_image")
    assert (
        f"jobs/huge.yaml:{line}:" in result.stderr
        and f"huge.png is {size_mb:.1f} MB; gemini-3.1-flash-image takes inline images up to 7 MB"
        in result.stderr
    ), result.stderr
    assert emu.requests == []
