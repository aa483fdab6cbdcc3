"""The batch runner behind `vidpipe run`: load, check, plan, then run jobs in parallel.

Everything that can be refused is refused before the first provider call: job files,
templates, provider pre-flight checks and credentials. Then each job is matched to a
project by its input hash: a finished project means the job is up to date (nothing to
do, nothing to pay), an unfinished one is continued, and a changed job gets a new
project whose unchanged steps come from the generation cache.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vidpipe.engine.project import ProjectRun
from vidpipe.engine.runtime import Outcome, Runtime
from vidpipe.engine.states import ClipState, JobStatus
from vidpipe.errors import InputError, StorageError
from vidpipe.failures import unexpected
from vidpipe.plan import Plan, assess, compile_batch, up_to_date
from vidpipe.providers import Provider
from vidpipe.redact import redact, redact_data
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import STEPS
from vidpipe.store.ids import new_id, runner_id, utcnow

if TYPE_CHECKING:
    from vidpipe.memo import JobMemo
    from vidpipe.store import Store

#: A compiled plan or a remembered one: both have a `name`.
Selectable = TypeVar("Selectable", "Plan", "JobMemo")


@dataclass
class RunOptions:
    """`vidpipe run` options (SPEC §6)."""

    paths: Sequence[str] = ()
    concurrency: int | None = None
    provider: str | None = None
    until: str | None = None
    select: Sequence[str] = ()
    shard: tuple[int, int] | None = None
    force: bool = False
    dry_run: bool = False
    max_cost: float | None = None
    fail_fast: bool = False
    quiet: bool = False


def job_entry(o: Outcome) -> dict[str, Any]:
    """One job's entry of a batch report (its keys are :class:`Outcome`'s fields)."""
    return {
        "name": o.name,
        "status": o.status,
        "project_id": o.project_id,
        "output": o.output,
        "cost_usd": round(o.cost_usd, 6),
        "estimate_usd": round(o.estimate_usd, 6),
        "duration_s": o.duration_s,
        "provider_calls": o.provider_calls,
        "cached_calls": o.cached_calls,
        "error": o.error,
        "source": o.source,
    }


@dataclass
class BatchResult:
    batch_id: str | None
    outcomes: list[Outcome]
    interrupted: int | None = None
    wall_s: float | None = None  # the batch's wall-clock time, when it ran

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 128 + self.interrupted
        bad = {"failed", "skipped_budget"}
        # A job stopped with a reason (an edited keyframe) waits for the user: not a pass.
        return (
            1
            if any(o.status in bad or (o.status == "stopped" and o.error) for o in self.outcomes)
            else 0
        )

    def report(self) -> dict[str, Any]:
        """The report of a batch (`--report`, SPEC §7): one entry per job, and totals."""
        jobs = [job_entry(o) for o in self.outcomes]
        # The one report feeds the --report file, JUnit, the database and the gallery.
        report: dict[str, Any] = redact_data(
            {"batch_id": self.batch_id, "jobs": jobs, "totals": self.totals()}
        )
        return report

    def totals(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for o in self.outcomes:
            by_status[o.status] = by_status.get(o.status, 0) + 1
        return {
            "jobs": len(self.outcomes),
            "by_status": by_status,
            "provider_calls": sum(o.provider_calls for o in self.outcomes),
            "cached_calls": sum(o.cached_calls for o in self.outcomes),
            "cost_usd": round(sum(o.cost_usd for o in self.outcomes), 6),
            "estimate_usd": round(sum(o.estimate_usd for o in self.outcomes), 6),
            "duration_s": round(
                self.wall_s
                if self.wall_s is not None
                else max((o.duration_s for o in self.outcomes), default=0.0),
                3,
            ),
        }


@dataclass
class Prepared:
    """A checked batch, ready to run: one compiled plan per job, provider instances."""

    plans: list[Plan]
    providers: dict[str, Provider]
    #: Planned cost of each job's new generations (job name → USD), when assessed.
    new_cost: dict[str, float] = field(default_factory=dict)
    #: Located warnings found while compiling (a model retiring within 30 days).
    warnings: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[Any]:
        return [plan.job for plan in self.plans]


#: Internal outcome: another runner holds the job's lease; try again later.
BUSY = "busy"


def shard_of(name: str, count: int) -> int:
    """The 1-based shard a job name falls in: stable across machines and runs."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_jobs(
    jobs: list[Selectable], patterns: Sequence[str], shard: tuple[int, int] | None
) -> list[Selectable]:
    """Jobs whose names match any `--select` glob, then those in shard K of N.

    A selection that matches no job is a usage error (a typo must not pass as a green,
    empty run); an empty shard is not: splitting a small batch N ways can leave one empty.
    """
    if patterns:
        jobs = [j for j in jobs if any(fnmatch.fnmatchcase(j.name, p) for p in patterns)]
        if not jobs:
            raise InputError(f"no job name matches --select {' '.join(patterns)}; nothing to run")
    if shard is not None:
        k, n = shard
        jobs = [j for j in jobs if shard_of(j.name, n) == k]
    return jobs


def prepare(
    config: Config, options: RunOptions, *, cwd: Path | None = None, check_credentials: bool = True
) -> Prepared:
    """Compile, select and pre-flight a batch. Raises InputError (exit 2) on any problem.

    Every job of the batch is compiled and checked, selected or not: --select and
    --shard choose what runs, not what is valid, so every shard of a CI matrix agrees on
    an invalid file.
    """
    compiled = compile_batch(config, options.paths, provider=options.provider, cwd=cwd)
    plans = select_jobs(compiled.plans, options.select, options.shard)
    used = {name for plan in plans for name in plan.providers.values()}
    providers = {name: p for name, p in compiled.providers.items() if name in used}
    if check_credentials:
        check_ready(providers, plans, options.until)
    return Prepared(plans=plans, providers=providers, warnings=list(compiled.warnings))


def check_ready(
    providers: Mapping[str, Provider], plans: Sequence[Plan | JobMemo], until: str | None
) -> None:
    """Each provider's credentials and models for the steps the plans use it for."""
    # `--until storyboard` calls no image or video model: their credentials can wait.
    steps = {"storyboard": 1, "keyframes": 2}.get(until or "", 3)
    for name, provider in providers.items():
        used_steps = [
            (plan, step) for plan in plans for step in STEPS[:steps] if plan.providers[step] == name
        ]
        needed = {step for _plan, step in used_steps}
        models = {plan.models[step] for plan, step in used_steps}
        provider.check_ready(needed, models)  # type: ignore[arg-type]


def planned_costs(
    config: Config, prepared: Prepared, store: Store | None, *, force: bool = False
) -> dict[str, float]:
    """Each job's cost of new generations, assessed against the cache before anything runs.

    `--dry-run` and `--max-cost` both use this one snapshot, so they pick the same jobs.
    """
    return {
        plan.name: assess(plan, prepared.providers, store, config, force=force).new_cost_usd
        for plan in prepared.plans
    }


class Leases:
    """Keeps this runner's project leases alive while it works."""

    def __init__(self, store: Store, seconds: float):
        self.store = store
        self.seconds = seconds
        self.owner = runner_id()
        self.held: set[str] = set()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="vidpipe-leases", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.done.wait(self.seconds / 3):
            with self.lock:
                held = list(self.held)
            self.store.renew(held, self.owner, self.seconds)

    @contextlib.contextmanager
    def holding(self, project_id: str) -> Iterator[None]:
        with self.lock:
            self.held.add(project_id)
        try:
            yield
        finally:
            with self.lock:
                self.held.discard(project_id)
            self.store.release(project_id, self.owner)

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)


def _trim_scratch(config: Config) -> None:
    """Bucket mode: keep the scratch folder within `scratch_max_bytes` once the batch's
    work is done (only files safely in the bucket are evicted; a later run fetches them)."""
    try:
        config.objects.trim()
    except StorageError as exc:
        _stderr(f"warning: the scratch folder was not trimmed: {exc}")


def late_clips(store: Store, project: Any) -> bool:
    """Whether clips of `project` timed out with their operation recorded.

    Such an operation kept running on the service and is billed when it finishes, so a
    finished project that has one is continued: the clip is polled again, and used.
    """
    return any(
        s.clip is not None and s.clip.status == ClipState.TIMED_OUT and s.clip.operation_id
        for s in store.scenes(project.id)
    )


class Batch:
    """Runs prepared jobs with bounded concurrency, budget admission and fail-fast."""

    def __init__(
        self,
        config: Config,
        store: Store,
        prepared: Prepared,
        options: RunOptions,
        progress: Any,
        stop: threading.Event | None = None,
    ):
        self.config = config
        self.store = store
        self.prepared = prepared
        self.options = options
        self.progress = progress
        self.stop = stop or threading.Event()
        for provider in prepared.providers.values():
            provider.stop = self.stop
        self.no_new_jobs = threading.Event()
        self.lock = threading.Lock()
        self.committed = 0.0  # estimates of jobs in flight + spend of jobs finished
        # --max-cost admits jobs in batch order, whichever worker thread gets there first:
        # job i waits until every earlier job has been admitted, refused or passed over.
        self.turns = threading.Condition()
        self.order = {plan.name: i for i, plan in enumerate(prepared.plans)}
        self.decided: set[int] = set()
        self.next_turn = 0
        self.runtime = Runtime(
            config=config,
            store=store,
            providers=prepared.providers,
            force=options.force,
            until=options.until,
            progress=progress,
            stop=self.stop,
        )

    def run(self, batch_id: str | None) -> list[Outcome]:
        self.runtime.batch_id = batch_id
        outcomes: dict[str, Outcome] = {}
        workers = max(1, self.options.concurrency or self.config.jobs)
        # CPU-bound jobs (the local renderer) run in forked processes, forked here before
        # any thread of this run starts; jobs that wait on a service run in threads.
        from vidpipe.batch import forked as _forked

        forked = None
        if _forked.usable(self, workers):
            forked = _forked.ForkedPool(self, min(workers, len(self.prepared.plans)))
        leases = None if forked is not None else self.leases()
        meter = getattr(self.progress, "meter", None)
        if meter is not None:
            calls: dict[str, int] = {}
            for plan in self.prepared.plans:
                for step, count in plan.estimate.calls.items():
                    calls[step] = calls.get(step, 0) + count
            meter.plan(calls, jobs=len(self.prepared.plans), workers=workers)
        # (not before, job): a job another runner holds goes back in the queue for later.
        queue: list[tuple[float, Plan]] = [(0.0, plan) for plan in self.prepared.plans]
        retry_after = min(2.0, self.config.lease_seconds / 4)
        try:
            threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidpipe-job")

            def start(job: Plan) -> Future[Outcome]:
                if forked is not None:
                    return forked.submit(job)
                assert leases is not None
                return threads.submit(self._run_job, job, leases)

            with forked or threads:
                pending: dict[Future[Outcome], Plan] = {}
                while queue or pending:
                    now = time.monotonic()
                    while len(pending) < workers:
                        ready = next((item for item in queue if item[0] <= now), None)
                        if ready is None:
                            break
                        queue.remove(ready)
                        job = ready[1]
                        if self.no_new_jobs.is_set() or self.stop.is_set():
                            outcomes[job.name] = Outcome(
                                job.name,
                                "stopped",
                                error="not started: the batch is stopping",
                                source=job.job.display,
                            )
                            self._pass_turn(job)
                            continue
                        pending[start(job)] = job
                    if not pending:
                        # Nothing in flight: wait for the next queued job to be due (a stop
                        # wakes us; the next pass marks the queued jobs stopped). After
                        # --fail-fast marked every queued job stopped, the queue is empty.
                        if queue:
                            self.stop.wait(max(0.05, min(t for t, _ in queue) - now))
                        continue
                    done, _ = wait(pending, return_when=FIRST_COMPLETED, timeout=0.5)
                    for future in done:
                        job = pending.pop(future)
                        outcome = future.result()
                        if outcome.status == BUSY:
                            queue.append((time.monotonic() + retry_after, job))
                            continue
                        outcomes[job.name] = outcome
                        if outcome.status == "failed" and self.options.fail_fast:
                            self.no_new_jobs.set()
        finally:
            if leases is not None:
                leases.close()
            _trim_scratch(self.config)
        return [outcomes[p.name] for p in self.prepared.plans if p.name in outcomes]

    def leases(self) -> Leases:
        """This process's leases on the projects it works on (a renewing thread)."""
        return Leases(self.store, self.config.lease_seconds)

    def run_one(self, plan: Plan, leases: Leases) -> Outcome:
        """Run one job now, outside :meth:`run` (a worker's claimed job): the project is
        opened and leased, a job another runner holds comes back ``busy``, and whatever
        goes wrong fails this job alone. No ``--max-cost`` admission."""
        return self._run_job(plan, leases)

    def _pass_turn(self, job: Plan) -> None:
        """`job` no longer holds up the admission of the jobs after it."""
        if job.name not in self.order:
            return  # not one of the prepared jobs (see run_one): it holds up nobody
        with self.turns:
            self.decided.add(self.order[job.name])
            while self.next_turn in self.decided:
                self.next_turn += 1
            self.turns.notify_all()

    def _admit(self, job: Plan, estimate_usd: float) -> bool:
        if self.options.max_cost is None:
            return True
        index = self.order[job.name]
        with self.turns:
            while self.next_turn < index and not self.stop.is_set():
                self.turns.wait(0.2)
        try:
            with self.lock:
                if self.committed + estimate_usd > self.options.max_cost + 1e-9:
                    return False
                self.committed += estimate_usd
                return True
        finally:
            self._pass_turn(job)

    def _settle(self, estimate_usd: float, spent: float) -> None:
        if self.options.max_cost is not None:
            with self.lock:
                self.committed += spent - estimate_usd

    def _run_job(self, plan: Plan, leases: Leases) -> Outcome:
        try:
            outcome = self._job(plan, leases)
        except InputError as exc:
            outcome = Outcome(plan.name, "failed", error=str(exc), source=plan.job.display)
        except Exception as exc:
            # Isolation: whatever went wrong in this job (a bug, a full disk, a file the
            # system refuses) fails this job with a one-line reason; the batch goes on.
            log_file = self.config.artifacts_dir / "logs" / f"{plan.name}.log"
            reason = unexpected(exc, log_file, self.config.display(log_file))
            outcome = Outcome(plan.name, "failed", error=reason, source=plan.job.display)
        finally:
            self._pass_turn(plan)  # up to date, busy or failed before admission
        if outcome.error:
            outcome.error = redact(outcome.error)
        if outcome.status == BUSY:
            self.progress.step(plan.name, "waiting for another runner", 0, 1)
        else:
            self.progress.finished(plan.name, outcome.status, outcome.error or "")
        return outcome

    def _job(self, plan: Plan, leases: Leases) -> Outcome:
        rt = self.runtime
        job = plan.job
        values = {
            "source_path": job.display,
            "status": "pending",
            "settings": dict(plan.settings),
            "providers": dict(plan.providers),
            "models": dict(plan.models),
            "batch_id": rt.batch_id,
            "cost_estimate_usd": plan.estimate.cost_usd,
        }
        while True:
            project, state = self.store.open_project(
                job.name,
                plan.digest,
                leases.owner,
                self.config.lease_seconds,
                force=self.options.force,
                values=values,
            )
            if (
                state == "complete"
                and up_to_date(plan, project, self.config, deliver=True)
                and not late_clips(self.store, project)
            ):
                return Outcome(
                    job.name,
                    "complete",
                    project_id=project.id,
                    output=self.config.address(
                        self.config.artifacts_dir / (project.output_path or "")
                    ),
                    source=job.display,
                )
            if state == "busy":
                # Another runner is on it: come back to it later (its lease may lapse, or it
                # finishes and the job is up to date).
                return Outcome(job.name, BUSY, project_id=project.id, source=job.display)
            if state == "complete" and not self.store.claim(
                project.id, leases.owner, self.config.lease_seconds
            ):
                continue
            break
        # What the plan says is new (assessed before the batch started), not the whole price.
        expected = self.prepared.new_cost.get(plan.name, plan.estimate.cost_usd)
        if not self._admit(plan, expected):
            self.store.release(project.id, leases.owner)
            if state == "new":
                self.store.update_project(project.id, status="stopped", stopped_after="budget")
            return Outcome(
                job.name,
                "skipped_budget",
                project_id=project.id,
                estimate_usd=expected,
                error=budget_refusal(expected, self.options.max_cost or 0.0),
                source=job.display,
            )
        self.progress.started(job.name)
        with leases.holding(project.id):
            self.store.update_project(project.id, batch_id=rt.batch_id)
            outcome = ProjectRun(rt, plan, project).run()
            # What each generation was made from, so a later `vidpipe plan` can say why
            # one is new.
            record = assess(plan, self.prepared.providers, self.store, self.config).record()
            self.store.update_project(project.id, node_inputs=record)
        outcome.estimate_usd = expected
        self._settle(expected, outcome.cost_usd)
        return outcome


def budget_refusal(planned: float, max_cost: float) -> str:
    """Why a job was not started for --max-cost (one wording for dry and real runs)."""
    return f"planned ${planned:.2f} of new generations would exceed --max-cost ${max_cost:.2f}"


def plan_only(prepared: Prepared, max_cost: float | None = None) -> list[Outcome]:
    """`--dry-run`: each job `planned` with its cost of new generations; no call.

    With `max_cost`, jobs are admitted in batch order exactly as a real run admits them,
    and those that would not fit are `skipped_budget`.
    """
    out = []
    committed = 0.0
    for plan in prepared.plans:
        planned = prepared.new_cost.get(plan.name, plan.estimate.cost_usd)
        if max_cost is not None and committed + planned > max_cost + 1e-9:
            out.append(
                Outcome(
                    plan.name,
                    JobStatus.SKIPPED_BUDGET,
                    estimate_usd=planned,
                    error=budget_refusal(planned, max_cost),
                    source=plan.job.display,
                )
            )
            continue
        committed += planned
        out.append(
            Outcome(plan.name, JobStatus.PLANNED, estimate_usd=planned, source=plan.job.display)
        )
    return out


def run_batch(
    config: Config,
    options: RunOptions,
    *,
    cwd: Path | None = None,
    progress: Any = None,
    stopper: Any = None,
    warn: Callable[[str], None] | None = None,
    on_empty: Callable[[Path], bool] | None = None,
) -> BatchResult:
    """`vidpipe run`: the Python API. Raises InputError for invalid input (nothing run).

    Once the batch has started, it always ends with its row finished and a result for every
    job: a job that fails, expectedly or not, fails alone (see :meth:`Batch._run_job`).
    `on_empty` decides whether an empty (0-byte) database file may be initialised.
    """
    if not (options.dry_run or options.force):
        unchanged = _unchanged(config, options, cwd, progress, warn)
        if unchanged is not None:
            return unchanged
    prepared = prepare(config, options, cwd=cwd, check_credentials=not options.dry_run)
    for message in prepared.warnings:
        (warn or _stderr)(message)
    if options.dry_run or options.max_cost is not None:
        # A dry run never creates the database; a real run with a budget reads it as is.
        from vidpipe.store import existing

        known = existing(config.database)
        try:
            prepared.new_cost = planned_costs(config, prepared, known, force=options.force)
        finally:
            if known is not None:
                known.close()
    if options.dry_run:
        return BatchResult(None, plan_only(prepared, options.max_cost))
    if not prepared.jobs:
        return BatchResult(None, [])  # an empty shard: nothing to do is not an error
    config.objects.check()  # bucket mode: an unreachable bucket is refused before any work
    from vidpipe.batch.diskspace import check_disk

    warning = check_disk(config.artifacts_dir, prepared.jobs)
    if warning:
        (warn or _stderr)(warning)
    from vidpipe.batch.progress import make_progress
    from vidpipe.store import Store

    progress = progress or make_progress(
        len(prepared.jobs), quiet=options.quiet, max_cost=options.max_cost
    )
    store = Store(config.database, on_empty=on_empty)
    if stopper is not None:
        stopper.working = True  # from here a first signal lets work in progress finish
    # What the batch set out to do, kept from its start: `vidpipe batches` shows a batch
    # still running (or whose runner died) with its selection and its jobs.
    batch_id = store.start_batch({**_args(options), "jobs": [plan.name for plan in prepared.plans]})
    batch = Batch(
        config, store, prepared, options, progress, stop=stopper.event if stopper else None
    )
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        outcomes = batch.run(batch_id)
    finally:
        progress.close()
        result = BatchResult(
            batch_id,
            outcomes,
            interrupted=stopper.signum if stopper is not None else None,
            wall_s=time.monotonic() - started,
        )
        # The same totals as the --report file and the JUnit suite time: the batch's wall
        # time. Finished even when the runner itself failed, so no batch stays `running`.
        store.finish_batch(
            batch_id,
            "complete" if outcomes and result.exit_code == 0 else "failed",
            result.report(),
        )
        store.close()
    return result


def _unchanged(
    config: Config,
    options: RunOptions,
    cwd: Path | None,
    progress: Any,
    warn: Callable[[str], None] | None,
) -> BatchResult | None:
    """A batch of unchanged, complete jobs, answered without compiling it or opening the
    database through SQLAlchemy (see :mod:`vidpipe.batch.unchanged`); None: run it."""
    from vidpipe import memo
    from vidpipe.batch import unchanged
    from vidpipe.providers import create

    known = memo.recall(config, options.paths, options.provider, cwd or Path.cwd())
    if known is None:
        return None
    jobs = select_jobs(known.jobs, options.select, options.shard)
    started, began = time.monotonic(), utcnow()
    if jobs:
        config.objects.check()  # bucket mode: the bucket decides what is intact
    projects = unchanged.complete_projects(config, jobs) if jobs else None
    if projects is None:
        return None
    names = sorted({name for job in jobs for name in job.providers.values()})
    check_ready({name: create(name, config) for name in names}, jobs, options.until)
    for message in known.warnings:
        (warn or _stderr)(message)
    from vidpipe.batch.progress import make_progress

    progress = progress or make_progress(len(jobs), quiet=options.quiet, max_cost=options.max_cost)
    outcomes = []
    for job in jobs:
        output = config.artifacts_dir / (projects[job.name].output_path or "")
        outcomes.append(
            Outcome(
                job.name,
                "complete",
                project_id=projects[job.name].id,
                output=config.address(output),
                source=job.source,
            )
        )
        progress.finished(job.name, "complete", "")
    progress.close()
    batch_id = new_id()
    result = BatchResult(batch_id, outcomes, wall_s=time.monotonic() - started)
    args = {**_args(options), "jobs": [job.name for job in jobs]}
    unchanged.record_batch(config, batch_id, began, args, result.report())
    return result


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _args(options: RunOptions) -> dict[str, Any]:
    return {
        "paths": list(options.paths),
        "until": options.until,
        "select": list(options.select),
        "shard": list(options.shard) if options.shard else None,
        "force": options.force,
        "max_cost": options.max_cost,
        "provider": options.provider,
    }
