"""Schema migrations, from an empty database and from the schema vidpipe 0.1.0 wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidpipe.store import Store
from vidpipe.store.migrations import MIGRATIONS
from vidpipe.store.models import SCHEMA_VERSION

V1_SCHEMA = Path(__file__).parent / "data" / "schema_v1.sql"


def columns(project, table: str) -> list[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(project.store_url)
    try:
        return [c["name"] for c in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def indexes(project, table: str) -> list[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(project.store_url)
    try:
        return [i["name"] for i in inspect(engine).get_indexes(table)]
    finally:
        engine.dispose()


def version(project) -> int:
    rows = project.sql("select value from vidpipe_meta where key = 'schema_version'")
    return int(rows[0][0])


@pytest.mark.both_databases
def test_an_empty_database_gets_the_current_schema(project) -> None:
    Store(project.store_url).close()
    assert version(project) == SCHEMA_VERSION == MIGRATIONS[-1][0]
    project_columns = columns(project, "projects")
    assert {"plan_digest", "settings", "node_inputs"} <= set(project_columns)
    assert not {"input_hash", "job"} & set(project_columns)


@pytest.mark.both_databases
def test_a_version_1_database_is_migrated_keeping_its_projects(project) -> None:
    script = V1_SCHEMA.read_text()
    if project.backend == "postgresql":
        # What vidpipe 0.1.0's create_all wrote on PostgreSQL for the same tables.
        script = script.replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE")
        script = script.replace("\tid INTEGER NOT NULL", "\tid SERIAL NOT NULL")
    for statement in script.split(";"):
        if statement.strip() and not all(
            line.startswith("--") for line in statement.strip().splitlines()
        ):
            project.sql(statement)
    project.sql("insert into vidpipe_meta values ('schema_version', '1')")
    project.sql(
        "insert into projects (id, job_name, source_path, input_hash, status, created_at, "
        "updated_at, job, providers, models, cost_estimate_usd, cost_actual_usd, timings) "
        "values ('20250101-000000-abcdef', 'old', 'jobs/old.yaml', :digest, 'complete', "
        "'2025-01-01 00:00:00', '2025-01-01 00:00:00', :job, '{}', '{}', 0, 0, '{}')",
        digest="a" * 64,
        job=json.dumps({"stitch": {"crossfade": 0.5}}),
    )
    assert "input_hash" in columns(project, "projects")

    Store(project.store_url).close()
    assert version(project) == SCHEMA_VERSION
    ((digest, settings, node_inputs),) = project.sql(
        "select plan_digest, settings, node_inputs from projects"
    )
    if isinstance(settings, str):  # SQLite hands JSON back as text
        settings = json.loads(settings)
    assert (digest, settings, node_inputs) == ("a" * 64, {"stitch": {"crossfade": 0.5}}, None)
    names = indexes(project, "projects")
    assert "ix_projects_plan_digest" in names and "ix_projects_input_hash" not in names

    # The migrated database works: the old project is listed, and a run adds a new one.
    listed = json.loads(project.cli("list", "--json").stdout)
    assert [p["job"] for p in listed] == ["old"]
    project.job("fresh", "prompt: A lighthouse at dawn.\nscenes: 1\n")
    result = project.cli("run", "-q")
    assert result.exit_code == 0, result.output
    assert {p["job"] for p in json.loads(project.cli("list", "--json").stdout)} == {"old", "fresh"}


@pytest.mark.both_databases
def test_a_version_5_database_gets_the_work_queue(project) -> None:
    # A schema-5 database with a finished run: the current schema without the queue.
    project.job("old", "prompt: A lighthouse at dawn.\nscenes: 1\n")
    assert project.cli("run", "-q").exit_code == 0
    fresh = columns(project, "batch_items")
    fresh_indexes = sorted(indexes(project, "batch_items"))
    project.sql("drop table batch_items")
    project.sql("update vidpipe_meta set value = '5' where key = 'schema_version'")

    # `list` reads it (the standard-library reader only opens its own version; the store
    # migrates), and afterwards the reader serves the migrated file.
    listed = project.cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [p["job"] for p in json.loads(listed.stdout)] == ["old"]
    assert version(project) == SCHEMA_VERSION == 6
    assert columns(project, "batch_items") == fresh
    assert sorted(indexes(project, "batch_items")) == fresh_indexes
    assert project.cli("status", "old").exit_code == 0

    # The queue works on the migrated database, and the old batch is still listed.
    submitted = project.cli("submit", "-q")
    assert submitted.exit_code == 0, submitted.output
    worked = project.cli("worker", "--drain", "-q")
    assert worked.exit_code == 0, worked.output
    batches = json.loads(project.cli("batches", "--json").stdout)
    assert [b["status"] for b in batches] == ["complete", "complete"]
    assert batches[0]["selection"] == "submit jobs/" and batches[0]["provider_calls"] == 0
