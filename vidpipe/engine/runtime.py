"""What every project of a batch shares (:class:`Runtime`) and what one job's run yields
(:class:`Outcome`). The digest that names a project is the plan's (vidpipe.plan)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from vidpipe.engine.cache import Cache
from vidpipe.pricing import PriceTable
from vidpipe.providers import Provider
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import Job
from vidpipe.store import runner_id

if TYPE_CHECKING:
    from vidpipe.store import Store


class Progress(Protocol):
    """Receives progress of jobs (the batch runner draws bars or prints lines)."""

    def step(self, job: str, step: str, done: int, total: int) -> None: ...

    def call(
        self, capability: str, *, cost: float, latency: float | None, cached: bool
    ) -> None: ...


class NullProgress:
    def step(self, job: str, step: str, done: int, total: int) -> None:
        pass

    def call(self, capability: str, *, cost: float, latency: float | None, cached: bool) -> None:
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
    #: Who holds this batch's leases (projects) and claims (generations being made).
    owner: str = field(default_factory=runner_id)

    def __post_init__(self) -> None:
        self.cache = Cache(self.store, self.config.objects, force=self.force)
        self.prices = PriceTable(self.config.pricing, self.config.catalog)

    def provider_for(self, job: Job, step: str) -> Provider:
        return self.providers[job.providers[step]]


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
