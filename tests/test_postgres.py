"""PostgreSQL as the database: what a user sees when the server is not there, refuses the
login or lacks the database, and the read commands on a PostgreSQL project.

The store, lease, claim, batch, crash and migration tests run on both databases (the
`both_databases` marker); these are the PostgreSQL-only behaviours.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from datetime import datetime

import pytest

from vidpipe.store import Store
from vidpipe.testing.fakes import SCRIPT

FAKE = "provider: fake\nprompt: A kite over a hill. It lands.\nscenes: 2\nclip_duration: 1\n"


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_sentence(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_an_unreachable_server_is_named_with_what_to_do_and_the_password_masked(project, fake):
    port = closed_port()
    url = f"postgresql+psycopg://studio:hunter2-long@127.0.0.1:{port}/vidpipe"
    for args in (("list", "--db", url), ("run", "--db", url)):
        project.job("kite", FAKE)
        result = project.cli(*args)
        assert result.exit_code == 2, result.output
        line = one_sentence(result.output)
        assert f"cannot reach the database server at 127.0.0.1:{port}" in line
        assert "start the server, or fix the host and port" in line
        assert "hunter2-long" not in line and "studio:***@" in line


def test_a_refused_login_names_the_user_and_what_to_check(project, pg_database):
    user = f"nobody_{secrets.token_hex(3)}"
    url = pg_database.replace("://root@", f"://{user}:hunter2-long@")
    result = project.cli("list", "--db", url)
    assert result.exit_code == 2, result.output
    line = one_sentence(result.output)
    assert f"the database server at 127.0.0.1:5432 refused the login of '{user}'" in line
    assert "check the user name and password" in line
    assert "hunter2-long" not in line


def test_a_missing_database_says_how_to_create_it(project, pg_database):
    name = f"vidpipe_missing_{secrets.token_hex(3)}"
    url = pg_database.rsplit("/", 1)[0] + "/" + name
    result = project.cli("list", "--db", url)
    assert result.exit_code == 2, result.output
    line = one_sentence(result.output)
    assert f"database '{name}' does not exist on the database server at 127.0.0.1:5432" in line
    assert f"createdb -h 127.0.0.1 -p 5432 -U root {name}" in line


@pytest.mark.both_databases
def test_list_status_and_report_read_the_project_database(project, fake):
    project.job("kite", FAKE)
    assert project.cli("run", "--report", "r.json").exit_code == 0
    listed = project.cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(p["job"], p["status"]) for p in json.loads(listed.stdout)] == [("kite", "complete")]
    status = project.cli("status", "kite", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["status"] == "complete"
    # The gallery reads the batch's stored report (JSON column) back.
    gallery = project.cli("report", "--html", "g.html")
    assert gallery.exit_code == 0, gallery.output
    assert "kite" in (project.root / "g.html").read_text()
    # The run again is served from the cache in the same database: nothing made twice.
    SCRIPT.history.clear()
    again = project.cli("run", "--report", "again.json")
    assert again.exit_code == 0, again.output
    assert project.jobs_in_report("again.json")["kite"]["provider_calls"] == 0
    if project.backend == "postgresql":
        assert not (project.root / "vidpipe.db").exists()


# -- the store under contention: separate connections, as separate runners have ---------------


def at_once(n: int, work) -> list:
    """Run `work(i)` on n threads released together; the answers in thread order."""
    barrier = threading.Barrier(n)
    answers: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@pytest.mark.both_databases
def test_runners_opening_a_new_plan_together_create_one_project(project):
    stores = [Store(project.store_url) for _ in range(6)]
    try:
        answers = at_once(
            6,
            lambda i: stores[i].open_project(
                "kite",
                "d" * 64,
                f"host-{i}:1:token",  # other machines: their leases are never presumed dead
                60,
                force=False,
                values={"source_path": "jobs/kite.yaml"},
            ),
        )
    finally:
        for store in stores:
            store.close()
    assert sorted(outcome for _, outcome in answers) == ["busy"] * 5 + ["new"]
    assert len({p.id for p, _ in answers}) == 1
    assert project.sql("select count(*) from projects")[0][0] == 1


@pytest.mark.both_databases
def test_one_runner_wins_each_generation_claim_and_a_lapsed_claim_is_taken_over(project):
    stores = [Store(project.store_url) for _ in range(6)]
    try:
        won = at_once(
            6,
            lambda i: stores[i].claim_generation(
                "k" * 64, f"host-{i}:1:token/p", 60, capability="video", provider="p", model="m"
            ),
        )
        assert sorted(won) == [False] * 5 + [True]
        # The winner's lease lapses (its machine died): exactly one other runner takes over.
        stores[0].put_generation("k" * 64, lease_expires_at=datetime(2000, 1, 1))
        again = at_once(
            6,
            lambda i: stores[i].claim_generation(
                "k" * 64, f"host-{i + 6}:1:token/p", 60, capability="video", provider="p", model="m"
            ),
        )
        assert sorted(again) == [False] * 5 + [True]
    finally:
        for store in stores:
            store.close()
    ((status, owner),) = project.sql("select status, owner from generations")
    assert status == "running" and owner.startswith("host-") and int(owner[5:].split(":")[0]) >= 6
