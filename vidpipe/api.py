"""What the read-mostly commands do: render, estimate, list, status, resume, stitch.

Each function returns plain data (or text) for the CLI to print; they are also the
Python API of those commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.errors import InputError, NotFound

if TYPE_CHECKING:
    from vidpipe.spec.config import Config
    from vidpipe.spec.jobs import Job
    from vidpipe.store import Project, Store
    from vidpipe.store.lite import LiteStore, ProjectRow


def _database_exists(config: Config) -> bool:
    url = config.database
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).is_file()
    return True


def open_store(config: Config, *, create: bool = False) -> Store | None:
    """The project database, or None when it does not exist yet (and `create` is off)."""
    from vidpipe.store import Store

    if not create and not _database_exists(config):
        return None
    return Store(config.database)


def open_reader(config: Config) -> LiteStore | Store | None:
    """The project database for commands that read it (and `stitch`): over the standard
    library's sqlite3 when it can (no SQLAlchemy to import), else the full Store."""
    from vidpipe.store.lite import LiteStore

    return LiteStore.open(config.database) or open_store(config)


def find_jobs(config: Config, ref: str, cwd: Path) -> list[Job]:
    """Jobs named by a file path, or by a job name among the project's jobs."""
    from vidpipe.spec.jobs import load_jobs

    candidate = Path(ref) if Path(ref).is_absolute() else cwd / ref
    if candidate.exists():
        return load_jobs([ref], config, cwd=cwd)
    jobs = [j for j in load_jobs([], config, cwd=cwd) if j.name == ref]
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


# -- estimate -----------------------------------------------------------------------------


def estimate_batch(
    config: Config, paths: Sequence[str], *, provider: str | None = None, cwd: Path
) -> dict[str, Any]:
    """Planned calls and cost per job and in total (`vidpipe estimate`)."""
    from vidpipe.batch.runner import RunOptions, prepare
    from vidpipe.engine.runtime import Runtime, estimate

    prepared = prepare(
        config, RunOptions(paths=paths, provider=provider), cwd=cwd, check_credentials=False
    )
    runtime = Runtime(config=config, store=None, providers=prepared.providers)  # type: ignore[arg-type]
    jobs = []
    for job in prepared.jobs:
        planned = estimate(job, runtime)
        jobs.append(
            {
                "name": job.name,
                "source": job.display,
                "provider": dict(job.providers),
                **planned.as_dict(),
            }
        )
    return {"jobs": jobs, "total_usd": round(sum(j["cost_usd"] for j in jobs), 6)}


# -- list / status ------------------------------------------------------------------------


def _output(config: Config, project: Project | ProjectRow) -> str | None:
    return (
        config.display(config.artifacts_dir / project.output_path) if project.output_path else None
    )


def list_projects(config: Config, *, status: str | None = None) -> list[dict[str, Any]]:
    """Projects, newest first (`vidpipe list --json`)."""
    store = open_reader(config)
    if store is None:
        return []
    rows = [
        {
            "project_id": p.id,
            "job": p.job_name,
            "status": p.status,
            "created_at": p.created_at.isoformat(timespec="seconds") + "Z",
            "output": _output(config, p),
        }
        for p in store.projects(status=status)
    ]
    store.close()
    return rows


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
    manifest = build_manifest(store, config, project)
    runs = [
        {
            "started_at": r.started_at.isoformat(timespec="seconds") + "Z",
            "status": r.status,
            "provider_calls": r.provider_calls,
            "cached_calls": r.cached_calls,
            "cost_usd": r.cost_usd,
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


def resume_project(
    config: Config, ref: str, *, cwd: Path, quiet: bool = False, stopper: Any = None
) -> Any:
    """Continue a stopped, failed or interrupted project with its job file as it is now."""
    from vidpipe.batch.progress import make_progress
    from vidpipe.batch.runner import Batch, Prepared, RunOptions, providers_for
    from vidpipe.engine.runtime import Runtime, input_hash
    from vidpipe.spec.jobs import load_jobs

    store = open_store(config)
    project = _project(store, ref)
    assert store is not None
    source = (
        config.root / project.source_path
        if not Path(project.source_path).is_absolute()
        else Path(project.source_path)
    )
    if not source.is_file():
        raise InputError(f"the job file of {project.id} ({project.source_path}) no longer exists")
    jobs = [j for j in load_jobs([str(source)], config, cwd=cwd) if j.name == project.job_name]
    if not jobs:
        raise InputError(f"{project.source_path} no longer defines job {project.job_name!r}")
    job = jobs[0]
    prepared = Prepared(jobs=[job], providers=providers_for([job], config))
    for name, provider in prepared.providers.items():
        provider.check_ready({s for s, p in job.providers.items() if p == name})  # type: ignore[misc]
    if (
        input_hash(job, Runtime(config=config, store=store, providers=prepared.providers))
        != project.input_hash
    ):
        raise InputError(
            f"{project.source_path} or its templates changed since project {project.id} was made; "
            "`vidpipe run` makes a new project for the changed job (unchanged steps come from the cache)"
        )
    progress = make_progress(1, quiet=quiet)
    batch = Batch(
        config,
        store,
        prepared,
        RunOptions(paths=[str(source)]),
        progress,
        stop=stopper.event if stopper else None,
    )
    try:
        outcomes = batch.run(store.start_batch({"resume": project.id}))
    finally:
        progress.close()
        store.close()
    return outcomes[0]


def restitch(config: Config, ref: str, *, crossfade: float | None = None) -> str:
    """Rebuild a project's outputs from its clips (`vidpipe stitch`); no provider calls."""
    from vidpipe.outputs.manifest import write_outputs

    store = open_reader(config)
    project = _project(store, ref)
    assert store is not None
    try:
        path = write_outputs(store, config, project, crossfade=crossfade)
    finally:
        store.close()
    return path
