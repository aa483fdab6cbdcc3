"""A batch's jobs in forked processes: `run -j N` when the work is this machine's CPU.

The local provider draws keyframes and encodes clips in vidpipe's own process, and job
threads share one interpreter lock: with threads, `-j 2` barely beats `-j 1` on such a
batch. When every provider of a batch renders here (and the run has no `--max-cost`,
keeps its artifacts on this disk, and the platform can fork), :class:`ForkedPool` forks
N children once the batch is compiled and before any thread of the run starts. A child
reuses the parent's imports and compiled plans (no start-up of its own), opens its own
database connections, holds its own leases and claims (a runner id of its own, as a
second machine would), and sends its progress and each job's outcome back over a pipe.
The parent hands out jobs through the same loop as the thread pool (fail-fast, jobs
another runner holds retried later) and writes the batch's report.

Signals: Ctrl-C reaches the whole process group; children ignore SIGINT and stop when
the parent tells them (SIGTERM: finish files in progress, as the first signal does in
one process; a second SIGTERM exits at once). A parent that stops at once kills its
children (:data:`vidpipe.batch.signals.CHILDREN`), and a child exits as soon as its
parent is gone (SIGKILL included), so a killed run leaves no orphan working on and
holding leases: the next run picks every job up.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Protocol

from vidpipe.batch.signals import CHILDREN
from vidpipe.engine.runtime import Outcome
from vidpipe.failures import unexpected
from vidpipe.store.ids import runner_id

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from vidpipe.plan import Plan


class Batch(Protocol):
    """What a job process uses of :class:`vidpipe.batch.runner.Batch`."""

    config: Any
    store: Any
    prepared: Any
    options: Any
    progress: Any
    runtime: Any
    stop: threading.Event

    def leases(self) -> Any: ...

    def run_one(self, plan: Plan, leases: Any) -> Outcome: ...


def usable(batch: Batch, workers: int) -> bool:
    """Whether `batch` runs its jobs in forked processes rather than threads."""
    if workers < 2 or len(batch.prepared.plans) < 2:
        return False
    if "fork" not in multiprocessing.get_all_start_methods():
        return False  # Windows: threads
    if batch.options.max_cost is not None:
        return False  # admission in batch order shares one running total
    if batch.config.objects.remote:
        return False  # the bucket clients' event loops are not safe across a fork
    providers = batch.prepared.providers.values()
    return bool(providers) and all(p.renders_here for p in providers)


class _Child:
    def __init__(self, process: BaseProcess, conn: Connection):
        self.process = process
        self.conn = conn
        self.job: tuple[Plan, Future[Outcome]] | None = None
        #: Why the process gave up outside a job (its database, say), when it said so.
        self.fatal: str | None = None


class ForkedPool:
    """N forked job processes; :meth:`submit` returns a future of the job's outcome."""

    def __init__(self, batch: Batch, count: int):
        self.batch = batch
        self.lock = threading.Lock()
        self.waiting: collections.deque[tuple[Plan, Future[Outcome]]] = collections.deque()
        self.children: list[_Child] = []
        self.closing = False
        self.stopped_children = False
        context = multiprocessing.get_context("fork")
        # No pooled connection or buffered output crosses the fork; what the parent
        # allocated so far (modules, plans) is frozen out of the children's garbage
        # collections, which would otherwise walk it, copying every page they touch
        # (10 small jobs on 2 cores: 3.10 s → 2.99 s).
        batch.store.engine.dispose()
        gc.freeze()  # without a collection first: that alone took ~35 ms
        sys.stdout.flush()
        sys.stderr.flush()
        cores = _cores(count)
        for slot in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_child_main,
                args=(batch, theirs, os.getpid(), None if cores is None else cores[slot]),
                name="vidpipe-job",
                daemon=True,
            )
            process.start()
            theirs.close()
            assert process.pid is not None
            CHILDREN.add(process.pid)
            self.children.append(_Child(process, ours))
        gc.unfreeze()  # this process goes on collecting as before (an API caller's too)
        self.reader = threading.Thread(target=self._read, name="vidpipe-children", daemon=True)
        self.reader.start()

    def __enter__(self) -> ForkedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, plan: Plan) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        with self.lock:
            self.waiting.append((plan, future))
            self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Give waiting jobs to idle children (under the lock)."""
        alive = [c for c in self.children if c.process.is_alive() or c.job is not None]
        for child in alive:
            if not self.waiting:
                return
            if child.job is None and child.process.is_alive():
                plan, future = self.waiting.popleft()
                child.job = (plan, future)
                try:
                    child.conn.send(plan.name)
                except OSError:
                    self._lost(child)
        if not alive:
            while self.waiting:
                plan, future = self.waiting.popleft()
                future.set_result(_failed(plan, "no job process is left to run it"))

    def _read(self) -> None:
        while True:
            with self.lock:
                conns = {c.conn: c for c in self.children}
            if not conns or (self.closing and all(c.job is None for c in conns.values())):
                return
            if self.batch.stop.is_set() and not self.stopped_children:
                self.stopped_children = True
                self._signal(signal.SIGTERM)
            for conn in wait(list(conns), timeout=0.2):
                child = conns[conn]  # type: ignore[index]
                try:
                    message = child.conn.recv()
                except (EOFError, OSError):
                    with self.lock:
                        self._lost(child)
                    continue
                self._handle(child, message)

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "fatal":
            child.fatal = message[1]
            return
        if kind == "done":
            with self.lock:
                job, child.job = child.job, None
                self._dispatch()
            if job is not None:
                job[1].set_result(message[1])
            return
        _kind, method, args, kwargs = message
        with contextlib.suppress(Exception):  # progress is display only; it fails no job
            getattr(self.batch.progress, method)(*args, **kwargs)

    def _lost(self, child: _Child) -> None:
        """`child` died (under the lock): its job fails alone, the others go on."""
        if child not in self.children:
            return  # already seen gone (a failed send, then the reader's end of file)
        self.children.remove(child)
        child.process.join(timeout=5)
        CHILDREN.discard(child.process.pid or 0)
        code = child.process.exitcode
        if child.job is not None:
            plan, future = child.job
            child.job = None
            how = f"was killed by signal {-code}" if code and code < 0 else f"exited ({code})"
            reason = child.fatal or (
                f"the process running this job {how} before it finished; run again to "
                "resume it (what it made is kept)"
            )
            future.set_result(_failed(plan, reason))
            self.batch.progress.finished(plan.name, "failed", reason)
        self._dispatch()

    def _signal(self, signum: int) -> None:
        for child in list(self.children):
            with contextlib.suppress(OSError):
                os.kill(child.process.pid or 0, signum)

    def close(self) -> None:
        """Let the children go (each finishes its job first) and wait for them."""
        with self.lock:
            self.closing = True
            children = list(self.children)
        for child in children:
            with contextlib.suppress(OSError):
                child.conn.send(None)
        self.reader.join()
        for child in children:
            child.process.join(timeout=30)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()
            CHILDREN.discard(child.process.pid or 0)
            child.conn.close()


def _failed(plan: Plan, reason: str) -> Outcome:
    return Outcome(plan.name, "failed", error=reason, source=plan.job.display)


class _ProgressToParent:
    """A child's progress: each call is sent to the parent, which draws it."""

    meter = None

    def __init__(self, conn: Connection, lock: threading.Lock):
        self.conn = conn
        self.lock = lock

    def _send(self, method: str, *args: Any, **kwargs: Any) -> None:
        with self.lock:
            self.conn.send(("progress", method, args, kwargs))

    def started(self, job: str) -> None:
        self._send("started", job)

    def step(self, job: str, step: str, done: int, total: int) -> None:
        self._send("step", job, step, done, total)

    def finished(self, job: str, status: str, detail: str = "") -> None:
        self._send("finished", job, status, detail)

    def call(self, capability: str, *, cost: float, latency: float | None, cached: bool) -> None:
        self._send("call", capability, cost=cost, latency=latency, cached=cached)


def _child_main(batch: Batch, conn: Connection, parent: int, core: int | None) -> None:
    """A job process: run the jobs the parent names until it says None (or is gone).

    `core`: the one core it has (-1: a share of one, the scheduler's choice), or None
    (several cores are its to use)."""
    if core is not None:
        _one_core(core)  # first: the threads started from here on inherit it
    _die_with_parent(parent)
    stop = batch.stop

    def on_term(signum: int, _frame: Any) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C: the parent decides
    signal.signal(signal.SIGTERM, on_term)
    batch.store.engine.dispose(close=False)
    # Leases and generation claims are held in this process's name: a sibling making the
    # same generation waits for it, as a runner on another machine would.
    batch.runtime.owner = runner_id()
    send = threading.Lock()
    progress = _ProgressToParent(conn, send)
    batch.progress = progress
    batch.runtime.progress = progress
    plans = {plan.name: plan for plan in batch.prepared.plans}
    leases = None
    try:
        leases = batch.leases()
        while True:
            try:
                name = conn.recv()
            except (EOFError, OSError):
                break
            if name is None:
                break
            outcome = batch.run_one(plans[name], leases)  # a job's failure is its outcome
            with send:
                conn.send(("done", outcome))
    except Exception as exc:
        # Outside any job (this process's database connection or leases): the job in
        # hand fails with the reason, the traceback goes to the log, none to the terminal.
        log_file = batch.config.artifacts_dir / "logs" / "job-process.log"
        reason = unexpected(exc, log_file, batch.config.display(log_file))
        with send, contextlib.suppress(OSError):
            conn.send(("fatal", reason))
        os._exit(1)
    finally:
        if leases is not None:
            leases.close()
        batch.store.close()


def _cores(count: int) -> list[int] | None:
    """Per job process, the core it keeps to (-1: more processes than cores, a share of
    one left to the scheduler); None when each process has several cores to use.

    Left to the scheduler, a job process's threads (its own, and x264's slice and
    lookahead threads) wander across both cores of a 2-core machine and wait on each
    other there; kept to a core each, 10 small jobs at `-j 2` took 3.35 s instead of
    3.56 s, with 4% less CPU. Only the cores this process may use are handed out
    (`taskset`, a container's cpuset).
    """
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    total = len(usable) or os.cpu_count() or 1
    if total // count > 1:
        return None
    if count > len(usable):
        return [-1] * count  # more processes than cores (or no placement, as on macOS)
    return usable[:count]


def _one_core(core: int) -> None:
    """Run this job process on one core (`core`, when it is not -1).

    Alone, a job draws the next frames in a second thread while x264 encodes; on a core
    of its own that thread only hands frames and the interpreter lock back and forth
    (10 small jobs on 2 cores: 0.74x of `-j 1` with it, 0.69x without), so frames are
    drawn in the encoding thread. x264 keeps its threads: they change the bitstream, and
    a job makes the same film whatever `-j`.
    """
    from vidpipe.media import base

    base.RENDER_AHEAD = 0
    if core >= 0:
        with contextlib.suppress(OSError):  # the core was taken away meanwhile: anywhere
            os.sched_setaffinity(0, {core})


def _die_with_parent(parent: int) -> None:
    """Exit at once when the parent process dies (SIGKILL included): no orphan goes on
    working, holding leases, after the run that started it is gone."""
    watched = multiprocessing.parent_process()
    if watched is None or os.getppid() != parent:
        os._exit(1)  # the parent died before this child got going

    def watch() -> None:
        wait([watched.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="vidpipe-parent-watch", daemon=True).start()
