"""Every check made at compile time, so `validate` (and `run`, before any provider call)
refuses what would otherwise fail after money was spent.

Each check returns located problems (`path:line:column: message`); none raises.
To add a check, write a function here and call it from :func:`vidpipe.plan.compile_batch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vidpipe.errors import Problem
from vidpipe.providers import Capability, Provider
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import JOB_SUFFIXES, Job


def provider_limits(job: Job, providers: Mapping[str, Provider]) -> list[Problem]:
    """Model limits as each provider's pre-flight knows them (durations, ratios, …)."""
    problems: list[Problem] = []
    for name, provider in providers.items():
        capabilities: set[Capability] = {
            step  # type: ignore[misc]
            for step, p in job.providers.items()
            if p == name
        }
        if capabilities:
            problems.extend(provider.preflight(job, capabilities))
    return problems


def crossfade(job: Job) -> list[Problem]:
    """A crossfade may take at most half of the shortest clip (it overlaps both ends)."""
    if job.scenes < 2 or job.crossfade <= 0:
        return []
    seconds = [job.clip_seconds(i) for i in range(job.scenes)]
    shortest = min(seconds)
    if job.crossfade <= shortest / 2:
        return []
    which = seconds.index(shortest)
    detail = (
        f"scene {which}'s clip is {shortest} s"
        if len(set(seconds)) > 1
        else f"clips are {shortest} s"
    )
    return [
        job.problem(
            ("stitch", "crossfade"),
            f"stitch.crossfade {job.crossfade:g} s is longer than half the shortest clip "
            f"({detail}); use at most {shortest / 2:g}",
        )
    ]


def override_images(job: Job) -> list[Problem]:
    """Override images must have the job's shape (within 1%) unless `fit` says how to fit them."""
    problems = []
    for position, item in enumerate(job.overrides):
        for kind in ("start", "end"):
            image = item.image(kind)
            if image is None or kind in item.fit:
                continue
            # vidpipe.media loads PyAV: only for jobs that bring their own images.
            from vidpipe.media.still import aspect_differs, image_size, ratio_of

            width, height = image_size(image)
            if aspect_differs((width, height), job.aspect_ratio):
                problems.append(
                    job.problem(
                        ("scene_overrides", position, f"{kind}_image"),
                        f"{kind}_image is {width}x{height} ({width / height:.3f}:1), but the job is "
                        f"{job.aspect_ratio} ({ratio_of(job.aspect_ratio):.3f}:1); use an image "
                        f"of that shape, or write `{kind}_image: {{path: …, fit: pad}}` "
                        "(or fit: crop)",
                    )
                )
    return problems


def outputs(jobs: Sequence[Job], config: Config) -> list[Problem]:
    """`output:` paths: one job each, and never over something the project owns."""
    problems: list[Problem] = []
    owned = _owned_files(jobs, config)
    by_target: dict[Path | str, list[Job]] = {}
    for job in jobs:
        if job.output is not None:
            by_target.setdefault(job.output, []).append(job)
        elif job.output_url is not None:
            by_target.setdefault(job.output_url.rstrip("/"), []).append(job)
    for target, same in by_target.items():
        written = str(same[0].settings["output"])
        if isinstance(target, Path):
            what = _owned(target, owned, config)
        elif config.artifacts_url and target.startswith(config.artifacts_url + "/"):
            what = f"the artifacts in {config.artifacts_url}"
        else:
            what = None
        if what:
            for job in same:
                problems.append(
                    job.problem(
                        "output",
                        f"output {written!r} would overwrite {what}; name a new file, "
                        f"such as out/{job.name}.mp4",
                    )
                )
            continue
        if len(same) > 1:
            names = ", ".join(j.name for j in same)
            seen: set[tuple[str, int | None, int | None]] = set()
            for job in same:
                problem = job.problem(
                    "output",
                    f"output {written!r} is written by {len(same)} jobs of this batch ({names}); "
                    "give each job its own output",
                )
                # Jobs of one matrix share the line: say it once.
                if (problem.path, problem.line, problem.column) not in seen:
                    seen.add((problem.path, problem.line, problem.column))
                    problems.append(problem)
    return problems


def _owned_files(jobs: Sequence[Job], config: Config) -> dict[Path, str]:
    owned: dict[Path, str] = {}
    if config.database.startswith("sqlite:///"):
        db = Path(config.database[len("sqlite:///") :]).resolve()
        for suffix in ("", "-wal", "-shm", "-journal"):
            owned[db.with_name(db.name + suffix)] = f"the database {config.display(db)}"
    if config.path is not None:
        owned[config.path.resolve()] = f"the configuration {config.display(config.path)}"
    job_files = {job.path.resolve() for job in jobs}
    jobs_dir = config.root / "jobs"
    if jobs_dir.is_dir():
        job_files |= {p.resolve() for p in jobs_dir.rglob("*") if p.suffix in JOB_SUFFIXES}
    for path in job_files:
        owned[path] = f"the job file {config.display(path)}"
    for job in jobs:
        templates = {p.resolve() for p in job.folder.glob("*.j2")}
        templates |= {(job.folder / name).resolve() for name in job.templates.values()}
        for path in templates:
            owned.setdefault(path, f"the template {config.display(path)}")
    return owned


def _owned(target: Path, owned: Mapping[Path, str], config: Config) -> str | None:
    """What the project owns at `target` (None when it is free to write)."""
    if target in owned:
        return owned[target]
    if target.is_dir() or target == config.root.resolve():
        return f"the folder {config.display(target) or '.'}"
    for folder, what in (
        (config.root / "templates", "the templates folder"),
        (config.artifacts_dir, "the artifacts folder"),
    ):
        if target.is_relative_to(folder.resolve()):
            return f"a file in {what} ({config.display(target)})"
    return None
