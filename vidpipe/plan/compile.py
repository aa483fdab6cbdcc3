"""Compile job files into plans: load, check everything, build the generation graph.

::

    job files + vidpipe.yaml + environment + templates
        └─ load_jobs ──► Job (typed, one resolved copy of the settings)
              └─ compile_job ──► Plan (prompts, graph with keys, outputs, price, digest)

Every problem of every job is collected and raised together as a :class:`JobFileError`
(exit 2) before anything runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidpipe import __version__
from vidpipe.catalog import lifecycle_problems
from vidpipe.errors import JobFileError, Problem, TemplateProblem
from vidpipe.plan import checks
from vidpipe.plan.model import Frame, FrameSource, Node, Plan
from vidpipe.plan.requests import request_key, storyboard_request
from vidpipe.pricing import PriceTable, estimate_job
from vidpipe.prompts import BUILTIN_NAMES, check_templates, prompts_for, storyboard_prompt
from vidpipe.providers import CAPABILITIES, Provider, available, create
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import Job, load_jobs
from vidpipe.spec.outputs import finish_files


@dataclass(frozen=True)
class Compiled:
    """A checked batch: one plan per job and one provider instance per provider name."""

    plans: list[Plan]
    providers: dict[str, Provider]
    #: Located warnings (a model retiring within 30 days); problems are raised instead.
    warnings: list[str] = field(default_factory=list)


def providers_for(jobs: Sequence[Job], config: Config) -> dict[str, Provider]:
    """One instance per provider name used by the batch (they share rate limits)."""
    names = sorted({name for job in jobs for name in job.providers.values()})
    return {name: create(name, config) for name in names}


def _template_problems(jobs: Sequence[Job]) -> list[Problem]:
    """Render every job's templates; one problem per distinct error, naming its jobs.

    Jobs share templates, so one typo in `motion.j2` would otherwise be listed once per
    job of the batch: it is reported once, with the jobs it affects.
    """
    affected: dict[tuple[str, int | None, str], list[Job]] = {}
    for job in jobs:
        try:
            check_templates(job)
        except TemplateProblem as exc:
            affected.setdefault((exc.template, exc.line, exc.detail), []).append(job)
    problems = []
    for (template, line, detail), hit in affected.items():
        if len(hit) == 1:
            which = f"job {hit[0].name}, {hit[0].display}"
        else:
            which = f"{len(hit)} jobs: {', '.join(job.name for job in hit)}"
        problems.append(Problem(template, line, None, f"{detail} ({which})"))
    return problems


def compile_batch(
    config: Config, paths: Sequence[str], *, provider: str | None = None, cwd: Path | None = None
) -> Compiled:
    """Load and compile every job in `paths`; raise JobFileError listing every problem."""
    from vidpipe import memo

    flags = {"provider": provider} if provider else {}
    jobs = load_jobs(list(paths), config, cwd=cwd, flags=flags, known_providers=available())
    compiled = compile_jobs(jobs, config)
    # What `validate`, `stitch` and an unchanged `run` recognise next time without compiling.
    memo.record(compiled.plans, compiled.warnings, config, paths, provider, cwd or Path.cwd())
    return compiled


def compile_jobs(jobs: Sequence[Job], config: Config) -> Compiled:
    """Compile loaded jobs (all of a batch: outputs are checked across them)."""
    problems: list[Problem] = _template_problems(jobs)
    if problems:
        # Nothing more can be said about a job whose templates do not render.
        raise JobFileError(problems)
    providers = providers_for(jobs, config)
    prices = PriceTable(config.pricing, config.catalog)
    warnings: list[str] = []
    for job in jobs:
        problems.extend(checks.provider_limits(job, providers))
        retired, retiring = lifecycle_problems(job, providers, config.catalog)
        problems.extend(retired)
        warnings.extend(retiring)
        problems.extend(checks.crossfade(job))
        problems.extend(checks.override_images(job))
    problems.extend(checks.outputs(jobs, config))
    if problems:
        raise JobFileError(problems)
    plans = [compile_job(job, providers, prices) for job in jobs]
    return Compiled(plans=plans, providers=providers, warnings=sorted(set(warnings)))


def compile_job(job: Job, providers: Mapping[str, Provider], prices: PriceTable) -> Plan:
    """The plan of one checked job."""
    step_providers: dict[str, Provider] = {
        step: providers[job.providers[step]] for step in CAPABILITIES
    }
    models: dict[str, str] = {
        step: p.model(step, job.models.get(step))  # type: ignore[arg-type]
        for step, p in step_providers.items()
    }
    prompts = prompts_for(job)
    rendered = storyboard_prompt(job, prompts)
    templates = {key: prompts.digest(key) for key in BUILTIN_NAMES}
    frames = _frames(job)

    def node(node_id: str, step: str, scene: int | None, key: str | None) -> Node:
        provider = step_providers[step]
        usage = provider.planned_usage(step, job, models[step], scene=scene or 0)  # type: ignore[arg-type]
        return Node(
            id=node_id,
            capability=step,
            scene=scene,
            provider=provider.name,
            model=models[step],
            key=key,
            cost_usd=prices.cost(provider.name, models[step], usage),
        )

    sb = step_providers["storyboard"]
    nodes = [
        node(
            "storyboard",
            "storyboard",
            None,
            request_key(sb, "storyboard", storyboard_request(job, sb, rendered.text)),
        )
    ]
    for i in range(job.scenes):
        for kind in ("start", "end"):
            frame = next(f for f in frames if f.index == i and f.kind == kind)
            if frame.source is FrameSource.GENERATED:
                nodes.append(node(frame.node, "image", i, None))
        nodes.append(node(f"scene {i} clip", "video", i, None))
    output = job.settings["output"]
    digest_input = {
        "vidpipe": __version__.split(".")[0],
        "settings": job.settings,
        "templates": templates,
        "models": models,
        "images": {f.node: f.image_key for f in frames if f.image_key},
        # The finish step reads these files: a new music bed is a new film (every
        # generation still comes from the cache).
        "finish": {
            f: hashlib.sha256((job.root / f).read_bytes()).hexdigest()
            for f in finish_files(job.finish)
        },
    }
    if job.assets:
        # A replaced asset image is a new film; its cache keys say what to make again.
        digest_input["assets"] = {
            name: [
                hashlib.sha256(p.read_bytes()).hexdigest()
                for p in asset.images_for(job.aspect_ratio)
            ]
            for name, asset in sorted(job.assets.items())
        }
    text = json.dumps(digest_input, sort_keys=True, separators=(",", ":"), default=str)
    return Plan(
        job=job,
        providers={step: p.name for step, p in step_providers.items()},
        models=models,
        storyboard_prompt=rendered,
        templates=templates,
        frames=tuple(frames),
        nodes=tuple(nodes),
        output=output,
        estimate=estimate_job(job, step_providers, prices),
        digest=hashlib.sha256(text.encode()).hexdigest(),
    )


def override_key(image: Path, fit: str | None) -> str:
    """What identifies an override keyframe: the image's bytes and how it is fitted."""
    digest = hashlib.sha256(image.read_bytes())
    if fit:
        digest.update(b"\0fit=" + fit.encode())
    return digest.hexdigest()


def _frames(job: Job) -> list[Frame]:
    frames: list[Frame] = []
    for i in range(job.scenes):
        override = job.override(i)
        for kind in ("start", "end"):
            image = override.image(kind) if override else None
            if image is not None:
                fit = override.fit.get(kind) if override else None
                frames.append(
                    Frame(i, kind, FrameSource.OVERRIDE, image, override_key(image, fit), fit)
                )
            elif kind == "start" and i > 0:
                frames.append(Frame(i, kind, FrameSource.INHERITED))
            else:
                frames.append(Frame(i, kind, FrameSource.GENERATED))
    return frames
