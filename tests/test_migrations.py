"""Schema migrations, from an empty database and from the schema vidpipe 0.1.0 wrote."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from vidpipe.store import Store
from vidpipe.store.migrations import MIGRATIONS
from vidpipe.store.models import SCHEMA_VERSION

V1_SCHEMA = Path(__file__).parent / "data" / "schema_v1.sql"


def columns(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute(f"pragma table_info({table})")]


def version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("select value from vidpipe_meta where key = 'schema_version'").fetchone()
    return int(row[0])


def test_an_empty_database_gets_the_current_schema(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    Store(f"sqlite:///{db}").close()
    assert version(db) == SCHEMA_VERSION == MIGRATIONS[-1][0]
    project_columns = columns(db, "projects")
    assert {"plan_digest", "settings", "node_inputs"} <= set(project_columns)
    assert not {"input_hash", "job"} & set(project_columns)


def test_a_version_1_database_is_migrated_keeping_its_projects(project) -> None:
    db = project.root / "vidpipe.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(V1_SCHEMA.read_text())
        conn.execute("insert into vidpipe_meta values ('schema_version', '1')")
        conn.execute(
            "insert into projects (id, job_name, source_path, input_hash, status, created_at, "
            "updated_at, job, providers, models, cost_estimate_usd, cost_actual_usd, timings) "
            "values ('20250101-000000-abcdef', 'old', 'jobs/old.yaml', ?, 'complete', "
            "'2025-01-01 00:00:00', '2025-01-01 00:00:00', ?, '{}', '{}', 0, 0, '{}')",
            ("a" * 64, json.dumps({"stitch": {"crossfade": 0.5}})),
        )
    assert "input_hash" in columns(db, "projects")

    Store(f"sqlite:///{db}").close()
    assert version(db) == SCHEMA_VERSION
    with sqlite3.connect(db) as conn:
        row = conn.execute("select plan_digest, settings, node_inputs from projects").fetchone()
        indexes = [r[1] for r in conn.execute("pragma index_list(projects)")]
    assert row == ("a" * 64, json.dumps({"stitch": {"crossfade": 0.5}}), None)
    assert "ix_projects_plan_digest" in indexes and "ix_projects_input_hash" not in indexes

    # The migrated database works: the old project is listed, and a run adds a new one.
    listed = json.loads(project.cli("list", "--json").stdout)
    assert [p["job"] for p in listed] == ["old"]
    project.job("fresh", "prompt: A lighthouse at dawn.\nscenes: 1\n")
    result = project.cli("run", "-q")
    assert result.exit_code == 0, result.output
    assert {p["job"] for p in json.loads(project.cli("list", "--json").stdout)} == {"old", "fresh"}
