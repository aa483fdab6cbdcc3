"""Batch reports: the `--report` JSON (SPEC §7) and the `--junit` XML for CI test reporters."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import write_atomic

if TYPE_CHECKING:
    from .batch import BatchResult
    from .config import Config


def batch_report(config: Config, result: BatchResult, wall_s: float | None = None) -> dict[str, Any]:
    """The report of a batch: one entry per job, and totals."""
    jobs = [
        {
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
        for o in result.outcomes
    ]
    totals = result.totals()
    if wall_s is not None:
        totals["duration_s"] = round(wall_s, 3)
    return {"batch_id": result.batch_id, "jobs": jobs, "totals": totals}


def write_json(path: Path, report: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """One <testcase> per job; failed jobs carry <failure>, budget skips <skipped>."""
    jobs = report["jobs"]
    suite = ET.Element(
        "testsuite",
        name="vidpipe",
        tests=str(len(jobs)),
        failures=str(sum(1 for j in jobs if j["status"] == "failed")),
        errors="0",
        skipped=str(sum(1 for j in jobs if j["status"] in ("skipped_budget", "planned"))),
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
            failure = ET.SubElement(case, "failure", message=(job["error"] or "failed").splitlines()[0][:500], type="JobFailed")
            failure.text = job["error"] or "failed"
        elif job["status"] in ("skipped_budget", "planned"):
            ET.SubElement(case, "skipped", message=job["error"] or job["status"])
        props = ET.SubElement(case, "properties")
        for key in ("status", "project_id", "output", "cost_usd", "provider_calls", "cached_calls"):
            ET.SubElement(props, "property", name=key, value=str(job.get(key)))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="utf-8") + b"\n"
    write_atomic(path, data)
