"""Commands that read job files: init, validate, render, run, estimate, plan, models."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vidpipe.cli.base import (
    App,
    FiniteFloat,
    _log_calls,
    cli,
    config_options,
    pass_app,
    what_runs,
    write_reports,
)

# -- init ---------------------------------------------------------------------------------


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, force: bool) -> None:
    """Scaffold a project: vidpipe.yaml, jobs/example.yaml and templates/."""
    from vidpipe.scaffold import scaffold

    written, kept, skipped = scaffold(Path(directory), force=force)
    for path in written:
        click.echo(f"created {path}")
    for path in kept:
        click.echo(f"kept    {path} (exists; --force overwrites)")
    for path in skipped:
        click.echo(f"skipped {path} (an existing project: init adds no files to it)")
    where = "" if directory == "." else f"cd {directory} && "
    click.echo(f"\nNext: {where}vidpipe validate && vidpipe run")


# -- validate / render --------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--provider", metavar="NAME", help="Validate as if every job used this provider.")
@config_options
@pass_app
def validate(app: App, paths: tuple[str, ...], provider: str | None) -> None:
    """Check job files: schema, paths, templates, provider limits. No provider calls.

    PATHS are files, folders or globs (default: jobs/). Exits 2 listing every problem.
    """
    from vidpipe.api import validate_jobs

    valid = validate_jobs(app.config(), paths, provider=provider, cwd=app.cwd)
    for message in valid.warnings:
        click.secho(message, fg="yellow", err=True)
    for job in valid.jobs:
        providers = sorted(set(job.providers.values()))
        click.echo(
            f"ok  {job.source}: {job.name} ({job.scenes} scenes, {job.aspect_ratio}, {'/'.join(providers)})"
        )
    n = len(valid.jobs)
    click.echo(f"{n} job{'s' if n != 1 else ''} valid.")


@cli.command()
@click.argument("job")
@click.option(
    "--scene", "scene", type=int, metavar="N", help="Only this scene's prompts (0-based)."
)
@config_options
@pass_app
def render(app: App, job: str, scene: int | None) -> None:
    """Print a job's rendered prompts (storyboard, then each scene's).

    Scene prompts come from the job's recorded storyboard when it has one, else from
    the offline planner; the output says which. JOB is a job file or a job name.
    """
    from vidpipe.api import render_job

    config = app.config()
    click.echo(render_job(config, job, scene=scene, cwd=app.cwd), nl=False)


# -- run and friends ----------------------------------------------------------------------


def _shard(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise click.BadParameter("use K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise click.BadParameter(f"K must be between 1 and N, got {value}")
    return k, n


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("-j", "--concurrency", type=click.IntRange(1, 256), help="Jobs in flight at once.")
@what_runs
@click.option(
    "--shard", callback=_shard, metavar="K/N", help="Only shard K of N (stable split by job name)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Ignore the cache and existing projects: generate everything again.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Compile and plan: each job's cost of new generations; make no provider call.",
)
@click.option(
    "--max-cost",
    type=FiniteFloat(min=0),
    metavar="USD",
    help="Do not start jobs whose new generations would exceed this budget.",
)
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False), help="Write a JSON report here."
)
@click.option(
    "--junit", "junit_path", type=click.Path(dir_okay=False), help="Write a JUnit XML report here."
)
@click.option("--fail-fast", is_flag=True, help="Start no new job after a failure.")
@click.option(
    "--yes", is_flag=True, help="Initialise an empty (0-byte) database file without asking."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("-v", "--verbose", is_flag=True, help="Log provider calls and tracebacks.")
@config_options
@pass_app
def run(
    app: App,
    paths: tuple[str, ...],
    concurrency: int | None,
    provider: str | None,
    until: str | None,
    select: tuple[str, ...],
    shard: tuple[int, int] | None,
    force: bool,
    dry_run: bool,
    max_cost: float | None,
    report_path: str | None,
    junit_path: str | None,
    fail_fast: bool,
    yes: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run jobs (files, folders or globs; default: jobs/)."""
    from vidpipe.batch.runner import RunOptions, run_batch
    from vidpipe.batch.signals import stop_on_signals
    from vidpipe.outputs.report import unwritable, write_json, write_junit

    if verbose:
        _log_calls()
    for flag, target in (("--report", report_path), ("--junit", junit_path)):
        problem = unwritable(app.cwd / target) if target else ""
        if problem:
            raise click.UsageError(f"{flag} {target}: {problem}; nothing was run")
    config = app.config()
    options = RunOptions(
        paths=paths,
        concurrency=concurrency,
        provider=provider,
        until=until,
        select=select,
        shard=shard,
        force=force,
        dry_run=dry_run,
        max_cost=max_cost,
        fail_fast=fail_fast,
        quiet=quiet,
    )
    with stop_on_signals() as stopper:
        result = run_batch(
            config, options, cwd=app.cwd, stopper=stopper, on_empty=_empty_database(yes)
        )
    report = result.report()
    exit_code = result.exit_code
    targets = [("--report", report_path, write_json), ("--junit", junit_path, write_junit)]
    recorded = "the batch ran and is recorded: `vidpipe report` shows it"
    if not write_reports(app.cwd, report, targets, recorded):
        exit_code = exit_code or 1
    _summary(report, quiet=quiet, dry_run=dry_run)
    sys.exit(exit_code)


def _empty_database(yes: bool) -> Callable[[Path], bool]:
    """What to do with an empty (0-byte) database file: --yes goes on, a terminal asks,
    anything else (CI, a pipe) is warned that the cache is empty and goes on."""

    def decide(path: Path) -> bool:
        if yes:
            return True
        if sys.stdin.isatty() and sys.stderr.isatty():
            return click.confirm(
                f"{path} is empty (0 bytes): its cache is gone and every generation will be "
                "made, and paid for, again. Start an empty cache?",
                err=True,
            )
        from vidpipe.store.db import warn_empty

        return warn_empty(path)

    return decide


def _summary(report: dict[str, Any], quiet: bool, dry_run: bool = False) -> None:
    if not quiet:
        for job in report["jobs"]:
            extra = job["output"] or job["error"] or ""
            if job["status"] == "planned":
                click.echo(f"{'planned':<15} {job['name']:<30} ${job['estimate_usd']:.2f} new")
                continue
            click.echo(
                f"{job['status']:<15} {job['name']:<30} calls {job['provider_calls']:>3} new, "
                f"{job['cached_calls']:>3} cached  ${job['cost_usd']:.2f}  {extra}"
            )
    t = report["totals"]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(t["by_status"].items()))
    jobs = f"{t['jobs']} job{'s' if t['jobs'] != 1 else ''}: {counts or 'none'}"
    if dry_run:
        planned = sum(j["estimate_usd"] for j in report["jobs"] if j["status"] == "planned")
        click.echo(f"{jobs}; planned cost ${planned:.2f} of new generations (dry run)")
        return
    click.echo(
        f"{jobs}; {t['provider_calls']} provider calls, {t['cached_calls']} cached; ${t['cost_usd']:.2f}"
    )


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--provider", metavar="NAME", help="Estimate as if every job used this provider.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def estimate(app: App, paths: tuple[str, ...], provider: str | None, as_json: bool) -> None:
    """The whole price (USD) of each job, as if nothing were cached. No calls are made.

    `vidpipe plan` shows what a run would actually make and pay for.
    """
    from vidpipe.api import estimate_batch

    data = estimate_batch(app.config(), paths, provider=provider, cwd=app.cwd)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo("whole price of each job, as if nothing were cached (`vidpipe plan`: what is new)")
    for job in data["jobs"]:
        calls = job["calls"]
        click.echo(
            f"{job['name']:<30} storyboard {calls['storyboard']}, images {calls['image']:>2}, clips {calls['video']:>2}"
            f"  ${job['cost_usd']:.2f}"
            + (
                f"  (no price for {', '.join(job['unpriced_models'])})"
                if job["unpriced_models"]
                else ""
            )
        )
    click.echo(f"total: ${data['total_usd']:.2f} for {len(data['jobs'])} job(s)")


_MARKS = {"reuse": "=", "new": "+", "in flight": "~"}


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--provider", metavar="NAME", help="Plan as if every job used this provider.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a stable shape; see README).")
@config_options
@pass_app
def plan(app: App, paths: tuple[str, ...], provider: str | None, as_json: bool) -> None:
    """What a run would reuse, make and pay for, and why. No calls are made.

    Each generation is `reuse` (cached), `new` (with the reason and its price) or
    `in flight` (submitted earlier; a run polls it).
    """
    from vidpipe.api import plan_batch

    data = plan_batch(app.config(), paths, provider=provider, cwd=app.cwd)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for job in data["jobs"]:
        click.echo(f"job {job['name']} ({job['source']})")
        for step in job["generations"]:
            mark = _MARKS[step["status"]]
            price = f"${step['cost_usd']:.2f}" if step["status"] == "new" else ""
            why = "; ".join(step["reasons"])
            click.echo(
                f"  {mark} {step['node']:<22} {step['status']:<9} {price:>7}  {why}".rstrip()
            )
        stitch = job["stitch"]
        click.echo(
            f"  {_MARKS[stitch['status']]} {'stitch':<22} {stitch['status']:<9} {'':>7}  {stitch['reason']}"
        )
        counts = job["counts"]
        click.echo(
            f"  {counts['new']} new (${job['new_cost_usd']:.2f}), {counts['reuse']} reuse, "
            f"{counts['in flight']} in flight\n"
        )
    t = data["totals"]
    click.echo(
        f"total: {t['new']} new generation{'s' if t['new'] != 1 else ''} "
        f"${t['new_cost_usd']:.2f}, {t['reuse']} reused, {t['in flight']} in flight, "
        f"across {t['jobs']} job{'s' if t['jobs'] != 1 else ''}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every field and source).")
@config_options
@pass_app
def models(app: App, as_json: bool) -> None:
    """The model catalog: each model's step, limits, price and retirement.

    Built-in models plus those added or changed under `models:` in vidpipe.yaml.
    """
    from vidpipe.api import list_models

    rows = list_models(app.config())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("model", "provider", "step", "limits", "price (USD)", "status")
    table = [header] + [
        (r["id"], r["provider"], r["step"], r["limits"], r["price"], r["lifecycle"]) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
