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

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.artifacts import (
    Layout,
    sweep_temporaries,
    verified,
    write_atomic,
)
from vidpipe.engine.calls import Calls, Stop
from vidpipe.engine.clips import ClipOperations
from vidpipe.engine.references import References
from vidpipe.engine.runtime import Outcome, Runtime
from vidpipe.engine.states import FrameSource, JobStatus, ProjectState, SceneState
from vidpipe.errors import (
    EditedKeyframe,
    Interrupted,
    InvalidAnswer,
    LeaseLost,
    MediaError,
    ProviderError,
    TemplateProblem,
    VidpipeError,
)
from vidpipe.failures import unexpected
from vidpipe.plan.model import Plan
from vidpipe.plan.requests import (
    image_references,
    image_request,
    request_key,
    storyboard_request,
)
from vidpipe.prompts import (
    ScenePrompts,
    prompts_for,
    scene_prompts,
    scenes_after_overrides,
)
from vidpipe.providers import Provider, ReferenceImage, StoryboardRequest
from vidpipe.spec.schema import load_schema

if TYPE_CHECKING:
    from vidpipe.store import Project

STORYBOARD_ATTEMPTS = 3


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
            name=job.name, status=JobStatus.RUNNING, project_id=project.id, source=job.display
        )
        self.timings: dict[str, float] = dict(project.timings or {})
        self.calls = Calls(runtime, job.name, project.id, self.outcome)
        self.clips = ClipOperations(runtime, plan, project.id, self.layout, self.calls)
        self.refs = References(runtime, self.job, self.layout, self.calls)

    # -- helpers --------------------------------------------------------------------------

    def _status(self, status: str, **values: Any) -> None:
        # A step boundary: a runner that lost the project to another stops here.
        self.calls.check_lease()
        self.rt.store.update_project(self.project.id, status=status, **values)
        self.project.status = status

    def _final_status(self, status: str, **values: Any) -> None:
        """How a run ends, recorded unless another runner holds the project now."""
        if self.rt.store.holds(self.project.id, self.rt.owner):
            self.rt.store.update_project(self.project.id, status=status, **values)
        self.project.status = status

    def _progress(self, step: str, done: int, total: int) -> None:
        self.rt.progress.step(self.job.name, step, done, total)

    def _timed(self, name: str, start: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - start, 3)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.monotonic()
        run_id = self.rt.store.start_run(self.project.id, self.rt.batch_id)
        lost = False
        try:
            try:
                sweep_temporaries(self.layout.folder)
                self._run()
            except (Stop, Interrupted, LeaseLost):
                raise
            except Exception:
                # A failure because another runner took the project over (it swept our
                # temporary files, say) is that, not a failure of the project.
                self.calls.check_lease()
                raise
        except LeaseLost as exc:
            # The project is another runner's now: leave its row to that runner.
            lost = True
            self.outcome.status = JobStatus.STOPPED
            self.outcome.error = str(exc)
        except (Stop, Interrupted):
            self.outcome.status = JobStatus.STOPPED
            self.outcome.error = "interrupted"
            self._final_status(
                ProjectState.STOPPED, stopped_after="interrupted", error_message=None
            )
        except EditedKeyframe as exc:
            # Not a failure: the project waits for the user's decision.
            self.outcome.status = JobStatus.STOPPED
            self.outcome.error = str(exc)
            self._final_status(ProjectState.STOPPED, stopped_after="edited", error_message=str(exc))
        except (ProviderError, MediaError, TemplateProblem) as exc:
            self.outcome.status = JobStatus.FAILED
            self.outcome.error = str(exc)
            self._final_status(ProjectState.FAILED, error_message=str(exc))
        except VidpipeError as exc:
            self.outcome.status = JobStatus.FAILED
            self.outcome.error = str(exc)
            self._final_status(ProjectState.FAILED, error_message=str(exc))
        except Exception as exc:
            # Isolation: a bug, a full disk, a read-only folder fails this project alone with
            # a one-line reason; the traceback goes to error.log beside its artifacts.
            log_file = self.layout.folder / "error.log"
            reason = unexpected(exc, log_file, self.rt.config.display(log_file))
            self.outcome.status = JobStatus.FAILED
            self.outcome.error = reason
            self._final_status(ProjectState.FAILED, error_message=reason)
        except BaseException:
            # An interpreter exit: record it so the project is not left "running", then go.
            self._final_status(
                ProjectState.FAILED, error_message="interrupted by an interpreter exit"
            )
            self.rt.store.finish_run(run_id, status="failed", error_message="interpreter exit")
            raise
        finally:
            self.outcome.duration_s = round(time.monotonic() - started, 3)
            self.outcome.cost_usd = round(self.calls.spent, 6)
            if not lost:
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
        with self.rt.store.atomic():  # one commit for the step's rows
            for p in prompts:
                texts = {"start": p.start.text, "end": p.end.text, "motion": p.motion.text}
                self.rt.store.update_scene(self.project.id, p.index, prompts=texts)
            self._status(ProjectState.KEYFRAMING, error_message=None)
        submit = until not in ("keyframes",)
        self._keyframes(scenes, prompts, submit_clips=submit)
        if until == "keyframes":
            self._review_sheet()
            return self._stopped("keyframes")
        self._status(ProjectState.GENERATING_VIDEO)
        self._clips(scenes, prompts)
        if until == "clips":
            return self._stopped("clips")
        self._status(ProjectState.STITCHING)
        self._stitch()
        self._status(ProjectState.COMPLETE, stopped_after=None, error_message=None)
        self.outcome.status = JobStatus.COMPLETE

    def _review_sheet(self) -> None:
        """The contact sheet of the keyframes: what the review before paying for clips needs."""
        from vidpipe.outputs.manifest import write_contact_sheet

        write_contact_sheet(self.rt.store, self.rt.config, self.project)

    def _stopped(self, step: str) -> None:
        self._status(ProjectState.STOPPED, stopped_after=step)
        self.outcome.status = JobStatus.STOPPED

    # -- storyboard -----------------------------------------------------------------------

    def _storyboard(self) -> dict[str, Any]:
        rendered = self.plan.storyboard_prompt
        if (
            self.project.storyboard
            and self.project.storyboard_prompt == rendered.text
            and not self._storyboard_problem(self.project.storyboard)
        ):
            return self.project.storyboard
        self._status(ProjectState.STORYBOARDING)
        self._progress("storyboard", 0, 1)
        start = time.monotonic()
        provider = self.rt.provider_for(self.job, "storyboard")
        request = storyboard_request(self.job, provider, rendered.text)
        key = request_key(provider, "storyboard", request)
        hit = self.calls.obtain(
            "storyboard", key, capability="storyboard", provider=provider, model=request.model
        )
        if hit is not None and hit.result is not None and not self._storyboard_problem(hit.result):
            data = hit.result
        else:
            try:
                data = self._ask_storyboard(provider, request, key)
            except BaseException:
                self.calls.release(key)
                raise
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
            self.calls.calling("storyboard", request.model)
            try:
                answer = provider.storyboard(request)
            except InvalidAnswer as exc:
                problem = str(exc)
                continue
            problem = self._storyboard_problem(answer.data)
            if not problem:
                self.calls.record(
                    key,
                    capability="storyboard",
                    provider=provider,
                    model=request.model,
                    usage=answer.usage,
                    result=answer.data,
                )
                return answer.data
        raise InvalidAnswer(
            f"the storyboard model gave no valid storyboard in {STORYBOARD_ATTEMPTS} attempts: {problem}"
        )

    def _storyboard_problem(self, data: Any) -> str:
        return storyboard_problem(data, self.job.scenes, self.job.assets)

    def _scenes(self, storyboard: Mapping[str, Any]) -> list[dict[str, Any]]:
        scenes = scenes_after_overrides(self.job, storyboard)
        existing = self.rt.store.scenes(self.project.id)
        wanted = [
            {
                "index": s["index"],
                "description": s["scene_description"],
                # Without an empty asset list, scenes recorded before assets existed stay equal.
                "fields": {
                    k: v
                    for k, v in s.items()
                    if k not in ("index", "duration") and (k != "assets" or v)
                },
                "duration": s["duration"],
                "status": SceneState.PENDING,
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
        self._check_edits(rows.values())
        n = len(scenes)
        previous_end: tuple[Path, str] | None = None
        guide = self.project.storyboard["style_guide"] if self.project.storyboard else {}
        for i, scene in enumerate(scenes):
            self.calls.check_stop()
            self._progress("keyframes", i, n)
            recorded = {k.kind: k for k in rows[i].keyframes}
            override = self.job.override(i)
            refs = self.refs.for_scene(scene)
            if rows[i].status in (SceneState.PENDING, SceneState.FAILED):
                self.rt.store.update_scene(
                    self.project.id, i, status=SceneState.KEYFRAMES_GENERATING, error_message=None
                )
            # Start frame: the job's image, a kept edit, the previous scene's end frame, or
            # a generation.
            kept = {kind: self._kept(recorded.get(kind)) for kind in ("start", "end")}
            if override and override.start_image:
                start_file = self._override_frame(
                    i, "start", override.start_image, recorded.get("start")
                )
            elif kept["start"] is not None:
                start_file = kept["start"]
            elif previous_end is not None:
                start_file = previous_end
                self._record_frame(
                    i,
                    "start",
                    previous_end,
                    source=FrameSource.INHERITED,
                    key=None,
                    prompt=None,
                    recorded=recorded.get("start"),
                )
            else:
                start_file = self._generated_frame(
                    i,
                    "start",
                    prompts[i].start.text,
                    None,
                    scene,
                    guide,
                    recorded.get("start"),
                    refs,
                )
            if override and override.end_image:
                end_file = self._override_frame(i, "end", override.end_image, recorded.get("end"))
            elif kept["end"] is not None:
                end_file = kept["end"]
            else:
                end_file = self._generated_frame(
                    i,
                    "end",
                    prompts[i].end.text,
                    start_file,
                    scene,
                    guide,
                    recorded.get("end"),
                    refs,
                )
            previous_end = end_file
            self.rt.store.update_scene(self.project.id, i, status=SceneState.KEYFRAMES_DONE)
            if submit_clips:
                self.clips.submit(i, prompts[i].motion.text, start_file, end_file, refs)
                self.clips.poll_due()
        self._progress("keyframes", n, n)
        self._timed("keyframes", start)

    def _check_edits(self, scenes: Any) -> None:
        """Stop before replacing a keyframe file someone edited: a whole image whose bytes
        no longer match. A missing, truncated or unreadable file is made again."""
        edited = []
        for scene in sorted(scenes, key=lambda s: s.index):
            for frame in sorted(scene.keyframes, key=lambda k: k.kind != "start"):
                if frame.source == FrameSource.INHERITED:
                    continue  # the previous scene's end frame, checked there
                path = self.layout.load(frame.path)
                if path.is_file() and not verified(path, frame.sha256) and _whole_image(path):
                    edited.append((scene.index, frame.kind, path))
        if not edited or self.rt.force:
            return
        shown = self.rt.config.display
        lines = [
            f"{shown(path)} was edited after vidpipe made it; `vidpipe keep {self.job.name} "
            f"{index} {kind}` builds on the edited file, `vidpipe run --force` makes it again"
            for index, kind, path in edited
        ]
        raise EditedKeyframe("; ".join(lines))

    def _kept(self, recorded: Any) -> tuple[Path, str] | None:
        """A frame the user edited and adopted with `vidpipe keep`, if intact."""
        if recorded is None or recorded.source != FrameSource.KEPT:
            return None
        path = self.layout.load(recorded.path)
        return (path, recorded.sha256) if self._restore(path, recorded.sha256) else None

    def _restore(self, path: Path, sha256: str | None) -> bool:
        """Whether a recorded project file is intact here: as it is, or put back from its
        object (in bucket mode fetched from the bucket another machine filled)."""
        return self.rt.config.objects.restore(path, sha256)

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
            reference_images=None,
        )

    def _trusted(self, recorded: Any, key: str | None) -> tuple[Path, str] | None:
        """A recorded artifact we can reuse: same inputs and its file intact."""
        if recorded is None or recorded.generation_key != key:
            return None
        path = self.layout.load(recorded.path)
        return (path, recorded.sha256) if self._restore(path, recorded.sha256) else None

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
        # An object like any keyframe: another machine restores it instead of fitting the
        # image again, and stitches and contact sheets find every frame the same way.
        self.rt.config.objects.keep(target, sha)
        self.rt.store.put_keyframe(
            self.project.id,
            index,
            kind,
            path=self.layout.stored(target),
            sha256=sha,
            source=FrameSource.OVERRIDE,
            generation_key=digest,
            prompt=None,
            reference_images=None,
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
        refs: list[ReferenceImage],
    ) -> tuple[Path, str]:
        provider = self.rt.provider_for(self.job, "image")
        model = provider.model("image", self.job.models.get("image"))
        chosen = image_references(provider, model, refs, with_start=reference is not None)
        request = image_request(
            self.job,
            provider,
            index,
            kind,
            prompt,
            scene,
            guide,
            reference[0].read_bytes() if reference else None,
            chosen.sent,
        )
        sent = (
            chosen.record(f"scene {index} {kind} frame", model, provider.max_input_images(model))
            if chosen.sent or chosen.dropped
            else None
        )
        key = request_key(provider, "image", request)
        trusted = self._trusted(recorded, key)
        if trusted:
            return trusted
        target = self.layout.keyframe(index, kind)
        sha, cached = self.calls.image(
            f"scene {index} {kind} frame", key, provider, request, target
        )
        source = FrameSource.CACHED if cached else FrameSource.GENERATED
        self.rt.store.put_keyframe(
            self.project.id,
            index,
            kind,
            path=self.layout.stored(target),
            sha256=sha,
            source=source,
            generation_key=key,
            prompt=prompt,
            reference_images=sent,
        )
        return target, sha

    # -- clips ----------------------------------------------------------------------------

    def _clips(self, scenes: list[dict[str, Any]], prompts: list[ScenePrompts]) -> None:
        start = time.monotonic()
        n = len(prompts)
        # Scenes whose clips were not submitted during keyframing (--until keyframes earlier).
        for scene in self.rt.store.scenes(self.project.id):
            if not self.clips.pending(scene.index):
                frames = {k.kind: (self.layout.load(k.path), k.sha256) for k in scene.keyframes}
                self.clips.submit(
                    scene.index,
                    prompts[scene.index].motion.text,
                    frames["start"],
                    frames["end"],
                    self.refs.for_scene(scenes[scene.index]),
                )
        self.clips.wait(lambda done: self._progress("clips", done, n))
        self._progress("clips", n, n)
        self._timed("clips", start)
        self.clips.check_outcome()

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


def _whole_image(path: Path) -> bool:
    """Whether `path` decodes as a complete image: an edit, not a truncated or damaged file
    (which is made again like a missing one)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False
    return True


def storyboard_problem(data: Any, scenes: int, assets: Mapping[str, Any] | None = None) -> str:
    """Why a storyboard answer is unusable ('' if it is fine).

    A scene may only name declared `assets`; naming another is a reason to ask again.
    """
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
    known = assets or {}
    for i, scene in enumerate(data["scenes"]):
        unknown = [n for n in scene.get("assets") or [] if n not in known]
        if unknown:
            declared = ", ".join(sorted(known)) or "none"
            return (
                f"scene {i} names asset {unknown[0]!r}, which the job does not declare "
                f"(declared assets: {declared})"
            )
    return ""
