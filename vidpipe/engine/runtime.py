"""What every project of a batch shares (:class:`Runtime`), what one job's run yields
(:class:`Outcome`), and the hash that names a project."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from vidpipe import __version__
from vidpipe.artifacts import sha256_file
from vidpipe.engine.cache import Cache
from vidpipe.pricing import PriceTable, estimate_job
from vidpipe.prompts import Prompts, prompts_for
from vidpipe.providers import CAPABILITIES, Capability, Provider
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import Job

if TYPE_CHECKING:
    from vidpipe.store import Store


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


def input_hash(job: Job, runtime: Runtime, prompts: Prompts | None = None) -> str:
    """Hash of everything that determines a job's result: a changed hash means a new project."""
    prompts = prompts or prompts_for(job)
    payload = {
        "vidpipe": __version__.split(".")[0],
        "job": job.data,
        "templates": prompts.fingerprint(),
        "models": runtime.models(job),
        "overrides": {
            str(o.index): {
                k: sha256_file(p) for k, p in (("start", o.start_image), ("end", o.end_image)) if p
            }
            for o in job.overrides
        },
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def estimate(job: Job, runtime: Runtime) -> Any:
    """Planned calls and cost of a job (see :func:`vidpipe.pricing.estimate_job`)."""
    return estimate_job(job, runtime.step_providers(job), runtime.prices)
