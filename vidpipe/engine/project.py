"""The project state machine: storyboard → keyframes → clips → stitch.

::

    pending → storyboarding → keyframing → generating_video → stitching → complete
                                   (any step) → failed | stopped

Each step reads what is already recorded for the project and trusted (the row exists and
the file's sha256 matches), so running a project again continues where it stopped.
Every provider call goes through the generation cache. Keyframes are made in order
because scene N+1 starts on scene N's end frame; each clip is submitted as soon as both
its frames exist and all clips are polled together, so remote video generation overlaps
with keyframing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidpipe.artifacts import (
    Layout,
    copy_atomic,
    sweep_temporaries,
    verified,
    write_atomic,
)
from vidpipe.engine.cache import Cache
from vidpipe.errors import (
    Interrupted,
    InvalidAnswer,
    MediaError,
    ProviderError,
    TemplateProblem,
    VidpipeError,
)
from vidpipe.plan.model import Plan
from vidpipe.plan.requests import image_request, request_key, storyboard_request, video_request
from vidpipe.pricing import PriceTable, usage_dict
from vidpipe.prompts import (
    ScenePrompts,
    prompts_for,
    scene_prompts,
    scenes_after_overrides,
)
from vidpipe.providers import (
    CAPABILITIES,
    Capability,
    Provider,
    StoryboardRequest,
    VideoRequest,
    VideoStatus,
)
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import Job
from vidpipe.spec.schema import load_schema
from vidpipe.store import Project, Store, utcnow

log = logging.getLogger("vidpipe.engine")

STORYBOARD_ATTEMPTS = 3


class Progress(Protocol):
    """Receives progress of jobs (the batch runner draws bars or prints lines)."""

    def step(self, job: str, step: str, done: int, total: int) -> None: ...


class NullProgress:
    def step(self, job: str, step: str, done: int, total: int) -> None:
        pass


@dataclass
class Runtime:
    """What every project of a batch shares: config, database, cache, provider instances."""

    config: Config
    store: Store
    providers: dict[str, Provider]
    force: bool = False
    until: str | None = None
    batch_id: str | None = None
    progress: Progress = field(default_factory=NullProgress)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.cache = Cache(self.store, self.config.artifacts_dir, force=self.force)
        self.prices = PriceTable(self.config.pricing)

    def provider_for(self, job: Job, step: str) -> Provider:
        return self.providers[job.providers[step]]

    def step_providers(self, job: Job) -> dict[Capability, Provider]:
        return {step: self.provider_for(job, step) for step in CAPABILITIES}

    def models(self, job: Job) -> dict[str, str]:
        return {
            step: p.model(step, job.models.get(step))
            for step, p in self.step_providers(job).items()
        }


@dataclass
class Outcome:
    """What happened to one job in one run (a row of the report)."""

    name: str
    status: str
    project_id: str | None = None
    output: str | None = None
    cost_usd: float = 0.0
    estimate_usd: float = 0.0
    duration_s: float = 0.0
    provider_calls: int = 0
    cached_calls: int = 0
    error: str | None = None
    source: str | None = None


@dataclass
class _ClipOp:
    index: int
    key: str
    request: VideoRequest
    operation_id: str
    submitted: float
    next_poll: float
    attempts: int
    polled: int = 0


class ProjectRun:
    """Runs (or continues) one project of one job."""

    def __init__(self, runtime: Runtime, plan: Plan, project: Project):
        self.rt = runtime
        self.plan = plan
        self.job = job = plan.job
        self.project = project
        self.prompts = prompts_for(job)
        self.layout = Layout(runtime.config.artifacts_dir, job.name, project.id)
        self.outcome = Outcome(
            name=job.name, status="running", project_id=project.id, source=job.display
        )
        self.timings: dict[str, float] = dict(project.timings or {})
        self.ops: dict[int, _ClipOp] = {}
        self.clip_done: dict[int, str] = {}
        #: USD spent by calls this run made (cache hits cost nothing).
        self.spent = 0.0

    # -- helpers --------------------------------------------------------------------------

    def _status(self, status: str, **values: Any) -> None:
        self.rt.store.update_project(self.project.id, status=status, **values)
        self.project.status = status

    def _progress(self, step: str, done: int, total: int) -> None:
        self.rt.progress.step(self.job.name, step, done, total)

    def _check_stop(self) -> None:
        if self.rt.stop.is_set():
            raise _Stop()

    def _timed(self, name: str, start: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - start, 3)

    def _call(self, what: str, model: str) -> None:
        self.outcome.provider_calls += 1
        log.info("%s: calling %s (%s)", self.job.name, what, model)

    def _hit(self, what: str, key: str) -> None:
        self.outcome.cached_calls += 1
        log.info("%s: %s from the cache (%s)", self.job.name, what, key[:12])

    def _complete(self, key: str, **values: Any) -> None:
        """Record a finished call in the cache and count its cost as this run's spend."""
        self.rt.cache.complete(key, **values)
        self.spent += values.get("cost_usd", 0.0)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.monotonic()
        run_id = self.rt.store.start_run(self.project.id, self.rt.batch_id)
        sweep_temporaries(self.layout.folder)
        try:
            self._run()
        except (_Stop, Interrupted):
            self.outcome.status = "stopped"
            self.outcome.error = "interrupted"
            self._status("stopped", stopped_after="interrupted", error_message=None)
        except (ProviderError, MediaError, TemplateProblem) as exc:
            self.outcome.status = "failed"
            self.outcome.error = str(exc)
            self._status("failed", error_message=str(exc))
        except VidpipeError as exc:
            self.outcome.status = "failed"
            self.outcome.error = str(exc)
            self._status("failed", error_message=str(exc))
        except BaseException as exc:
            # A bug or an interpreter exit: record it so the project is not left "running",
            # then let it surface.
            self._status("failed", error_message=f"internal error: {type(exc).__name__}: {exc}")
            self.rt.store.finish_run(run_id, status="failed", error_message=repr(exc))
            raise
        finally:
            self.outcome.duration_s = round(time.monotonic() - started, 3)
            self.outcome.cost_usd = round(self.spent, 6)
            self.rt.store.update_project(
                self.project.id, timings=self.timings, cost_actual_usd=self._project_cost()
            )
        self.rt.store.finish_run(
            run_id,
            status=self.outcome.status,
            provider_calls=self.outcome.provider_calls,
            cached_calls=self.outcome.cached_calls,
            cost_usd=self.outcome.cost_usd,
            error_message=self.outcome.error,
        )
        return self.outcome

    def _run(self) -> None:
        until = self.rt.until
        storyboard = self._storyboard()
        scenes = self._scenes(storyboard)
        if until == "storyboard":
            return self._stopped("storyboard")
        prompts = scene_prompts(self.job, storyboard, self.prompts)
        for p in prompts:
            texts = {"start": p.start.text, "end": p.end.text, "motion": p.motion.text}
            self.rt.store.update_scene(self.project.id, p.index, prompts=texts)
        self._status("keyframing", error_message=None)
        submit = until not in ("keyframes",)
        self._keyframes(scenes, prompts, submit_clips=submit)
        if until == "keyframes":
            return self._stopped("keyframes")
        self._status("generating_video")
        self._clips(prompts)
        if until == "clips":
            return self._stopped("clips")
        self._status("stitching")
        self._stitch()
        self._status("complete", stopped_after=None, error_message=None)
        self.outcome.status = "complete"

    def _stopped(self, step: str) -> None:
        self._status("stopped", stopped_after=step)
        self.outcome.status = "stopped"

    # -- storyboard -----------------------------------------------------------------------

    def _storyboard(self) -> dict[str, Any]:
        rendered = self.plan.storyboard_prompt
        if self.project.storyboard and self.project.storyboard_prompt == rendered.text:
            return self.project.storyboard
        self._status("storyboarding")
        self._progress("storyboard", 0, 1)
        start = time.monotonic()
        provider = self.rt.provider_for(self.job, "storyboard")
        request = storyboard_request(self.job, provider, rendered.text)
        key = request_key(provider, "storyboard", request)
        hit = self.rt.cache.lookup(key)
        if hit is not None and hit.result is not None:
            self._hit("storyboard", key)
            data = hit.result
        else:
            data = self._ask_storyboard(provider, request, key)
        self.rt.store.update_project(
            self.project.id, storyboard=data, storyboard_prompt=rendered.text
        )
        self.project.storyboard = data
        self._timed("storyboard", start)
        self._progress("storyboard", 1, 1)
        return data

    def _ask_storyboard(
        self, provider: Provider, request: StoryboardRequest, key: str
    ) -> dict[str, Any]:
        problem = ""
        for _attempt in range(STORYBOARD_ATTEMPTS):
            self._check_stop()
            self._call("storyboard", request.model)
            try:
                answer = provider.storyboard(request)
            except InvalidAnswer as exc:
                problem = str(exc)
                continue
            problem = storyboard_problem(answer.data, self.job.scenes)
            if not problem:
                usage = answer.usage
                self._complete(
                    key,
                    capability="storyboard",
                    provider=provider.name,
                    model=request.model,
                    project_id=self.project.id,
                    result=answer.data,
                    usage=usage_dict(usage),
                    cost_usd=self.rt.prices.cost(provider.name, request.model, usage),
                )
                return answer.data
        raise InvalidAnswer(
            f"the storyboard model gave no valid storyboard in {STORYBOARD_ATTEMPTS} attempts: {problem}"
        )

    def _scenes(self, storyboard: Mapping[str, Any]) -> list[dict[str, Any]]:
        scenes = scenes_after_overrides(self.job, storyboard)
        existing = self.rt.store.scenes(self.project.id)
        wanted = [
            {
                "index": s["index"],
                "description": s["scene_description"],
                "fields": {k: v for k, v in s.items() if k not in ("index", "duration")},
                "duration": s["duration"],
                "status": "pending",
            }
            for s in scenes
        ]
        same = len(existing) == len(wanted) and all(
            e.fields == w["fields"] and e.duration == w["duration"]
            for e, w in zip(existing, wanted, strict=True)
        )
        if not same:
            self.rt.store.replace_scenes(self.project.id, wanted)
        return scenes

    # -- keyframes ------------------------------------------------------------------------

    def _keyframes(
        self, scenes: list[dict[str, Any]], prompts: list[ScenePrompts], *, submit_clips: bool
    ) -> None:
        start = time.monotonic()
        rows = {s.index: s for s in self.rt.store.scenes(self.project.id)}
        n = len(scenes)
        previous_end: tuple[Path, str] | None = None
        guide = self.project.storyboard["style_guide"] if self.project.storyboard else {}
        for i, scene in enumerate(scenes):
            self._check_stop()
            self._progress("keyframes", i, n)
            recorded = {k.kind: k for k in rows[i].keyframes}
            override = self.job.override(i)
            if rows[i].status in ("pending", "failed"):
                self.rt.store.update_scene(
                    self.project.id, i, status="keyframes_generating", error_message=None
                )
            # Start frame: the job's image, the previous scene's end frame, or a generation.
            if override and override.start_image:
                start_file = self._override_frame(
                    i, "start", override.start_image, recorded.get("start")
                )
            elif previous_end is not None:
                start_file = previous_end
                self._record_frame(
                    i,
                    "start",
                    previous_end,
                    source="inherited",
                    key=None,
                    prompt=None,
                    recorded=recorded.get("start"),
                )
            else:
                start_file = self._generated_frame(
                    i, "start", prompts[i].start.text, None, scene, guide, recorded.get("start")
                )
            if override and override.end_image:
                end_file = self._override_frame(i, "end", override.end_image, recorded.get("end"))
            else:
                end_file = self._generated_frame(
                    i, "end", prompts[i].end.text, start_file, scene, guide, recorded.get("end")
                )
            previous_end = end_file
            self.rt.store.update_scene(self.project.id, i, status="keyframes_done")
            if submit_clips:
                self._submit_clip(i, prompts[i], start_file, end_file)
                self._poll_due()
        self._progress("keyframes", n, n)
        self._timed("keyframes", start)

    def _record_frame(
        self,
        index: int,
        kind: str,
        frame: tuple[Path, str],
        *,
        source: str,
        key: str | None,
        prompt: str | None,
        recorded: Any,
    ) -> None:
        stored = self.layout.stored(frame[0])
        if (
            recorded is not None
            and recorded.path == stored
            and recorded.sha256 == frame[1]
            and recorded.source == source
        ):
            return
        self.rt.store.put_keyframe(
            self.project.id,
            index,
            kind,
            path=stored,
            sha256=frame[1],
            source=source,
            generation_key=key,
            prompt=prompt,
        )

    def _trusted(self, recorded: Any, key: str | None) -> tuple[Path, str] | None:
        """A recorded artifact we can reuse: same inputs and its file intact."""
        if recorded is None or recorded.generation_key != key:
            return None
        path = self.layout.load(recorded.path)
        return (path, recorded.sha256) if verified(path, recorded.sha256) else None

    def _override_frame(
        self, index: int, kind: str, image: Path, recorded: Any
    ) -> tuple[Path, str]:
        from vidpipe.media.still import keyframe_png

        target = self.layout.keyframe(index, kind)
        frame = self.plan.frame(index, kind)
        digest = frame.image_key
        trusted = self._trusted(recorded, digest)
        if trusted:
            return trusted
        # Every keyframe file is a PNG of the job's shape (fitted as the job says).
        sha = write_atomic(target, keyframe_png(image, self.job.aspect_ratio, frame.fit))
        self.rt.store.put_keyframe(
            self.project.id,
            index,
            kind,
            path=self.layout.stored(target),
            sha256=sha,
            source="override",
            generation_key=digest,
            prompt=None,
        )
        return target, sha

    def _generated_frame(
        self,
        index: int,
        kind: str,
        prompt: str,
        reference: tuple[Path, str] | None,
        scene: Mapping[str, Any],
        guide: Mapping[str, Any],
        recorded: Any,
    ) -> tuple[Path, str]:
        provider = self.rt.provider_for(self.job, "image")
        request = image_request(
            self.job,
            provider,
            index,
            kind,
            prompt,
            scene,
            guide,
            reference[0].read_bytes() if reference else None,
        )
        key = request_key(provider, "image", request)
        trusted = self._trusted(recorded, key)
        if trusted:
            return trusted
        target = self.layout.keyframe(index, kind)
        hit = self.rt.cache.lookup(key)
        if hit is not None and hit.path is not None:
            self._hit(f"scene {index} {kind} frame", key)
            sha = copy_atomic(hit.path, target)
            source = "cached"
        else:
            self._check_stop()
            self._call(f"scene {index} {kind} frame", request.model)
            answer = provider.image(request)
            sha = write_atomic(target, answer.png)
            source = "generated"
            self._complete(
                key,
                capability="image",
                provider=provider.name,
                model=request.model,
                project_id=self.project.id,
                path=target,
                sha256=sha,
                usage=usage_dict(answer.usage),
                cost_usd=self.rt.prices.cost(provider.name, request.model, answer.usage),
            )
        self.rt.store.put_keyframe(
            self.project.id,
            index,
            kind,
            path=self.layout.stored(target),
            sha256=sha,
            source=source,
            generation_key=key,
            prompt=prompt,
        )
        return target, sha

    # -- clips ----------------------------------------------------------------------------

    def _video_request(
        self, index: int, prompt: str, start: tuple[Path, str], end: tuple[Path, str]
    ) -> tuple[Provider, VideoRequest]:
        provider = self.rt.provider_for(self.job, "video")
        first, last = start[0].read_bytes(), end[0].read_bytes()
        return provider, video_request(self.job, provider, index, prompt, first, last)

    def _submit_clip(
        self, index: int, prompts: ScenePrompts, start: tuple[Path, str], end: tuple[Path, str]
    ) -> None:
        provider, request = self._video_request(index, prompts.motion.text, start, end)
        key = request_key(provider, "video", request)
        clip = self.rt.store.clip(self.project.id, index)
        if clip is not None and clip.generation_key == key:
            if clip.status == "complete" and verified(
                self.layout.load(clip.path or ""), clip.sha256
            ):
                self.clip_done[index] = "complete"
                return
            if clip.status in ("rai_filtered", "timed_out"):
                self.clip_done[index] = clip.status
                return
        target = self.layout.clip(index)
        hit = self.rt.cache.lookup(key)
        if hit is not None and hit.path is not None:
            self._hit(f"scene {index} clip", key)
            sha = copy_atomic(hit.path, target)
            self._clip_complete(index, key, target, sha, source="cached", operation_id=None)
            return
        now = time.monotonic()
        # Poll an operation already under way (ours from a crashed run, or another job's).
        if (
            clip is not None
            and clip.generation_key == key
            and clip.status in ("submitted", "polling")
            and clip.operation_id
        ):
            self.ops[index] = _ClipOp(
                index, key, request, clip.operation_id, now, now, clip.attempts or 1
            )
            return
        pending = self.rt.cache.pending(key)
        if pending is not None and pending.operation_id:
            self.ops[index] = _ClipOp(index, key, request, pending.operation_id, now, now, 1)
            self.rt.store.put_clip(
                self.project.id,
                index,
                status="polling",
                generation_key=key,
                operation_id=pending.operation_id,
                attempts=1,
                submitted_at=utcnow(),
            )
            return
        self._submit(index, key, provider, request, attempts=1)

    def _submit(
        self, index: int, key: str, provider: Provider, request: VideoRequest, attempts: int
    ) -> None:
        self._check_stop()
        self._call(f"scene {index} clip (attempt {attempts})", request.model)
        operation_id = provider.submit_video(request)
        # Recorded before the first poll: a crash from here on resumes polling, never resubmits.
        self.rt.cache.submitted(
            key,
            capability="video",
            provider=provider.name,
            model=request.model,
            operation_id=operation_id,
            project_id=self.project.id,
        )
        self.rt.store.put_clip(
            self.project.id,
            index,
            status="submitted",
            generation_key=key,
            operation_id=operation_id,
            attempts=attempts,
            polls=0,
            path=None,
            sha256=None,
            error_message=None,
            submitted_at=utcnow(),
            source="generated",
        )
        self.rt.store.update_scene(self.project.id, index, status="video_generating")
        now = time.monotonic()
        self.ops[index] = _ClipOp(
            index, key, request, operation_id, now, now + provider.poll_interval, attempts
        )

    def _poll_due(self) -> None:
        provider = self.rt.provider_for(self.job, "video")
        now = time.monotonic()
        for _index, op in sorted(self.ops.items()):
            if op.next_poll > now:
                continue
            self._check_stop()
            status = provider.poll_video(op.operation_id, op.request)
            op.polled += 1
            self._handle(provider, op, status)
            now = time.monotonic()

    def _handle(self, provider: Provider, op: _ClipOp, status: VideoStatus) -> None:
        index = op.index
        if status.state == "running":
            if op.polled == 1:
                self.rt.store.put_clip(self.project.id, index, status="polling")
            if time.monotonic() - op.submitted > provider.poll_timeout:
                del self.ops[index]
                self.rt.cache.forget(op.key)
                self._clip_final(
                    index, "timed_out", f"no result after {provider.poll_timeout:.0f} s"
                )
            else:
                op.next_poll = time.monotonic() + provider.poll_interval
            return
        del self.ops[index]
        if status.state == "complete" and status.data:
            target = self.layout.clip(index)
            sha = write_atomic(target, status.data)
            usage = status.usage
            self._complete(
                op.key,
                capability="video",
                provider=provider.name,
                model=op.request.model,
                project_id=self.project.id,
                path=target,
                sha256=sha,
                usage=usage_dict(usage),
                cost_usd=self.rt.prices.cost(provider.name, op.request.model, usage),
                operation_id=op.operation_id,
            )
            self._clip_complete(
                index, op.key, target, sha, source="generated", operation_id=op.operation_id
            )
            return
        self.rt.cache.forget(op.key)  # failures and filtered clips are never cached
        if status.state == "rai_filtered":
            self._clip_final(
                index, "rai_filtered", status.reason or "filtered by the provider's safety filter"
            )
        elif op.attempts <= provider.resubmits:
            self._submit(index, op.key, provider, op.request, attempts=op.attempts + 1)
        else:
            reason = status.reason or "the operation failed"
            self._clip_final(index, "failed", f"{reason} (after {op.attempts} attempts)")

    def _clip_complete(
        self, index: int, key: str, path: Path, sha: str, *, source: str, operation_id: str | None
    ) -> None:
        from vidpipe.media import probe

        info = probe(path)
        self.rt.store.put_clip(
            self.project.id,
            index,
            status="complete",
            generation_key=key,
            path=self.layout.stored(path),
            sha256=sha,
            duration=info.duration,
            source=source,
            error_message=None,
            completed_at=utcnow(),
            **({"operation_id": operation_id} if operation_id else {}),
        )
        self.rt.store.update_scene(self.project.id, index, status="video_done")
        self.clip_done[index] = "complete"

    def _clip_final(self, index: int, state: str, reason: str) -> None:
        self.rt.store.put_clip(
            self.project.id, index, status=state, error_message=reason, completed_at=utcnow()
        )
        self.rt.store.update_scene(
            self.project.id,
            index,
            status="failed" if state == "failed" else "video_done",
            error_message=reason,
        )
        self.clip_done[index] = state

    def _clips(self, prompts: list[ScenePrompts]) -> None:
        start = time.monotonic()
        n = len(prompts)
        # Scenes whose clips were not submitted during keyframing (--until keyframes earlier).
        scenes = self.rt.store.scenes(self.project.id)
        for scene in scenes:
            if scene.index not in self.clip_done and scene.index not in self.ops:
                frames = {k.kind: (self.layout.load(k.path), k.sha256) for k in scene.keyframes}
                self._submit_clip(scene.index, prompts[scene.index], frames["start"], frames["end"])
        provider = self.rt.provider_for(self.job, "video")
        while self.ops:
            self._progress("clips", len(self.clip_done), n)
            self._poll_due()
            if self.ops:
                wait = max(0.0, min(op.next_poll for op in self.ops.values()) - time.monotonic())
                if self.rt.stop.wait(min(wait, provider.poll_interval or wait)):
                    raise _Stop()
        self._progress("clips", n, n)
        self._timed("clips", start)
        failed = sorted(i for i, state in self.clip_done.items() if state == "failed")
        if failed:
            reasons = {s.index: s.error_message for s in self.rt.store.scenes(self.project.id)}
            detail = "; ".join(f"scene {i}: {reasons.get(i)}" for i in failed)
            raise ProviderError(f"{len(failed)} clip(s) failed: {detail}")
        if not any(state == "complete" for state in self.clip_done.values()):
            raise ProviderError("no clip was generated (every clip was filtered or timed out)")

    # -- stitch ---------------------------------------------------------------------------

    def _stitch(self) -> None:
        from vidpipe.outputs.manifest import write_outputs

        start = time.monotonic()
        self._progress("stitch", 0, 1)
        self.rt.store.update_project(self.project.id, cost_estimate_usd=self.plan.estimate.cost_usd)
        self.outcome.output = write_outputs(
            self.rt.store,
            self.rt.config,
            self.rt.store.project(self.project.id) or self.project,
            self.plan,
            timings=self.timings,
        )
        self._timed("stitch", start)
        self._progress("stitch", 1, 1)

    # -- cost -----------------------------------------------------------------------------

    def _project_cost(self) -> float:
        return round(sum(self.rt.store.project_cost(self.project.id).values()), 6)


class _Stop(Exception):
    """Internal: the runtime's stop event was set."""


def storyboard_problem(data: Any, scenes: int) -> str:
    """Why a storyboard answer is unusable ('' if it is fine)."""
    from jsonschema import Draft202012Validator

    errors = sorted(
        Draft202012Validator(load_schema("storyboard")).iter_errors(data),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "top level"
        return f"answer does not match the storyboard schema at {where}: {first.message}"
    if len(data["scenes"]) != scenes:
        return f"answer has {len(data['scenes'])} scenes, the job asks for {scenes}"
    return ""
