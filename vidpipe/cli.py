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
                click.echo(_safe(str(problem)), err=True)
            n = len(exc.problems)
            click.secho(
                f"{n} problem{'s' if n != 1 else ''} found; nothing was run.", fg="red", err=True
            )
            ctx.exit(exc.exit_code)
        except VidpipeError as exc:
            click.secho(f"Error: {_safe(str(exc))}", fg="red", err=True)
            ctx.exit(exc.exit_code)


def _safe(text: str) -> str:
    """A message as printed: credentials masked, odd bytes of file names shown as escapes."""
    from vidpipe.redact import redact
    from vidpipe.spec.yamlsource import printable

    return printable(redact(text))


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
    from vidpipe.api import validate_batch

    compiled = validate_batch(app.config(), paths, provider=provider, cwd=app.cwd)
    for message in compiled.warnings:
        click.secho(message, fg="yellow", err=True)
    for plan in compiled.plans:
        job = plan.job
        providers = sorted(set(job.providers.values()))
        click.echo(
            f"ok  {job.display}: {job.name} ({job.scenes} scenes, {job.aspect_ratio}, {'/'.join(providers)})"
        )
    n = len(compiled.plans)
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
    # Each file is written on its own: one that cannot be written does not lose the others.
    for flag, target, write in (
        ("--report", report_path, write_json),
        ("--junit", junit_path, write_junit),
    ):
        if not target:
            continue
        try:
            write(app.cwd / target, report)
        except OSError as exc:
            click.secho(
                f"Error: {flag} {target} could not be written ({exc.strerror or exc}); "
                "the batch ran and is recorded: `vidpipe report` shows it",
                fg="red",
                err=True,
            )
            exit_code = exit_code or 1
    _summary(report, quiet=quiet, dry_run=dry_run)
    sys.exit(exit_code)


def _log_calls() -> None:
    """-v: log calls and tracebacks to stderr, every line through the credential redaction."""
    import logging

    from vidpipe.redact import RedactingFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("vidpipe-stderr")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger("vidpipe")
    for old in [h for h in root.handlers if h.get_name() == "vidpipe-stderr"]:
        root.removeHandler(old)  # one per process, however many runs it makes
    root.addHandler(handler)
    root.setLevel(logging.INFO)


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


def _usd(amount: float) -> str:
    return f"${amount:.2f}"


def _project_states() -> list[str]:
    from vidpipe.engine.states import ProjectState

    return [state.value for state in ProjectState]


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


@cli.command("list")
@click.option(
    "--status",
    "status",
    type=click.Choice(_project_states()),
    metavar="S",
    help="Only projects in this state: " + ", ".join(_project_states()) + ".",
)
@click.option(
    "--all", "all_versions", is_flag=True, help="Every project, not just each job's newest."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def list_(app: App, status: str | None, all_versions: bool, as_json: bool) -> None:
    """Jobs and their newest project, newest first (every project with --all)."""
    from vidpipe.api import list_projects

    rows = list_projects(app.config(), status=status, all_versions=all_versions)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(
            "no projects yet; `vidpipe run` makes some"
            if status is None
            else f"no {status} projects"
        )
        return
    click.echo(f"{'project':<22}  {'status':<16} {'job':<30} {'created':<20}  {'cost':>7}  output")
    for row in rows:
        versions = "" if all_versions or row["versions"] == 1 else f"  ({row['versions']} versions)"
        click.echo(
            f"{row['project_id']:<22}  {row['status']:<16} {row['job']:<30} {row['created_at']:<20}  "
            f"{_usd(row['cost_usd']):>7}  {row['output'] or ''}{versions}"
        )


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def batches(app: App, limit: int | None, as_json: bool) -> None:
    """Batches (each `vidpipe run`), newest first: jobs, calls, cost, selection.

    `vidpipe report --batch ID` shows one of them.
    """
    from vidpipe.history import list_batches

    rows = list_batches(app.config(), limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no batches yet; `vidpipe run` makes one")
        return
    for row in rows:
        jobs = ", ".join(f"{n} {s}" for s, n in sorted(row["by_status"].items())) or "no jobs"
        took = f"{row['duration_s']:.1f}s" if row["duration_s"] is not None else row["status"]
        click.echo(
            f"{row['batch_id']}  {row['started_at']}  {took:>8}  {jobs:<28} "
            f"calls {row['provider_calls']:>3} new, {row['cached_calls']:>3} cached  "
            f"${row['cost_usd']:.2f}  {row['selection']}"
        )


@cli.command()
@click.option(
    "--by",
    type=click.Choice(["day", "job", "model", "batch"]),
    default="day",
    show_default=True,
    help="Group spend by this.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="DATE",
    help="Only calls from this day on (YYYY-MM-DD, UTC).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def costs(app: App, by: str, since: Any, as_json: bool) -> None:
    """Actual spend from the recorded provider calls; cache hits counted beside, at $0."""
    from vidpipe.history import costs as add_up_costs

    data = add_up_costs(app.config(), by=by, since=since.date() if since else None)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    width = max([len(by), 5, *(len(str(r[by])) for r in data["rows"])])
    click.echo(f"{by:<{width}}  {'calls':>6}  {'cached':>6}  {'cost':>9}")
    for row in data["rows"]:
        click.echo(
            f"{row[by]:<{width}}  {row['calls']:>6}  {row['cached_calls']:>6}  {_usd(row['cost_usd']):>9}"
        )
    total = data["total"]
    click.echo(
        f"{'total':<{width}}  {total['calls']:>6}  {total['cached_calls']:>6}  {_usd(total['cost_usd']):>9}"
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
    click.echo(
        "scenes (keyframes and clip: generated, cached = reused from the cache, "
        "inherited = the previous scene's end frame, override = the job's image):"
    )
    for scene in data["scenes"]:
        frames = scene["keyframes"]
        clip = scene["clip"] or {}
        clip_text = "-"
        if clip:
            clip_text = (
                clip["status"] if clip["status"] != "complete" else clip.get("source") or "-"
            )
        click.echo(
            f"  scene {scene['index']:>2}  {scene['status']:<20} "
            f"start {(frames.get('start') or {}).get('source', '-'):<9}  "
            f"end {(frames.get('end') or {}).get('source', '-'):<9}  "
            f"clip {clip_text:<12}  {scene['description'][:50]}"
        )
    if data["runs"]:
        click.echo("runs:")
    for run in data["runs"]:
        click.echo(
            f"  {run['started_at']}  {run['status']:<9} calls {run['provider_calls']:>3} new, "
            f"{run['cached_calls']:>3} cached  ${run['cost_usd']:.2f}"
            + (f"  batch {run['batch_id']}" if run["batch_id"] else "")
        )
    cost = data["cost"]
    click.echo(f"cost: ${cost['actual_usd']:.2f} actual, ${cost['estimate_usd']:.2f} estimated")
    if data["output"]:
        click.echo(f"output: {data['output']}")


@cli.command()
@click.argument("job_or_id")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("-v", "--verbose", is_flag=True, help="Log provider calls.")
@config_options
@pass_app
def resume(app: App, job_or_id: str, quiet: bool, verbose: bool) -> None:
    """Continue a failed, stopped or interrupted project."""
    if verbose:
        _log_calls()
    from vidpipe.api import resume_project
    from vidpipe.batch.signals import stop_on_signals

    with stop_on_signals() as stopper:
        outcome = resume_project(app.config(), job_or_id, cwd=app.cwd, quiet=quiet, stopper=stopper)
    click.echo(
        f"{outcome.status}: {outcome.name} {outcome.project_id} {outcome.output or outcome.error or ''}"
    )
    done = outcome.status == "complete" or (outcome.status == "stopped" and not outcome.error)
    sys.exit(128 + stopper.signum if stopper.signum else (0 if done else 1))


@cli.command()
@click.argument("job_or_id")
@click.argument("scene", type=click.IntRange(min=0))
@click.argument("kind", type=click.Choice(["start", "end"]))
@config_options
@pass_app
def keep(app: App, job_or_id: str, scene: int, kind: str) -> None:
    """Adopt a keyframe edited by hand: SCENE's start or end frame is built on as it is now.

    Its clip (and, for an end frame, the next scene) is made from the edited file on the
    next `vidpipe resume`. JOB_OR_ID is a job name or a project id.
    """
    from vidpipe.api import keep_frame

    kept = keep_frame(app.config(), job_or_id, scene, kind)
    click.echo(
        f"kept {kept['path']} as scene {scene}'s {kind} frame of {kept['project_id']}; "
        f"`vidpipe resume {kept['job']}` builds on it"
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
    type=click.Path(dir_okay=False),
    help="Write the gallery here (default: report.html in the artifacts folder).",
)
@click.option(
    "--batch", "batch_id", metavar="ID", help="Which batch (default: the last finished one)."
)
@click.option(
    "--compare",
    type=click.Choice(["previous"]),
    help="Show each job's previous version beside this one, with what changed.",
)
@config_options
@pass_app
def report(app: App, html_path: str | None, batch_id: str | None, compare: str | None) -> None:
    """A self-contained HTML gallery of a batch: contact sheets, players, costs, errors."""
    from vidpipe.api import gallery
    from vidpipe.history import narrowed, selection

    config = app.config()
    target = (app.cwd / html_path) if html_path else config.artifacts_dir / "report.html"
    shown = gallery(config, target.resolve(), batch_id, compare=compare)
    if batch_id is None:
        only = f" ({selection(shown.args)})" if narrowed(shown.args) else ""
        click.echo(
            f"showing batch {shown.batch_id}, the last finished one{only}; "
            "`vidpipe batches` lists the others, `--batch ID` picks one"
        )
    click.echo(f"wrote {shown.path} ({shown.jobs} job{'s' if shown.jobs != 1 else ''})")


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    default=7,
    show_default=True,
    metavar="DAYS",
    help="Keep results of generations made this recently even if no project uses them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
@pass_app
def gc(app: App, dry_run: bool, keep_days: float, as_json: bool) -> None:
    """Free stored generation results that no project and no recent generation refers to."""
    from vidpipe.api import collect_garbage

    data = collect_garbage(app.config(), dry_run=dry_run, keep_days=keep_days)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for path in data["objects"]:
        click.echo(f"{verb} {path}")
    n = len(data["objects"])
    click.echo(
        f"{verb} {n} object{'s' if n != 1 else ''}, {_size(data['bytes_freed'])} "
        f"{'would be ' if dry_run else ''}freed; {data['kept']} kept"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="vidpipe")
    raise SystemExit(0)  # pragma: no cover - click exits itself
