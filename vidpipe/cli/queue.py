"""Commands of the work queue: submit (queue a batch) and worker (take its jobs)."""

from __future__ import annotations

import sys
from typing import Any

import click

from vidpipe.cli.base import (
    App,
    _log_calls,
    cli,
    config_options,
    pass_app,
    what_runs,
    write_reports,
)
from vidpipe.cli.jobs import _empty_database


@cli.command()
@click.argument("paths", nargs=-1)
@what_runs
@click.option(
    "--yes", is_flag=True, help="Initialise an empty (0-byte) database file without asking."
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the batch id.")
@config_options
@pass_app
def submit(
    app: App,
    paths: tuple[str, ...],
    provider: str | None,
    until: str | None,
    select: tuple[str, ...],
    yes: bool,
    quiet: bool,
) -> None:
    """Queue a batch for `vidpipe worker`s on any machine (files, folders or globs;
    default: jobs/).

    Every job is compiled and checked as `run` checks it; one invalid job queues nothing
    (exit 2). Prints the batch id.
    """
    from vidpipe.batch.queue import SubmitOptions, submit_batch

    options = SubmitOptions(paths=paths, provider=provider, select=select, until=until)
    submitted = submit_batch(app.config(), options, cwd=app.cwd, on_empty=_empty_database(yes))
    for message in submitted.warnings:
        click.secho(message, fg="yellow", err=True)
    if quiet:
        click.echo(submitted.batch_id)
        return
    n = len(submitted.jobs)
    click.echo(f"queued batch {submitted.batch_id}: {n} job{'s' if n != 1 else ''}")
    click.echo(
        "start workers on any machine that shares the database (each in a working copy of "
        f"this commit):\n  vidpipe worker --batch {submitted.batch_id} --drain"
    )


@cli.command()
@click.option(
    "--batch", "batch_id", metavar="ID", help="Only this submitted batch (default: any batch)."
)
@click.option("-j", "--concurrency", type=click.IntRange(1, 256), help="Jobs in flight at once.")
@click.option(
    "--drain", is_flag=True, help="Exit once the batch (or every batch) has nothing left to run."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="At exit, write the JSON report of the batch (every job, wherever it ran).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("-v", "--verbose", is_flag=True, help="Log provider calls and tracebacks.")
@config_options
@pass_app
def worker(
    app: App,
    batch_id: str | None,
    concurrency: int | None,
    drain: bool,
    report_path: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Take jobs of submitted batches from the queue and run them, until stopped.

    Run as many as you like, on any machines sharing the database, each in a working copy
    of the commit the batch was submitted from. With --drain, exit once nothing is left
    (0: every job complete or up to date; 1: a job failed).
    """
    from vidpipe.batch.signals import stop_on_signals
    from vidpipe.batch.worker import WorkerOptions, run_worker
    from vidpipe.outputs.report import unwritable, write_json

    if verbose:
        _log_calls()
    problem = unwritable(app.cwd / report_path) if report_path else ""
    if problem:
        raise click.UsageError(f"--report {report_path}: {problem}; nothing was run")
    options = WorkerOptions(batch_id=batch_id, concurrency=concurrency, drain=drain, quiet=quiet)
    config = app.config()
    with stop_on_signals() as stopper:
        result = run_worker(config, options, stopper=stopper)
    report = result.report()
    exit_code = result.exit_code
    recorded = "the batch is recorded: `vidpipe report --batch ID` shows it"
    if not write_reports(app.cwd, report, [("--report", report_path, write_json)], recorded):
        exit_code = exit_code or 1
    _summary(result, report, quiet=quiet)
    sys.exit(exit_code)


def _summary(result: Any, report: dict[str, Any], *, quiet: bool) -> None:
    from vidpipe.batch.runner import job_entry

    if not quiet:
        for job in (job_entry(o) for o in result.ran):
            extra = job["output"] or job["error"] or ""
            click.echo(
                f"{job['status']:<15} {job['name']:<30} calls {job['provider_calls']:>3} new, "
                f"{job['cached_calls']:>3} cached  ${job['cost_usd']:.2f}  {extra}"
            )
    n = len(result.ran)
    here = f"this worker ran {n} job{'s' if n != 1 else ''}"
    if not result.batch_ids:
        click.echo(f"{here}; no submitted batch has jobs left")
        return
    t = report["totals"]
    counts = ", ".join(f"{k} {s}" for s, k in sorted(t["by_status"].items())) or "none finished"
    which = "batch" if len(result.batch_ids) == 1 else "batches"
    click.echo(
        f"{here}; {which} {', '.join(result.batch_ids)}: {t['jobs']} job"
        f"{'s' if t['jobs'] != 1 else ''} finished ({counts}); {t['provider_calls']} provider "
        f"calls, {t['cached_calls']} cached; ${t['cost_usd']:.2f}"
    )
