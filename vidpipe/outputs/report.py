"""Batch reports, written: the `--report` JSON (SPEC §7), the `--junit` XML for CI test
reporters and the HTML gallery. The report itself is built by the batch runner."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vidpipe.artifacts import write_atomic
from vidpipe.redact import redact_data

if TYPE_CHECKING:
    from vidpipe.spec.config import Config


def unwritable(path: Path) -> str:
    """Why a report cannot be written at `path` ('' if it can), checked before a batch runs."""
    import os

    if path.is_dir():
        return "is a folder; give a file name"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # missing folders are made when the report is written
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "is not writable"
    return ""


def write_json(path: Path, report: dict[str, Any]) -> None:
    text = json.dumps(redact_data(report), indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text.encode("utf-8", "backslashreplace"))


def _skipped(job: dict[str, Any]) -> bool:
    """Jobs that did not run: budget skips, dry-run plans, and jobs stopped before they
    finished without being asked to (--fail-fast, a signal). A job stopped after
    `--until` did what it was asked and passes."""
    if job["status"] in ("skipped_budget", "planned"):
        return True
    return job["status"] == "stopped" and bool(job.get("error"))


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """One <testcase> per job; failed jobs carry <failure>, jobs that did not run <skipped>."""
    jobs = redact_data(report["jobs"])
    suite = ET.Element(
        "testsuite",
        name="vidpipe",
        tests=str(len(jobs)),
        failures=str(sum(1 for j in jobs if j["status"] == "failed")),
        errors="0",
        skipped=str(sum(1 for j in jobs if _skipped(j))),
        time=f"{report['totals'].get('duration_s', 0.0):.3f}",
    )
    for job in jobs:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"vidpipe.{(job.get('source') or 'jobs').rsplit('.', 1)[0].replace('/', '.')}",
            name=job["name"],
            time=f"{job['duration_s']:.3f}",
        )
        if job["status"] == "failed":
            failure = ET.SubElement(
                case,
                "failure",
                message=(job["error"] or "failed").splitlines()[0][:500],
                type="JobFailed",
            )
            failure.text = job["error"] or "failed"
        elif _skipped(job):
            ET.SubElement(case, "skipped", message=job["error"] or job["status"])
        props = ET.SubElement(case, "properties")
        for key in ("status", "project_id", "output", "cost_usd", "provider_calls", "cached_calls"):
            # A job without a project or an output has no such property (never "None").
            if job.get(key) is not None:
                ET.SubElement(props, "property", name=key, value=str(job[key]))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="utf-8") + b"\n"
    )
    write_atomic(path, data)


# -- the HTML gallery ---------------------------------------------------------------------


class Gallery(NamedTuple):
    """What `vidpipe report` wrote: the page, how many jobs, and which batch it shows."""

    path: Path
    jobs: int
    batch_id: str
    args: dict[str, Any]
    #: Where the page is: its path, or in bucket mode its URL in the bucket.
    address: str = ""


def write_gallery(
    config: Config, html_path: Path, batch_id: str | None = None, *, compare: str | None = None
) -> Gallery:
    """Write a self-contained HTML gallery of a batch.

    Styles and contact sheets are inlined (sheets as JPEG data URIs); videos are linked by
    a path relative to the page, since inlining a batch of films would make a page of
    hundreds of megabytes. With ``compare="previous"`` each job's card also shows the
    job's previous version, what changed between the two and both costs.
    """
    from importlib import resources

    import jinja2

    from vidpipe.errors import NotFound
    from vidpipe.store import existing

    what = f"batch {batch_id!r}" if batch_id else "finished batch"
    store = existing(config.database)  # None when there is no database: do not create one
    if store is None:
        raise NotFound(f"no {what} yet (no database); `vidpipe run` makes one")
    try:
        batch = store.batch(batch_id)
        if batch is not None and not batch.report:
            raise NotFound(
                f"{what} has not finished: its jobs are still running or queued (or its "
                "runner was stopped before the end); `vidpipe batches` shows how far it got"
            )
        if batch is None or not batch.report:
            raise NotFound(f"no {what} in the database; `vidpipe run` makes one")
        report = batch.report
        jobs = [_gallery_job(config, store, html_path, job) for job in report["jobs"]]
        if compare == "previous":
            for job in jobs:
                job["previous"], job["changes"] = _previous_version(config, store, html_path, job)
    finally:
        store.close()
    source = resources.files("vidpipe.outputs").joinpath("gallery.html.j2").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    html = env.from_string(source).render(
        batch={
            "id": batch.id,
            "started": batch.started_at.isoformat(timespec="seconds") + "Z",
            "finished": batch.finished_at.isoformat(timespec="seconds") + "Z"
            if batch.finished_at
            else None,
        },
        totals=report["totals"],
        jobs=redact_data(jobs),
        compare=compare,
    )
    write_atomic(html_path, html.encode("utf-8"))
    shown = str(html_path)
    if config.objects.remote and html_path.is_relative_to(config.artifacts_dir.resolve()):
        config.objects.publish(html_path)  # beside the outputs its links point to
        shown = config.address(html_path)
    return Gallery(html_path, len(jobs), batch.id, dict(batch.args or {}), shown)


def _previous_version(
    config: Config, store: Any, html_path: Path, job: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The job's previous project as the gallery shows it, and what changed since."""
    from vidpipe.outputs.compare import recorded_changes

    current = store.project(job["project_id"]) if job.get("project_id") else None
    previous = store.previous_project(current) if current is not None else None
    if current is None or previous is None:
        return None, []
    changes = recorded_changes(
        previous, current, store.scenes(previous.id), store.scenes(current.id)
    )
    output = config.artifacts_dir / previous.output_path if previous.output_path else None
    shown = _gallery_job(
        config,
        store,
        html_path,
        {
            "project_id": previous.id,
            "status": previous.status,
            "output": config.address(output) if output is not None else None,
        },
    )
    shown.update(
        created=previous.created_at.isoformat(timespec="seconds") + "Z",
        cost_usd=round(previous.cost_actual_usd or 0.0, 6),
    )
    current_cost = round(current.cost_actual_usd or 0.0, 6)
    job["project_cost_usd"] = current_cost
    return shown, changes


def _gallery_job(
    config: Config, store: Any, html_path: Path, job: dict[str, Any]
) -> dict[str, Any]:
    import os

    out = dict(job)
    out.update(
        video=None, sheet=None, poster=None, gaps=[], video_duration=None, frames=[], assets=[]
    )
    project = store.project(job["project_id"]) if job.get("project_id") else None
    if config.objects.remote and job.get("output") and job["status"] == "complete":
        # Bucket mode: the page lives beside the outputs in the bucket (its videos linked
        # by the same relative paths); the manifest and sheet are fetched to be inlined.
        video = _bucket_outputs(config, project)
        if video is not None:
            out["video"] = Path(os.path.relpath(video, html_path.parent.resolve())).as_posix()
            out["sheet"] = _data_uri(video.parent / "storyboard.png")
            data = _manifest(video.parent / "manifest.json")
            out["gaps"] = data.get("gaps", [])
            out["assets"] = _assets_by_scene(data.get("scenes") or [])
            out["video_duration"] = (data.get("output") or {}).get("duration")
    elif job.get("output") and job["status"] == "complete":
        video = config.root / job["output"]
        if video.is_file():
            out["video"] = Path(os.path.relpath(video, html_path.parent.resolve())).as_posix()
            out["sheet"] = _data_uri(video.parent / "storyboard.png")
            data = _manifest(video.parent / "manifest.json")
            out["gaps"] = data.get("gaps", [])
            out["assets"] = _assets_by_scene(data.get("scenes") or [])
            out["video_duration"] = (data.get("output") or {}).get("duration")
            try:
                first = data["scenes"][0]["keyframes"]["start"]["path"]
            except (KeyError, IndexError, TypeError):
                first = None
            if isinstance(first, str):
                out["poster"] = _data_uri(config.root / first, width=640)
    elif project is not None:
        # A failed or stopped job: show what it got to, if it has a contact sheet.
        sheet = config.artifacts_dir / project.job_name / project.id / "output" / "storyboard.png"
        out["sheet"] = _data_uri(sheet)
        out["frames"] = _review_frames(config, store, project)
    return out


def _bucket_outputs(config: Config, project: Any) -> Path | None:
    """Bucket mode: a finished project's final.mp4 path (under scratch, as in the bucket)
    when the bucket holds it, with its manifest and contact sheet fetched."""
    from vidpipe.artifacts import Layout

    if project is None or not project.output_path:
        return None
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    if config.objects.published_size(layout.output) is None:
        return None
    config.objects.pull(layout.manifest, project.manifest_sha256)
    config.objects.pull(layout.contact_sheet, project.sheet_sha256)
    return layout.output


def _assets_by_scene(scenes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scene that shows assets: their names, the reference images sent, warnings."""
    out = []
    for scene in scenes:
        sent = [
            ref
            for part in (*scene.get("keyframes", {}).values(), scene.get("clip") or {})
            for ref in part.get("references") or []
        ]
        if scene.get("assets") or sent:
            out.append(
                {
                    "index": scene.get("index"),
                    "assets": scene.get("assets") or [],
                    "images": sorted({r["path"] for r in sent}),
                    "warnings": scene.get("warnings") or [],
                }
            )
    return out


def _review_frames(config: Config, store: Any, project: Any) -> list[dict[str, Any]]:
    """The keyframes and prompts of an unfinished project, scene by scene: the review card
    of a project stopped before its clips were paid for."""
    from vidpipe.artifacts import Layout, verified

    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    frames = []
    for scene in store.scenes(project.id):
        item: dict[str, Any] = {
            "index": scene.index,
            "description": scene.description,
            "prompts": dict(scene.prompts or {}),
        }
        for frame in scene.keyframes:
            path = layout.load(frame.path)
            config.objects.restore(path, frame.sha256)  # bucket mode: another machine's
            if path.is_file():
                item[frame.kind] = _data_uri(path, width=320)
                item[f"{frame.kind}_path"] = config.display(path)
                item[f"{frame.kind}_source"] = frame.source
                item[f"{frame.kind}_edited"] = not verified(path, frame.sha256)
        if "start" in item or "end" in item:
            frames.append(item)
    return frames


def _manifest(path: Path) -> dict[str, Any]:
    """A job's manifest, or {} when it is missing or damaged (the gallery shows the rest)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _data_uri(path: Path, width: int = 900) -> str | None:
    """A PNG as a compact JPEG data URI (contact sheets are large and photographic).

    None when the file is missing or does not decode (a truncated sheet is left out, not
    a reason to fail the whole gallery).
    """
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(path) as source:
            img = source.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
