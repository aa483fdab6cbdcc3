"""What the commands do besides `run`: validate, render, estimate, plan, list, status,
resume, stitch, report.

Each function returns plain data (or text) for the CLI to print; they are also the
Python API of those commands. `run` is :func:`vidpipe.batch.runner.run_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.errors import InputError, NotFound

if TYPE_CHECKING:
    from vidpipe.memo import JobMemo, Memo
    from vidpipe.outputs.report import Gallery
    from vidpipe.plan import Compiled, Plan
    from vidpipe.spec.config import Config
    from vidpipe.spec.jobs import Job
    from vidpipe.store import Project, Store
    from vidpipe.store.lite import LiteStore, ProjectRow


def open_store(config: Config) -> Store | None:
    """The project database, or None when it does not exist yet (it is not created)."""
    from vidpipe.store import existing

    return existing(config.database)


def open_reader(config: Config) -> LiteStore | Store | None:
    """The project database for commands that read it (and `stitch`): over the standard
    library's sqlite3 when it can (no SQLAlchemy to import), else the full Store."""
    from vidpipe.store.lite import LiteStore

    return LiteStore.open(config.database) or open_store(config)


def find_jobs(config: Config, ref: str, cwd: Path) -> list[Job]:
    """Jobs named by a file path, or by a job name among the project's jobs."""
    from vidpipe.providers import available
    from vidpipe.spec.jobs import load_jobs

    candidate = Path(ref) if Path(ref).is_absolute() else cwd / ref
    known = available()
    if candidate.exists():
        return load_jobs([ref], config, cwd=cwd, known_providers=known)
    jobs = [j for j in load_jobs([], config, cwd=cwd, known_providers=known) if j.name == ref]
    if not jobs:
        raise NotFound(f"no job file or job named {ref!r}; give a path like jobs/example.yaml")
    return jobs


# -- render -------------------------------------------------------------------------------


def render_job(config: Config, ref: str, *, scene: int | None = None, cwd: Path) -> str:
    """The rendered prompts of a job, as text."""
    from vidpipe.prompts import offline_storyboard, prompts_for, scene_prompts, storyboard_prompt

    store = open_store(config)
    out: list[str] = []
    for job in find_jobs(config, ref, cwd):
        prompts = prompts_for(job)
        if scene is not None and not 0 <= scene < job.scenes:
            raise InputError(
                f"--scene {scene} is out of range: {job.name} has scenes 0 to {job.scenes - 1}"
            )
        story = storyboard_prompt(job, prompts)
        out.append(f"# job {job.name} ({job.display})\n")
        if scene is None:
            out.append(f"## storyboard prompt  [{story.template}]\n\n{story.text}\n")
        recorded = _recorded_storyboard(store, job, story.text)
        if recorded is not None:
            project, storyboard = recorded
            out.append(f"## scene prompts from the storyboard recorded in project {project}\n")
        else:
            storyboard = offline_storyboard(job)
            out.append("## scene prompts from the offline planner (no storyboard recorded yet)\n")
        for rendered in scene_prompts(job, storyboard, prompts):
            if scene is not None and rendered.index != scene:
                continue
            for label, item in (
                ("start frame", rendered.start),
                ("end frame", rendered.end),
                ("motion", rendered.motion),
            ):
                out.append(
                    f"### scene {rendered.index} {label}  [{item.template}]\n\n{item.text}\n"
                )
    if store is not None:
        store.close()
    return "\n".join(out)


def _recorded_storyboard(
    store: Store | None, job: Job, prompt: str
) -> tuple[str, dict[str, Any]] | None:
    """The newest storyboard recorded for this job from this exact storyboard prompt."""
    if store is None:
        return None
    for project in store.projects():
        if (
            project.job_name == job.name
            and project.storyboard
            and project.storyboard_prompt == prompt
            and len(project.storyboard.get("scenes", [])) >= job.scenes
        ):
            return project.id, project.storyboard
    return None


# -- validate / estimate / plan ------------------------------------------------------------


def validate_batch(
    config: Config, paths: Sequence[str], *, provider: str | None = None, cwd: Path
) -> Compiled:
    """Compile every job (every compile-time check); raise JobFileError listing problems.

    The result holds the plans and the warnings (models retiring soon)."""
    from vidpipe.plan import compile_batch

    return compile_batch(config, paths, provider=provider, cwd=cwd)


def validate_jobs(
    config: Config, paths: Sequence[str], *, provider: str | None = None, cwd: Path
) -> Memo:
    """`vidpipe validate`: each valid job's summary and the warnings; raise JobFileError.

    A batch whose every input is as it was when it last compiled without a problem is not
    compiled again (see :mod:`vidpipe.memo`)."""
    from vidpipe import memo

    known = memo.recall(config, paths, provider, cwd)
    if known is not None:
        return known
    compiled = validate_batch(config, paths, provider=provider, cwd=cwd)
    return memo.Memo([memo.summary(plan) for plan in compiled.plans], compiled.warnings)


def estimate_batch(
    config: Config, paths: Sequence[str], *, provider: str | None = None, cwd: Path
) -> dict[str, Any]:
    """The whole price per job and in total, as if nothing were cached (`vidpipe estimate`)."""
    jobs = [
        {
            "name": plan.name,
            "source": plan.job.display,
            "provider": dict(plan.providers),
            **plan.estimate.as_dict(),
        }
        for plan in validate_batch(config, paths, provider=provider, cwd=cwd).plans
    ]
    return {"jobs": jobs, "total_usd": round(sum(j["cost_usd"] for j in jobs), 6)}


def plan_batch(
    config: Config, paths: Sequence[str], *, provider: str | None = None, cwd: Path
) -> dict[str, Any]:
    """What a run would reuse, make and pay for, job by job (`vidpipe plan --json`).

    The shape is documented in the README ("vidpipe plan --json") and kept stable.
    """
    from vidpipe.plan import AFTER_STORYBOARD, Status, assess, compile_batch

    compiled = compile_batch(config, paths, provider=provider, cwd=cwd)
    store = open_store(config)
    jobs: list[dict[str, Any]] = []
    try:
        for plan in compiled.plans:
            assessment = assess(plan, compiled.providers, store, config)
            jobs.append(
                {
                    "name": plan.name,
                    "source": plan.job.display,
                    "digest": plan.digest,
                    "provider": dict(plan.providers),
                    "models": dict(plan.models),
                    "storyboard_pending": assessment.storyboard_pending,
                    "generations": [
                        {
                            "node": step.node,
                            "capability": step.capability,
                            "scene": step.scene,
                            "status": str(step.status),
                            "key": step.key,
                            "cost_usd": step.cost_usd,
                            "reasons": list(step.reasons),
                        }
                        for step in assessment.steps
                    ],
                    "stitch": {
                        "status": str(assessment.stitch),
                        "reason": assessment.stitch_reason,
                    },
                    "counts": {str(s): assessment.count(s) for s in Status},
                    "new_cost_usd": assessment.new_cost_usd,
                    "estimate_usd": plan.estimate.cost_usd,
                    "output": plan.output,
                }
            )
    finally:
        if store is not None:
            store.close()
    totals = {str(s): sum(j["counts"][str(s)] for j in jobs) for s in Status}
    return {
        "jobs": jobs,
        "totals": {
            "jobs": len(jobs),
            **totals,
            "new_cost_usd": round(sum(j["new_cost_usd"] for j in jobs), 6),
        },
        "key_pending": AFTER_STORYBOARD,
    }


# -- models -------------------------------------------------------------------------------


def list_models(config: Config) -> list[dict[str, Any]]:
    """The catalog as `vidpipe models` shows it: every entry plus one-line summaries."""
    from vidpipe.catalog import today
    from vidpipe.pricing import PriceTable

    table = PriceTable(config.pricing, config.catalog)
    on = today()
    rows = []
    for info in config.catalog:
        row = info.as_dict()
        row["prices"] = {**row["prices"], **dict(config.pricing.get(info.id) or {})}
        row["limits"] = _limits(info)
        row["price"] = _price(table.price(info.id), info.provider)
        found = info.lifecycle_message(on)
        if info.retired(on):
            lifecycle = f"retired {info.retires or ''}".strip()
        elif info.retires:
            lifecycle = f"{info.status}, retires {info.retires}"
        else:
            lifecycle = info.status
        if info.replacement and (info.retired(on) or found):
            lifecycle += f" → {info.replacement}"
        row["lifecycle"] = lifecycle
        rows.append(row)
    return rows


def _limits(info: Any) -> str:
    parts = []
    if info.durations:
        parts.append("/".join(str(d) for d in info.durations) + " s")
    if info.resolutions:
        parts.append("/".join(info.resolutions))
    if info.image_sizes:
        parts.append("/".join(info.image_sizes))
    if info.aspect_ratios:
        parts.append(
            " ".join(info.aspect_ratios)
            if len(info.aspect_ratios) <= 3
            else f"{len(info.aspect_ratios)} ratios"
        )
    if info.step == "video":
        frames = "first+last frame" if info.last_frame else "first frame"
        if info.reference_images:
            frames += f", {info.reference_images} refs"
        parts.append(frames)
        parts.append("audio" if info.audio else "silent")
    elif info.max_input_images:
        parts.append(f"≤{info.max_input_images} input images")
    if info.location:
        parts.append(info.location)
    return ", ".join(parts) or "-"


def _price(rates: dict[str, float] | None, provider: str) -> str:
    if provider == "local":
        return "free"
    if not rates:
        return "unpriced"
    if "per_second" in rates or "per_second_audio" in rates:
        silent, sound = rates.get("per_second"), rates.get("per_second_audio")
        text = f"{silent:g}/s" if silent is not None else ""
        if sound is not None and sound != silent:
            text += f" ({sound:g}/s with audio)"
        return text.strip()
    if "per_image" in rates:
        return f"{rates['per_image']:g}/image"
    if "per_million_input_tokens" in rates:
        return (
            f"{rates['per_million_input_tokens']:g} in / "
            f"{rates.get('per_million_output_tokens', 0):g} out per 1M tokens"
        )
    return ", ".join(f"{k} {v:g}" for k, v in rates.items())


# -- list / status ------------------------------------------------------------------------


def _output(config: Config, project: Project | ProjectRow) -> str | None:
    return (
        config.address(config.artifacts_dir / project.output_path) if project.output_path else None
    )


def list_projects(
    config: Config, *, status: str | None = None, all_versions: bool = False
) -> list[dict[str, Any]]:
    """Projects, newest first (`vidpipe list --json`): the newest project of each job, or
    with `all_versions` every project. `status` keeps those in that state."""
    store = open_reader(config)
    if store is None:
        return []
    try:
        projects: list[Project | ProjectRow] = list(store.projects())
    finally:
        store.close()
    versions: dict[str, int] = {}
    for p in projects:
        versions[p.job_name] = versions.get(p.job_name, 0) + 1
    if not all_versions:
        seen: set[str] = set()
        newest = []
        for p in projects:
            if p.job_name not in seen:
                seen.add(p.job_name)
                newest.append(p)
        projects = newest
    return [
        {
            "project_id": p.id,
            "job": p.job_name,
            "status": p.status,
            "created_at": p.created_at.isoformat(timespec="seconds") + "Z",
            "output": _output(config, p),
            "cost_usd": round(p.cost_actual_usd or 0.0, 6),
            "versions": versions[p.job_name],
        }
        for p in projects
        if status is None or p.status == status
    ]


def _project(store: Store | LiteStore | None, ref: str) -> Project | ProjectRow:
    project = store.find_project(ref) if store is not None else None
    if project is None:
        raise NotFound(f"no project or job named {ref!r}; `vidpipe list` shows what exists")
    return project


def project_status(config: Config, ref: str) -> dict[str, Any]:
    """One project in detail (`vidpipe status --json`)."""
    from vidpipe.outputs.manifest import build_manifest

    store = open_reader(config)
    project = _project(store, ref)
    assert store is not None
    manifest = build_manifest(store, config, project, check_files=True)
    runs = [
        {
            "started_at": r.started_at.isoformat(timespec="seconds") + "Z",
            "status": r.status,
            "provider_calls": r.provider_calls,
            "cached_calls": r.cached_calls,
            "cost_usd": r.cost_usd,
            "batch_id": r.batch_id,
        }
        for r in store.runs(project.id)
    ]
    store.close()
    return {
        "project_id": project.id,
        "job": project.job_name,
        "status": project.status,
        "error_message": project.error_message,
        "source": project.source_path,
        "created_at": project.created_at.isoformat(timespec="seconds") + "Z",
        "provider": manifest["provider"],
        "models": manifest["models"],
        "scenes": manifest["scenes"],
        "gaps": manifest["gaps"],
        "cost": manifest["cost"],
        "timings": manifest["timings"],
        "runs": runs,
        "output": manifest["output"]["path"],
    }


# -- resume / stitch ----------------------------------------------------------------------


def _plan_of(config: Config, project: Project | ProjectRow, cwd: Path) -> Plan:
    """The plan of a project's job, compiled from its job file as it is now."""
    from vidpipe.plan import compile_batch

    source = (
        config.root / project.source_path
        if not Path(project.source_path).is_absolute()
        else Path(project.source_path)
    )
    if not source.is_file():
        raise InputError(f"the job file of {project.id} ({project.source_path}) no longer exists")
    plans = [
        p for p in compile_batch(config, [str(source)], cwd=cwd).plans if p.name == project.job_name
    ]
    if not plans:
        raise InputError(f"{project.source_path} no longer defines job {project.job_name!r}")
    return plans[0]


def _stitching(config: Config, project: Project | ProjectRow, cwd: Path) -> Plan | JobMemo:
    """What `stitch` needs of a project's plan: remembered when its job file and every
    other input are unchanged since they last compiled (see :mod:`vidpipe.memo`),
    else compiled."""
    from vidpipe import memo

    source = config.root / project.source_path
    known = memo.recall(config, [str(source)], None, cwd) if source.is_file() else None
    for job in known.jobs if known is not None else ():
        if job.name == project.job_name:
            return job
    return _plan_of(config, project, cwd)


def resume_project(
    config: Config, ref: str, *, cwd: Path, quiet: bool = False, stopper: Any = None
) -> Any:
    """Continue a stopped, failed or interrupted project with its job file as it is now."""
    from vidpipe.batch.progress import make_progress
    from vidpipe.batch.runner import Batch, Prepared, RunOptions
    from vidpipe.plan import providers_for

    store = open_store(config)
    project = _project(store, ref)
    assert store is not None
    config.objects.check()
    plan = _plan_of(config, project, cwd)
    if plan.digest != project.plan_digest:
        raise InputError(
            f"{project.source_path} or its templates changed since project {project.id} was made; "
            "`vidpipe run` makes a new project for the changed job (unchanged steps come from the cache)"
        )
    prepared = Prepared(plans=[plan], providers=providers_for([plan.job], config))
    for name, provider in prepared.providers.items():
        steps = {s for s, p in plan.providers.items() if p == name}
        provider.check_ready(
            steps,  # type: ignore[arg-type]
            {plan.models[s] for s in steps},
        )
    progress = make_progress(1, quiet=quiet)
    batch = Batch(
        config,
        store,
        prepared,
        RunOptions(paths=[project.source_path]),
        progress,
        stop=stopper.event if stopper else None,
    )
    try:
        outcomes = batch.run(store.start_batch({"resume": project.id}))
    finally:
        progress.close()
        store.close()
    return outcomes[0]


def restitch(config: Config, ref: str, *, cwd: Path, crossfade: float | None = None) -> str:
    """Rebuild a project's outputs from its clips (`vidpipe stitch`); no provider calls.

    With `crossfade`, a preview is written beside final.mp4 and final.mp4 is left alone
    (the job file decides what final.mp4 is); the message says how to keep it.
    """
    from vidpipe.outputs.manifest import write_outputs, write_preview

    store = open_reader(config)
    project = _project(store, ref)
    config.objects.check()  # bucket mode: the clips may have to come from the bucket
    assert store is not None
    try:
        plan = _stitching(config, project, cwd)
        if crossfade is not None:
            preview = write_preview(store, config, project, plan, crossfade)
            return (
                f"wrote a preview: {config.display(preview)} (final.mp4 is unchanged); to make "
                f"it permanent, set `stitch: {{crossfade: {crossfade:g}}}` in "
                f"{project.source_path} and run `vidpipe run`"
            )
        if plan.digest != project.plan_digest:
            raise InputError(
                f"{project.source_path} changed since project {project.id} was made; "
                "`vidpipe run` brings its final.mp4 up to date (cached steps cost nothing)"
            )
        path = write_outputs(store, config, project, plan)
    finally:
        store.close()
    return f"stitched {path}"


def gallery(
    config: Config, html_path: Path, batch_id: str | None = None, *, compare: str | None = None
) -> Gallery:
    """Write the HTML gallery of a batch (`vidpipe report`); see
    :func:`vidpipe.outputs.report.write_gallery`."""
    from vidpipe.outputs.report import write_gallery

    return write_gallery(config, html_path, batch_id, compare=compare)


# -- gc -----------------------------------------------------------------------------------


def collect_garbage(
    config: Config, *, dry_run: bool = False, keep_days: float = 7
) -> dict[str, Any]:
    """`vidpipe gc`: remove objects no project and no recent generation refers to.

    In bucket mode: free the local scratch folder instead (see :func:`_free_scratch`).
    """
    from vidpipe.engine.cache import collect_garbage as collect

    if config.objects.remote:
        return _free_scratch(config, dry_run=dry_run)
    store = open_store(config)
    if store is None:
        return {"objects": [], "bytes_freed": 0, "kept": 0, "dry_run": dry_run}
    try:
        garbage = collect(store, config.artifacts_dir, keep_days=keep_days, dry_run=dry_run)
    finally:
        store.close()
    return {
        "objects": [config.display(config.artifacts_dir / o) for o in garbage.objects],
        "bytes_freed": garbage.bytes_freed,
        "kept": garbage.kept,
        "dry_run": dry_run,
    }


def _free_scratch(config: Config, *, dry_run: bool) -> dict[str, Any]:
    """Bucket mode `gc`: remove every local file that is safely in the bucket, and count
    (never delete) the bucket's objects this database does not refer to.

    Deleting objects from the bucket is not provably safe: another database may share the
    bucket, and a runner elsewhere may have uploaded an object it has not recorded yet.
    """
    from vidpipe.batch.diskspace import _size

    objects = config.objects
    objects.check()
    evicted = objects.trim(0, dry_run=dry_run)
    referenced: set[str] = set()
    store = open_store(config)
    if store is not None:
        try:
            referenced = {sha for _path, sha in store.recorded_files() if sha}
            referenced |= {
                r.result_sha256 for r in store.generations_with_files() if r.result_sha256
            }
        finally:
            store.close()
    listed = objects.bucket.sizes("objects")
    loose = {rel: size for rel, size in listed.items() if rel.rsplit("/", 1)[-1] not in referenced}
    url = objects.url
    notes = [
        f"the bucket {url} was left as it is: {len(listed)} objects, {len(loose)} of them "
        f"({_size(sum(loose.values()))}) referred to by nothing in this database",
    ]
    if loose:
        notes.append(
            "vidpipe never deletes objects from a bucket (another database or a runner "
            "elsewhere may use them); expire them with the bucket's lifecycle rules if "
            "nothing else uses it"
        )
    return {
        "objects": [str(p) for p in evicted.files],
        "bytes_freed": evicted.bytes_freed,
        "kept": evicted.kept,
        "dry_run": dry_run,
        "bucket": {
            "url": url,
            "objects": len(listed),
            "unreferenced": len(loose),
            "unreferenced_bytes": sum(loose.values()),
        },
        "notes": notes,
    }


# -- keep ---------------------------------------------------------------------------------


def keep_frame(config: Config, ref: str, scene: int, kind: str) -> dict[str, Any]:
    """Record a keyframe file as edited by hand and kept (`vidpipe keep`).

    The frame's row takes the file's new sha256 with source `kept`: the next run builds
    the scene's clip, and for an end frame the next scene, from it instead of stopping or
    generating it again.
    """
    from PIL import Image, UnidentifiedImageError

    from vidpipe.artifacts import Layout, sha256_file
    from vidpipe.engine.states import FrameSource, ProjectState

    store = open_store(config)
    project = _project(store, ref)
    assert store is not None
    try:
        scenes = {s.index: s for s in store.scenes(project.id)}
        if scene not in scenes:
            raise InputError(
                f"{project.job_name} ({project.id}) has no scene {scene}; its scenes are "
                f"0 to {len(scenes) - 1}"
                if scenes
                else f"{project.job_name} ({project.id}) has no scenes yet; run it first"
            )
        frame = next((k for k in scenes[scene].keyframes if k.kind == kind), None)
        if frame is None:
            raise InputError(f"scene {scene} of {project.id} has no {kind} frame yet")
        if frame.source == FrameSource.INHERITED:
            raise InputError(
                f"scene {scene}'s start frame is scene {scene - 1}'s end frame; run "
                f"`vidpipe keep {ref} {scene - 1} end`"
            )
        layout = Layout(config.artifacts_dir, project.job_name, project.id)
        path = layout.load(frame.path)
        try:
            with Image.open(path) as img:
                img.verify()
        except FileNotFoundError:
            raise InputError(f"{config.display(path)} does not exist; nothing to keep") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise InputError(
                f"{config.display(path)} is not a readable image; save it as a PNG and try again"
            ) from None
        digest = sha256_file(path)
        # An object like every keyframe: in bucket mode other machines fetch the kept edit.
        config.objects.keep(path, digest)
        store.put_keyframe(
            project.id,
            scene,
            kind,
            path=frame.path,
            sha256=digest,
            source=FrameSource.KEPT,
            generation_key=None,
            prompt=frame.prompt,
        )
        if project.status in (ProjectState.COMPLETE, ProjectState.FAILED):
            # A finished project is up to date for `run`: reopen it so resume rebuilds.
            store.update_project(project.id, status=ProjectState.STOPPED, stopped_after="kept")
        elif project.stopped_after == "edited":
            store.update_project(project.id, error_message=None)
    finally:
        store.close()
    return {
        "project_id": project.id,
        "job": project.job_name,
        "scene": scene,
        "kind": kind,
        "path": config.display(path),
        "sha256": digest,
    }
