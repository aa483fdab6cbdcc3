"""The one place where a project's provider calls are counted, recorded and priced.

Every generation a project makes goes through a :class:`Calls`: it looks the key up in the
generation cache, logs and counts the call (or the cache hit) for the run's report, and on
success records the result in the cache with its usage and its price. Keeping this in one
place means a new step cannot forget to price a call or to count a hit.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from vidpipe.artifacts import copy_atomic, verified, write_atomic
from vidpipe.engine.cache import Hit
from vidpipe.engine.runtime import Outcome, Runtime
from vidpipe.errors import LeaseLost
from vidpipe.pricing import usage_dict
from vidpipe.providers import Provider, Usage

log = logging.getLogger("vidpipe.engine")


class Stop(Exception):
    """The runtime's stop event was set: end the project's work at the next step boundary."""


class Calls:
    """Provider calls of one project in one run."""

    def __init__(self, runtime: Runtime, job_name: str, project_id: str, outcome: Outcome):
        self.rt = runtime
        self.job_name = job_name
        self.project_id = project_id
        self.outcome = outcome
        #: USD spent by calls this run made (cache hits cost nothing).
        self.spent = 0.0
        # When the last call of this project's thread went out: a storyboard or image call
        # is answered before the next one starts, so its latency runs from here to record().
        self._last_call = time.monotonic()

    @property
    def stop(self) -> threading.Event:
        return self.rt.stop

    @property
    def owner(self) -> str:
        """The owner of this project's generation claims: the runner, then the project."""
        return f"{self.rt.owner}/{self.project_id}"

    def check_stop(self) -> None:
        """Raise :class:`Stop` if the run was asked to stop (signals, ``--fail-fast``)."""
        if self.rt.stop.is_set():
            raise Stop()

    def check_lease(self) -> None:
        """Raise :class:`LeaseLost` if another runner took this project over.

        Checked in the database before every call, not only by the renewal thread: a
        runner resumed after a pause (SIGSTOP, a suspended laptop) reaches its next call
        before its renewal thread wakes up.
        """
        if not self.rt.store.holds(self.project_id, self.rt.owner):
            raise LeaseLost(
                "another runner took this job over (this runner's lease lapsed, was it "
                "paused?); stopped work on it here, the other runner finishes it"
            )

    def obtain(
        self, what: str, key: str, *, capability: str, provider: Provider, model: str
    ) -> Hit | None:
        """A finished generation for `key` (counted as cached), or None: ours to make now.

        Single flight: while another job (of this runner or another) makes the same key,
        wait for it and reuse its result instead of paying for it again. For video, None
        also means an operation is under way (see :meth:`Cache.pending`): poll it. After a
        None, the caller makes the generation and calls :meth:`record`, or :meth:`release`
        if it fails.
        """
        waiting = False
        while True:
            hit = self.lookup(what, key)
            if hit is not None:
                return hit
            if capability == "video" and self.rt.cache.pending(key) is not None:
                return None
            if self.rt.cache.claim(
                key,
                self.owner,
                self.rt.config.lease_seconds,
                capability=capability,
                provider=provider.name,
                model=model,
            ):
                return None
            if not waiting:
                log.info("%s: %s is being made by another job; waiting for it", self.job_name, what)
                waiting = True
            self.check_lease()
            if self.rt.stop.wait(0.1):
                raise Stop()

    def image(
        self, what: str, key: str, provider: Provider, request: Any, target: Path
    ) -> tuple[str, bool]:
        """Make the image `request` asks for at `target`, or copy it from the cache.

        Returns the file's sha256 and whether it came from the cache. A failed call
        releases the key's claim, so a waiting job can make it instead.
        """
        hit = self.obtain(what, key, capability="image", provider=provider, model=request.model)
        if hit is not None and hit.path is not None:
            if target.exists() and verified(target, hit.sha256):
                return str(hit.sha256), True
            return copy_atomic(hit.path, target), True
        try:
            self.calling(what, request.model)
            answer = provider.image(request)
            sha = write_atomic(target, answer.png)
        except BaseException:
            self.release(key)
            raise
        self.record(
            key,
            capability="image",
            provider=provider,
            model=request.model,
            usage=answer.usage,
            path=target,
            sha256=sha,
        )
        return sha, False

    def release(self, key: str) -> None:
        """Give up this project's claim on `key` after a failed call."""
        self.rt.cache.release(key, self.owner)

    def lookup(self, what: str, key: str) -> Hit | None:
        """A finished generation for `key`, counted as a cached call; None if there is none."""
        hit = self.rt.cache.lookup(key)
        if hit is not None and (hit.result is not None or hit.path is not None):
            self.outcome.cached_calls += 1
            log.info("%s: %s from the cache (%s)", self.job_name, what, key[:12])
            self._log(key, hit.capability, hit.provider, hit.model, cached=True, cost=0.0)
            return hit
        return None

    def calling(self, what: str, model: str) -> None:
        """Count and log a provider call about to be made (after a last stop and lease check)."""
        self.check_stop()
        self.check_lease()
        self.outcome.provider_calls += 1
        self._last_call = time.monotonic()
        log.info("%s: calling %s (%s)", self.job_name, what, model)

    def record(
        self,
        key: str,
        *,
        capability: str,
        provider: Provider,
        model: str,
        usage: Usage,
        result: Any = None,
        path: Path | None = None,
        sha256: str | None = None,
        operation_id: str | None = None,
        started: float | None = None,
    ) -> float:
        """Record a successful generation in the cache, priced; returns its cost in USD.

        `started` is when the call went out (``time.monotonic()``), for a long-running
        operation polled among others; by default the last call of this project.
        """
        cost = self.rt.prices.cost(provider.name, model, usage)
        values: dict[str, Any] = {
            "capability": capability,
            "provider": provider.name,
            "model": model,
            "project_id": self.project_id,
            "usage": usage_dict(usage),
            "cost_usd": cost,
        }
        if result is not None:
            values["result"] = result
        if path is not None:
            values["path"] = path
            values["sha256"] = sha256
        if operation_id is not None:
            values["operation_id"] = operation_id
        latency = time.monotonic() - (self._last_call if started is None else started)
        # The generation and its call-log row: one commit.
        self.rt.cache.complete(
            key,
            **values,
            then=lambda: self._log(
                key,
                capability,
                provider.name,
                model,
                cached=False,
                cost=cost,
                latency=latency,
                progress=False,
            ),
        )
        self.spent += cost
        self.rt.progress.call(capability, cost=cost, latency=latency, cached=False)
        return cost

    def shared(
        self,
        key: str,
        *,
        capability: str,
        provider: Provider,
        model: str,
        usage: Usage,
        path: Path,
        sha256: str,
        operation_id: str,
        started: float | None = None,
    ) -> float:
        """Take the result of another job's operation, polled here as well: a reuse for
        this project, at no cost.

        The job that submitted it records it as made (and paid for) when its own poll sees
        it finish; until then it is cached from here, so nobody polls it again.
        """
        if self.rt.cache.lookup(key) is None:
            self.rt.cache.complete(
                key,
                capability=capability,
                provider=provider.name,
                model=model,
                project_id=self.project_id,
                usage=usage_dict(usage),
                cost_usd=self.rt.prices.cost(provider.name, model, usage),
                path=path,
                sha256=sha256,
                operation_id=operation_id,
            )
        self.outcome.cached_calls += 1
        log.info("%s: %s reused from another job's operation", self.job_name, key[:12])
        self._log(key, capability, provider.name, model, cached=True, cost=0.0)
        return 0.0

    def _log(
        self,
        key: str,
        capability: str,
        provider: str,
        model: str,
        *,
        cached: bool,
        cost: float,
        latency: float | None = None,
        progress: bool = True,
    ) -> None:
        """The call-log row of a generation this project used (and, unless the caller
        does it after its transaction, the progress display's)."""
        self.rt.store.log_call(
            batch_id=self.rt.batch_id,
            project_id=self.project_id,
            job_name=self.job_name,
            capability=capability,
            provider=provider,
            model=model,
            key=key,
            cached=cached,
            cost_usd=cost,
            latency_s=None if latency is None else round(latency, 3),
        )
        if progress:
            self.rt.progress.call(capability, cost=cost, latency=latency, cached=cached)

    def submitted(self, key: str, *, provider: Provider, model: str, operation_id: str) -> None:
        """Record a submitted long-running operation before it is first polled."""
        self.rt.cache.submitted(
            key,
            capability="video",
            provider=provider.name,
            model=model,
            operation_id=operation_id,
            project_id=self.project_id,
        )

    def forget(self, key: str) -> None:
        """Drop a pending generation: failures and filtered results are never cached."""
        self.rt.cache.forget(key)
