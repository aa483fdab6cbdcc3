"""Batch reports, written: the `--report` JSON (SPEC §7), the `--junit` XML for CI test
reporters and the HTML gallery. The report itself is built by the batch runner."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.artifacts import write_atomic

if TYPE_CHECKING:
    from vidpipe.spec.config import Config


def write_json(path: Path, report: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _skipped(job: dict[str, Any]) -> bool:
    """Jobs that did not run: budget skips, dry-run plans, and jobs stopped before they
    finished without being asked to (--fail-fast, a signal). A job stopped after
    `--until` did what it was asked and passes."""
    if job["status"] in ("skipped_budget", "planned"):
        return True
    return job["status"] == "stopped" and bool(job.get("error"))


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """One <testcase> per job; failed jobs carry <failure>, jobs that did not run <skipped>."""
    jobs = report["jobs"]
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
            ET.SubElement(props, "property", name=key, value=str(job.get(key)))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="utf-8") + b"\n"
    )
    write_atomic(path, data)


# -- the HTML gallery ---------------------------------------------------------------------


def write_gallery(config: Config, html_path: Path, batch_id: str | None = None) -> tuple[Path, int]:
    """Write a self-contained HTML gallery of a batch; return (path, jobs shown).

    Styles and contact sheets are inlined (sheets as JPEG data URIs); videos are linked by
    a path relative to the page, since inlining a batch of films would make a page of
    hundreds of megabytes.
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
        if batch is None or not batch.report:
            raise NotFound(f"no {what} in the database; `vidpipe run` makes one")
        report = batch.report
        jobs = [_gallery_job(config, store, html_path, job) for job in report["jobs"]]
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
        jobs=jobs,
    )
    write_atomic(html_path, html.encode("utf-8"))
    return html_path, len(jobs)


def _gallery_job(
    config: Config, store: Any, html_path: Path, job: dict[str, Any]
) -> dict[str, Any]:
    import os

    out = dict(job)
    out.update(video=None, sheet=None, poster=None, gaps=[], video_duration=None)
    project = store.project(job["project_id"]) if job.get("project_id") else None
    if job.get("output") and job["status"] == "complete":
        video = config.root / job["output"]
        if video.is_file():
            out["video"] = Path(os.path.relpath(video, html_path.parent.resolve())).as_posix()
            sheet = video.parent / "storyboard.png"
            if sheet.is_file():
                out["sheet"] = _data_uri(sheet)
            manifest = video.parent / "manifest.json"
            if manifest.is_file():
                data = json.loads(manifest.read_text("utf-8"))
                out["gaps"] = data.get("gaps", [])
                out["video_duration"] = (data.get("output") or {}).get("duration")
                first = (data.get("scenes") or [{}])[0].get("keyframes", {}).get("start")
                if first and (config.root / first["path"]).is_file():
                    out["poster"] = _data_uri(config.root / first["path"], width=640)
    elif project is not None:
        # A failed or stopped job: show what it got to, if it has a contact sheet.
        sheet = config.artifacts_dir / project.job_name / project.id / "output" / "storyboard.png"
        if sheet.is_file():
            out["sheet"] = _data_uri(sheet)
    return out


def _data_uri(path: Path, width: int = 900) -> str:
    """A PNG as a compact JPEG data URI (contact sheets are large and photographic)."""
    import base64
    import io

    from PIL import Image

    with Image.open(path) as source:
        img = source.convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
