"""The `vidpipe` command line. It parses and prints; the work happens in domain modules.

Exit codes: 0 every selected job complete or up to date; 1 a job failed or was skipped
for budget; 2 invalid input (nothing was run); 128+N stopped by signal N.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from vidpipe import __version__
from vidpipe.errors import JobFileError, VidpipeError

if TYPE_CHECKING:
    from vidpipe.spec.config import Config

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What commands share: where we are and how to find the configuration."""

    cwd: Path = field(default_factory=Path.cwd)
    config_path: Path | None = None
    database: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> Config:
        from vidpipe.spec.config import load_config

        overrides = dict(self.overrides)
        if self.database:
            overrides["database"] = self.database
        return load_config(cwd=self.cwd, path=self.config_path, overrides=overrides)


pass_app = click.make_pass_decorator(App, ensure=True)


class FiniteFloat(click.FloatRange):
    """A float flag that refuses `nan` and `inf` (NaN passes every range check)."""

    name = "finite number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx) if value is not None else value
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def config_options(fn: F) -> F:
    """--config and --db, accepted by every command that reads the project."""

    def set_config(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(App).config_path = Path(value)
        return value

    def set_db(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(App).database = value
        return value

    fn = click.option(
        "--db",
        "database",
        metavar="URL",
        expose_value=False,
        callback=set_db,
        is_eager=True,
        help="Database URL (overrides `database` in vidpipe.yaml).",
    )(fn)
    fn = click.option(
        "--config",
        "config_path",
        metavar="PATH",
        expose_value=False,
        callback=set_config,
        is_eager=True,
        type=click.Path(dir_okay=False),
        help="vidpipe.yaml to use (default: found in . or its parents).",
    )(fn)
    return fn


class VidpipeGroup(click.Group):
    """Turns expected failures into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobFileError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            n = len(exc.problems)
            click.secho(
                f"{n} problem{'s' if n != 1 else ''} found; nothing was run.", fg="red", err=True
            )
            ctx.exit(exc.exit_code)
        except VidpipeError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=VidpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidpipe")
def cli() -> None:
    """Turn version-controlled YAML job files into multi-scene AI videos.

    \b
    Quick start:
      vidpipe init demo && cd demo
      vidpipe validate          # check job files and templates, no calls
      vidpipe run               # run every job in jobs/ (offline `local` provider)
      vidpipe list              # projects, newest first
    """


# -- init ---------------------------------------------------------------------------------


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, force: bool) -> None:
    """Scaffold a project: vidpipe.yaml, jobs/example.yaml and templates/."""
    from vidpipe.scaffold import scaffold

    written, kept = scaffold(Path(directory), force=force)
    for path in written:
        click.echo(f"created {path}")
    for path in kept:
        click.echo(f"kept    {path} (exists; --force overwrites)")
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
    from vidpipe.api import validate_batch

    plans = validate_batch(app.config(), paths, provider=provider, cwd=app.cwd)
    for plan in plans:
        job = plan.job
        providers = sorted(set(job.providers.values()))
        click.echo(
            f"ok  {job.display}: {job.name} ({job.scenes} scenes, {job.aspect_ratio}, {'/'.join(providers)})"
        )
    click.echo(f"{len(plans)} job{'s' if len(plans) != 1 else ''} valid.")


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
@click.option("--provider", metavar="NAME", help="Use this provider for every step of every job.")
@click.option(
    "--until", type=click.Choice(["storyboard", "keyframes", "clips"]), help="Stop after this step."
)
@click.option(
    "--select",
    "select",
    multiple=True,
    metavar="GLOB",
    help="Only jobs whose name matches (repeatable).",
)
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
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("-v", "--verbose", is_flag=True, help="Log provider calls.")
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
    quiet: bool,
    verbose: bool,
) -> None:
    """Run jobs (files, folders or globs; default: jobs/)."""
    from vidpipe.batch.runner import RunOptions, run_batch
    from vidpipe.batch.signals import stop_on_signals
    from vidpipe.outputs.report import write_json, write_junit

    if verbose:
        import logging

        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
        )
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
        result = run_batch(config, options, cwd=app.cwd, stopper=stopper)
    report = result.report()
    if report_path:
        write_json(app.cwd / report_path, report)
    if junit_path:
        write_junit(app.cwd / junit_path, report)
    _summary(report, quiet=quiet, dry_run=dry_run)
    sys.exit(result.exit_code)


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


@cli.command("list")
@click.option("--status", "status", metavar="S", help="Only projects with this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def list_(app: App, status: str | None, as_json: bool) -> None:
    """Projects, newest first."""
    from vidpipe.api import list_projects

    rows = list_projects(app.config(), status=status)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no projects yet; `vidpipe run` makes some")
    for row in rows:
        click.echo(
            f"{row['project_id']}  {row['status']:<16} {row['job']:<30} {row['created_at']}  {row['output'] or ''}"
        )


@cli.command()
@click.argument("job_or_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def status(app: App, job_or_id: str, as_json: bool) -> None:
    """One project: steps, scenes, clips, cost. JOB_OR_ID is a job name or a project id."""
    from vidpipe.api import project_status

    data = project_status(app.config(), job_or_id)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['job']}  {data['project_id']}  {data['status']}")
    if data["error_message"]:
        click.echo(f"error: {data['error_message']}")
    for scene in data["scenes"]:
        clip = scene["clip"] or {}
        click.echo(
            f"  scene {scene['index']:>2}  {scene['status']:<20} clip {clip.get('status') or '-':<13} {scene['description'][:60]}"
        )
    cost = data["cost"]
    click.echo(f"cost: ${cost['actual_usd']:.2f} actual, ${cost['estimate_usd']:.2f} estimated")
    if data["output"]:
        click.echo(f"output: {data['output']}")


@cli.command()
@click.argument("job_or_id")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@config_options
@pass_app
def resume(app: App, job_or_id: str, quiet: bool) -> None:
    """Continue a failed, stopped or interrupted project."""
    from vidpipe.api import resume_project
    from vidpipe.batch.signals import stop_on_signals

    with stop_on_signals() as stopper:
        outcome = resume_project(app.config(), job_or_id, cwd=app.cwd, quiet=quiet, stopper=stopper)
    click.echo(
        f"{outcome.status}: {outcome.name} {outcome.project_id} {outcome.output or outcome.error or ''}"
    )
    sys.exit(
        0
        if outcome.status in ("complete", "stopped") and not stopper.signum
        else (128 + stopper.signum if stopper.signum else 1)
    )


@cli.command()
@click.argument("job_or_id")
@click.option(
    "--crossfade",
    type=FiniteFloat(0, 10),
    metavar="S",
    help="Try another crossfade: writes output/preview-crossfade-S.mp4, not final.mp4.",
)
@config_options
@pass_app
def stitch(app: App, job_or_id: str, crossfade: float | None) -> None:
    """Re-stitch a project from its existing clips. No provider calls.

    final.mp4 always follows the job file; --crossfade writes a preview beside it.
    """
    from vidpipe.api import restitch

    click.echo(restitch(app.config(), job_or_id, cwd=app.cwd, crossfade=crossfade))


@cli.command()
@click.option(
    "--html",
    "html_path",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Write the gallery here.",
)
@click.option(
    "--batch", "batch_id", metavar="ID", help="Which batch (default: the last finished one)."
)
@config_options
@pass_app
def report(app: App, html_path: str, batch_id: str | None) -> None:
    """A self-contained HTML gallery of a batch: contact sheets, players, costs, errors."""
    from vidpipe.api import gallery

    path, count = gallery(app.config(), (app.cwd / html_path).resolve(), batch_id)
    click.echo(f"wrote {path} ({count} job{'s' if count != 1 else ''})")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="vidpipe")
    raise SystemExit(0)  # pragma: no cover - click exits itself
