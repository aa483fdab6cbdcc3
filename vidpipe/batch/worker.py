"""`vidpipe worker`: take jobs of submitted batches from the queue and run them.

Any number of workers, on any machines sharing the database, take jobs from the same
batch; nobody decides shards in advance. Each worker:

1. claims up to `-j` items at a time (vidpipe.store.queue: leases, ``SKIP LOCKED``),
2. compiles each item's job from its own working copy (the job file at the item's
   `source` under this project root) and refuses it — the item fails, no provider call —
   when the plan's digest differs from the one submitted,
3. runs it through the batch runner (:meth:`vidpipe.batch.runner.Batch.run_one`: the
   project opened and leased, a job another runner holds waits, one job's failure fails
   that job alone), its item lease renewed with its project leases in one transaction,
4. records the job's outcome (its entry of the batch report) on the item; the worker that
   finishes a batch's last item closes the batch with the report of all its items.

A worker that dies (SIGKILL) leaves its leases to lapse; another worker claims its items
again, opens their projects and polls the operations they had submitted, instead of
paying for them twice. A first SIGINT or SIGTERM stops claiming: jobs in flight stop at
their next step (their submitted operations stay recorded) and their items go back to the
queue for another worker; the worker then exits with 128+N.

Without ``--drain`` a worker waits for more work until it is stopped; with it, it exits
once the batch (or every batch, without ``--batch``) has nothing left, after waiting for
jobs other workers hold, in case one of them dies and its jobs need taking over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidpipe.batch.queue import assemble, close_batch
from vidpipe.batch.runner import (
    BUSY,
    Batch,
    BatchResult,
    Leases,
    Prepared,
    RunOptions,
    check_ready,
    job_entry,
)
from vidpipe.engine.runtime import Outcome
from vidpipe.engine.states import JobStatus
from vidpipe.errors import ConfigError, JobFileError, NotFound
from vidpipe.failures import unexpected
from vidpipe.plan import Plan, compile_batch
from vidpipe.providers import Provider
from vidpipe.redact import redact
from vidpipe.spec.config import Config
from vidpipe.spec.jobs import STEPS
from vidpipe.store import runner_id

if TYPE_CHECKING:
    from vidpipe.store import Store
    from vidpipe.store.queue import Claim, WorkQueue

#: What to tell a worker whose working copy does not match the batch.
CHECK_OUT = "check out the commit the batch was submitted from"


@dataclass
class WorkerOptions:
    """`vidpipe worker` options."""

    batch_id: str | None = None
    concurrency: int | None = None
    drain: bool = False
    quiet: bool = False


@dataclass
class WorkerResult:
    """What a worker did, and where the batches it worked on stand."""

    #: The batches it worked on or waited for (the one of ``--batch``).
    batch_ids: list[str]
    #: The jobs this worker finished, in the order it finished them.
    ran: list[Outcome]
    #: Every finished job of those batches, wherever it ran.
    batches: BatchResult
    interrupted: int | None = None

    @property
    def exit_code(self) -> int:
        """``run``'s rules over every job of the batches; 128+N when stopped by signal N."""
        if self.interrupted:
            return 128 + self.interrupted
        return self.batches.exit_code

    def report(self) -> dict[str, Any]:
        return self.batches.report()


class Refused(Exception):
    """This working copy cannot run an item as it was submitted (the item fails)."""


class Worker:
    """Claims items of submitted batches and runs their jobs, `slots` at a time."""

    def __init__(
        self,
        config: Config,
        store: Store,
        options: WorkerOptions,
        progress: Any,
        stop: threading.Event,
    ):
        from vidpipe.store.queue import WorkQueue

        self.config = config
        self.store = store
        self.queue: WorkQueue = WorkQueue(store)
        self.options = options
        self.progress = progress
        self.stop = stop
        self.owner = runner_id()
        self.slots = max(1, options.concurrency or config.jobs)
        # How often an idle worker looks at the queue, and when a job another runner
        # holds is tried again (the batch runner's pace).
        self.poll = min(2.0, config.lease_seconds / 4)
        self.lock = threading.Lock()
        #: One provider instance per name for every job this worker runs: they share the
        #: rate limits, as a batch's jobs do.
        self.providers: dict[str, Provider] = {}
        self.ready: set[frozenset[Any]] = set()
        #: One runner per submitted batch: its runtime records that batch's id.
        self.runners: dict[str, Batch] = {}
        self.planned: dict[str, int] = {}
        self.claimed = 0
        self.running: set[str] = set()  # job names in flight here
        self.seen: set[str] = set()
        self.ran: list[Outcome] = []
        self.fatal: ConfigError | None = None

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> list[Outcome]:
        """Work until stopped (or, with ``drain``, until nothing is left); the jobs it ran."""
        leases = Leases(self.store, self.config.lease_seconds)
        try:
            with ThreadPoolExecutor(self.slots, thread_name_prefix="vidpipe-worker") as pool:
                try:
                    self._loop(pool, leases)
                except BaseException:
                    # The worker itself failed (the database went away, say): stop the
                    # jobs in flight rather than wait for them; their claims lapse to
                    # another worker.
                    self.stop.set()
                    raise
        finally:
            leases.close()
        if self.fatal is not None:
            raise self.fatal
        return self.ran

    def _loop(self, pool: ThreadPoolExecutor, leases: Leases) -> None:
        pending: dict[Future[tuple[Plan | None, Outcome | None]], Claim] = {}
        later: list[tuple[float, Claim, Plan | None]] = []  # (not before, item, its plan)

        def start(claim: Claim, plan: Plan | None) -> None:
            self.running.add(claim.job_name)
            pending[pool.submit(self._work, claim, plan, leases)] = claim

        while True:
            stopping = self.stop.is_set() or self.fatal is not None
            now = time.monotonic()
            for entry in [e for e in later if stopping or e[0] <= now]:
                later.remove(entry)
                _, claim, plan = entry
                if stopping:
                    self.queue.release(claim, self.owner)
                elif claim.job_name in self.running:
                    later.append((now + self.poll, claim, plan))
                else:
                    start(claim, plan)
            free = self.slots - len(pending) - len(later)
            if free > 0 and not stopping:
                for claim in self.queue.claim(
                    self.owner, free, self.config.lease_seconds, self.options.batch_id
                ):
                    self.seen.add(claim.batch_id)
                    self.claimed += 1
                    self._grow_progress()
                    if claim.job_name in self.running:
                        # The same job of another batch: one project, one run at a time.
                        later.append((now + self.poll, claim, None))
                    else:
                        start(claim, None)
            if not pending:
                if later:
                    self.stop.wait(max(0.05, min(t for t, _, _ in later) - now))
                    continue
                if stopping:
                    return
                open_items = self.queue.open_items(self.options.batch_id)
                self.seen.update(open_items)
                if self.options.drain and not open_items:
                    return
                self.stop.wait(self.poll)
                continue
            done, _ = wait(pending, timeout=self.poll, return_when=FIRST_COMPLETED)
            for future in done:
                claim = pending.pop(future)
                self.running.discard(claim.job_name)
                plan, outcome = future.result()
                if self._settle(claim, outcome):
                    later.append((time.monotonic() + self.poll, claim, plan))

    def _grow_progress(self) -> None:
        grow: Callable[[int], None] | None = getattr(self.progress, "add_jobs", None)
        if grow is not None:
            grow(1)

    # -- one item -------------------------------------------------------------------------

    def _work(
        self, claim: Claim, plan: Plan | None, leases: Leases
    ) -> tuple[Plan | None, Outcome | None]:
        """Run one claimed item (in a pool thread): (its plan, the job's outcome).

        No outcome means the item goes back to the queue untouched (this worker cannot
        reach the job's provider).
        """
        from vidpipe.store.queue import MAX_ATTEMPTS

        if plan is None:
            failed = None
            if claim.attempts > MAX_ATTEMPTS:
                failed = (
                    f"{MAX_ATTEMPTS} workers took this job and none finished it (each was "
                    "killed or lost the database); run it alone with `vidpipe run "
                    f"{claim.source}` to see why"
                )
            else:
                try:
                    plan = self._plan(claim)
                except Refused as exc:
                    failed = str(exc)
                except ConfigError as exc:
                    self.fatal = self.fatal or exc
                    return None, None
                except Exception as exc:
                    log_file = self.config.artifacts_dir / "logs" / f"{claim.job_name}.log"
                    failed = unexpected(exc, log_file, self.config.display(log_file))
            if plan is None:
                failed = redact(failed or "")
                self.progress.finished(claim.job_name, JobStatus.FAILED, failed)
                return None, Outcome(
                    claim.job_name, JobStatus.FAILED, error=failed, source=claim.source
                )
        return plan, self._runner(claim).run_one(plan, leases)

    def _plan(self, claim: Claim) -> Plan:
        """The plan of a claimed item, compiled from this working copy; Refused if this
        copy does not have the job as it was submitted."""
        path = self.config.root / claim.source
        if not path.is_file():
            raise Refused(f"{claim.source} is not in this working copy; {CHECK_OUT}")
        with self.lock:  # one compile at a time: template and schema caches are shared
            try:
                compiled = compile_batch(
                    self.config,
                    [str(path)],
                    provider=claim.args.get("provider"),
                    cwd=self.config.root,
                )
            except JobFileError as exc:
                first = str(exc.problems[0]) if exc.problems else str(exc)
                more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
                raise Refused(
                    f"{claim.source} here does not compile: {first}{more}; {CHECK_OUT}"
                ) from None
            plan = next((p for p in compiled.plans if p.name == claim.job_name), None)
            if plan is None:
                raise Refused(f"{claim.source} here has no job {claim.job_name!r}; {CHECK_OUT}")
            if plan.digest != claim.plan_digest:
                raise Refused(
                    f"{claim.source} here differs from the submitted one (the job file, its "
                    f"templates or the vidpipe.yaml defaults changed); {CHECK_OUT}"
                )
            for name in set(plan.providers.values()):
                if name not in self.providers:
                    compiled.providers[name].stop = self.stop
                    self.providers[name] = compiled.providers[name]
            self._check_ready(plan, claim.args.get("until"))
            for step, count in plan.estimate.calls.items():
                self.planned[step] = self.planned.get(step, 0) + count
            meter = getattr(self.progress, "meter", None)
            if meter is not None:
                meter.plan(self.planned, jobs=self.claimed, workers=self.slots)
        return plan

    def _check_ready(self, plan: Plan, until: str | None) -> None:
        """This machine's credentials for the plan's providers, checked once for each set
        of providers, models and steps (as `run` checks a batch's)."""
        key = frozenset((plan.providers[s], s, plan.models[s]) for s in STEPS) | {until}
        if key in self.ready:
            return
        used = {name: self.providers[name] for name in set(plan.providers.values())}
        check_ready(used, [plan], until)
        self.ready.add(key)

    def _runner(self, claim: Claim) -> Batch:
        """The batch runner of the item's batch (made on first use)."""
        with self.lock:
            runner = self.runners.get(claim.batch_id)
            if runner is None:
                options = RunOptions(
                    concurrency=self.slots, until=claim.args.get("until"), quiet=self.options.quiet
                )
                prepared = Prepared(plans=[], providers=self.providers)
                runner = Batch(
                    self.config, self.store, prepared, options, self.progress, stop=self.stop
                )
                runner.runtime.batch_id = claim.batch_id
                self.runners[claim.batch_id] = runner
            return runner

    def _settle(self, claim: Claim, outcome: Outcome | None) -> bool:
        """Record what became of an item; True if it is to be tried again here later."""
        if outcome is None or (self.stop.is_set() and outcome.status == JobStatus.STOPPED):
            # Stopped by this worker's stop (or never started): another worker continues it.
            self.queue.release(claim, self.owner)
            return False
        if outcome.status == BUSY:
            return True
        if outcome.status == JobStatus.STOPPED and outcome.error and self._held_elsewhere(outcome):
            # Another runner took the project over (this one's lease lapsed): it is theirs
            # to finish; come back for it, finished or not, later.
            return True
        bad = outcome.status in (JobStatus.FAILED, JobStatus.SKIPPED_BUDGET) or (
            outcome.status == JobStatus.STOPPED and bool(outcome.error)
        )
        from vidpipe.store.queue import ItemState

        state = ItemState.FAILED if bad else ItemState.DONE
        entry = job_entry(outcome)
        if self.queue.finish(claim, self.owner, state, entry, close_batch):
            self.ran.append(outcome)
        return False

    def _held_elsewhere(self, outcome: Outcome) -> bool:
        from vidpipe.store import owner_gone, utcnow

        project = self.store.project(outcome.project_id) if outcome.project_id else None
        if project is None or project.lease_owner in (None, self.owner):
            return False
        live = project.lease_expires_at is not None and project.lease_expires_at > utcnow()
        return live and not owner_gone(project.lease_owner)


def run_worker(
    config: Config,
    options: WorkerOptions,
    *,
    progress: Any = None,
    stopper: Any = None,
) -> WorkerResult:
    """`vidpipe worker`: the Python API. NotFound (exit 2) for an unknown ``--batch``."""
    from vidpipe.batch.progress import make_progress
    from vidpipe.store import Store
    from vidpipe.store.queue import WorkQueue

    config.objects.check()  # bucket mode: an unreachable bucket is refused before any work
    store = Store(config.database)
    try:
        if options.batch_id is not None and WorkQueue(store).batch(options.batch_id) is None:
            raise NotFound(
                f"no submitted batch {options.batch_id!r} in the database; `vidpipe batches` "
                "lists the batches (`vidpipe submit` queues one)"
            )
        progress = progress or make_progress(0, quiet=options.quiet)
        stop = stopper.event if stopper is not None else threading.Event()
        if stopper is not None:
            stopper.working = True  # from here a first signal lets jobs in flight stop cleanly
        worker = Worker(config, store, options, progress, stop)
        try:
            ran = worker.run()
        finally:
            progress.close()
        batch_ids = [options.batch_id] if options.batch_id else sorted(worker.seen)
        items = worker.queue.items(batch_ids)
        result = assemble(batch_ids[0] if len(batch_ids) == 1 else None, items)
        return WorkerResult(
            batch_ids=batch_ids,
            ran=ran,
            batches=result,
            interrupted=stopper.signum if stopper is not None and stopper.signum else None,
        )
    finally:
        store.close()
