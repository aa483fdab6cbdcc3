"""Commands about what has been made: list, batches, costs, status, resume, keep, stitch,
report, gc."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from vidpipe.cli.base import (
    App,
    FiniteFloat,
    _log_calls,
    _project_states,
    _size,
    _usd,
    cli,
    config_options,
    pass_app,
)

if TYPE_CHECKING:
    pass


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
    """Batches (each `vidpipe run` or `submit`), newest first: jobs, calls, cost, selection.

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
        refs = [
            r for part in (*scene["keyframes"].values(), clip) for r in part.get("references") or []
        ]
        if scene.get("assets") or refs:
            images = ", ".join(dict.fromkeys(f"{r['path']} ({r['sha256'][:12]})" for r in refs))
            click.echo(
                f"            assets: {', '.join(scene.get('assets') or []) or '-'}; sent: {images or '-'}"
            )
        for warning in scene.get("warnings") or []:
            click.echo(f"            warning: {warning}")
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
    click.echo(
        f"wrote {shown.address or shown.path} ({shown.jobs} job{'s' if shown.jobs != 1 else ''})"
    )


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
    what = "local file" if "bucket" in data else "object"
    click.echo(
        f"{verb} {n} {what}{'s' if n != 1 else ''}, {_size(data['bytes_freed'])} "
        f"{'would be ' if dry_run else ''}freed; {data['kept']} kept"
    )
    for note in data.get("notes", []):
        click.echo(note)
