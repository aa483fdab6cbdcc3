"""Shared fixtures: a hermetic environment and a fresh vidpipe project per test.

No test reads the real home directory, real credentials or the network: every
VIDPIPE_/GOOGLE_ variable is removed, HOME points into the test's temporary folder, and
the Google provider is only ever pointed at the local Vertex emulator.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from vidpipe import providers
from vidpipe.artifacts import sha256_file
from vidpipe.cli import cli
from vidpipe.scaffold import scaffold
from vidpipe.testing.fakes import SCRIPT, FakeProvider, Script
from vidpipe.testing.vertex_emulator import VertexEmulator, idea_storyboard

#: The PostgreSQL server the `both_databases` tests also run against (trust auth).
PG_SERVER = ("127.0.0.1", 5432, "root")

SECRET_PREFIXES = ("VIDPIPE_", "GOOGLE_", "GEMINI_", "CLOUDSDK_", "AWS_")
#: Storage settings of the libraries (gcsfs, s3fs): only the bucket fixtures set them.
STORAGE_SETTINGS = ("STORAGE_EMULATOR_HOST", "NO_GCE_CHECK")


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(SECRET_PREFIXES) or name in STORAGE_SETTINGS:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)  # caches go under the fake home


@dataclass
class Project:
    """A vidpipe project folder with helpers to write jobs and run the CLI in it."""

    root: Path
    #: The project's database URL: SQLite in the folder, or a PostgreSQL schema of its own.
    database: str = "sqlite:///vidpipe.db"

    @property
    def backend(self) -> str:
        return "sqlite" if self.database.startswith("sqlite") else "postgresql"

    @property
    def store_url(self) -> str:
        """The database URL as the project's runs resolve it (SQLite: an absolute path)."""
        if self.database == "sqlite:///vidpipe.db":
            return f"sqlite:///{self.root / 'vidpipe.db'}"
        return self.database

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Run one statement against the project's database (either backend); its rows."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.store_url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(query), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            engine.dispose()

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def job(self, name: str, text: str) -> Path:
        return self.write(f"jobs/{name}.yaml", text)

    def cli(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Result:
        """Run vidpipe in-process with Click's CliRunner, in this project."""
        old = Path.cwd()
        os.chdir(self.root)
        try:
            return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
        finally:
            os.chdir(old)

    def subprocess(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m vidpipe` in a real process."""
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "vidpipe", *args],
            cwd=self.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    def report(self, rel: str = "report.json") -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / rel).read_text())
        return data

    def jobs_in_report(self, rel: str = "report.json") -> dict[str, dict[str, Any]]:
        return {j["name"]: j for j in self.report(rel)["jobs"]}


def refused(result: Result, *problems: str) -> None:
    """Exit 2, exactly these problem lines, no traceback, and the summary line counting them."""
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    lines = out.splitlines()
    assert lines[:-1] == list(problems), out
    n = len(problems)
    assert lines[-1] == f"{n} problem{'s' if n != 1 else ''} found; nothing was run."


FAST_CONFIG = """\
defaults:
  resolution: 360p
  clip_duration: 1
database: sqlite:///vidpipe.db
artifacts_dir: tmp
"""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_databases` run their `project` on SQLite and on PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_databases") and (
        "project" in metafunc.fixturenames
    ):
        metafunc.parametrize("project", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run, dropped at the end; its URL.

    Skips (with the reason) where no server answers on 127.0.0.1:5432.
    """
    try:
        import psycopg
        from psycopg import sql
    except ImportError:  # pragma: no cover - psycopg is in the test extra
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    host, port, user = PG_SERVER
    admin = f"host={host} port={port} user={user} dbname=postgres connect_timeout=5"
    name = f"vidpipe_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"PostgreSQL not reachable at {host}:{port}: {reason}")
    yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A database URL whose tables live in a fresh schema of their own (fast isolation)."""
    import psycopg
    from psycopg import sql

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Project]:
    """An empty project (vidpipe.yaml with fast defaults, jobs/, templates/).

    Parametrized as ``postgresql`` (tests marked `both_databases`), its database is a fresh
    schema in the test run's PostgreSQL database instead of vidpipe.db.
    """
    root = tmp_path / "proj"
    root.mkdir()
    (root / "jobs").mkdir()
    (root / "templates").mkdir()
    config = FAST_CONFIG
    database = "sqlite:///vidpipe.db"
    if getattr(request, "param", "sqlite") == "postgresql":
        database = request.getfixturevalue("pg_url")
        config = config.replace("sqlite:///vidpipe.db", database)
    (root / "vidpipe.yaml").write_text(config, encoding="utf-8")
    yield Project(root, database)


@pytest.fixture
def fake() -> Iterator[Script]:
    """The recording fake provider, registered as `fake` (see tests/fakes.py)."""
    providers.register("fake", FakeProvider)
    SCRIPT.reset()
    yield SCRIPT
    providers._registered.pop("fake", None)
    SCRIPT.reset()


def recorded_artifacts_intact(project: Project | Path) -> None:
    """Every artifact the database records matches its file: nothing truncated counts."""
    if isinstance(project, Path):
        project = Project(project)
    if project.backend == "sqlite" and not (project.root / "vidpipe.db").exists():
        return
    rows = project.sql("select path, sha256 from keyframes")
    rows += project.sql("select path, sha256 from video_clips where status = 'complete'")
    rows += project.sql(
        "select result_path, result_sha256 from generations where result_path is not null"
    )
    rows += project.sql(
        "select output_path, output_sha256 from projects where output_path is not null"
    )
    for path, digest in rows:
        assert sha256_file(project.root / "tmp" / path) == digest, path


@pytest.fixture
def scaffolded(tmp_path: Path) -> Project:
    """A project made by `vidpipe init` (the example job, the editable templates)."""
    root = tmp_path / "demo"
    scaffold(root)
    return Project(root)


# -- the Vertex emulator ------------------------------------------------------------------


@pytest.fixture(scope="module")
def _vertex() -> Iterator[VertexEmulator]:
    # One server per module: its video cache makes repeated clips cheap. Proxies are
    # bypassed so the SDK talks straight to 127.0.0.1.
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.lower().endswith("_proxy"):
                mp.delenv(key, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        with VertexEmulator(polls_until_done=1, storyboard_fn=idea_storyboard) as emulator:
            yield emulator


@pytest.fixture
def emu(_vertex: VertexEmulator) -> Iterator[VertexEmulator]:
    """The module's Vertex emulator, reset to a clean slate for each test."""
    _vertex.reset(config=True)
    yield _vertex
    _vertex.reset(config=True)


def google_env(emu: VertexEmulator, api_key: str, **extra: Any) -> dict[str, str]:
    """The environment that points vidpipe's google provider at the emulator (an API key
    with a project and location: a key alone is express mode, which cannot call Veo)."""
    env = {
        "GOOGLE_API_KEY": api_key,
        "GOOGLE_CLOUD_PROJECT": "vidpipe-test",
        "GOOGLE_CLOUD_LOCATION": "us-central1",
        "VIDPIPE_GOOGLE__BASE_URL": emu.url,
        "VIDPIPE_GOOGLE__POLL_INTERVAL": "0.05",
        "VIDPIPE_GOOGLE__RETRY_BASE_DELAY": "0.01",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


# -- object stores: a GCS emulator and an S3 server on 127.0.0.1 --------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def _gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gcp-storage-emulator` (in memory) over HTTP on 127.0.0.1; its endpoint URL.

    A process of its own: its request threads print to its own stderr, not into the
    output of the commands under test."""
    import importlib.util
    import socket
    import time

    if importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    port = free_port()
    log = tmp_path_factory.mktemp("gcs-emulator") / "emulator.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
             "--port", str(port), "--in-memory", "--quiet"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                pytest.skip(f"the GCS emulator did not start on 127.0.0.1:{port}: {tail[0]}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture(scope="session")
def _s3_server() -> Iterator[str]:
    """moto's S3 server mode over HTTP on 127.0.0.1; its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("moto[server] is not installed (pip install -e '.[test]')")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
    except OSError as exc:
        pytest.skip(f"moto's S3 server did not start: {exc}")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def bucket_fs(url: str) -> tuple[Any, str]:
    """An fsspec filesystem for a bucket URL, and the URL's path in it (the environment
    points at the emulator; the GCS emulator takes no credentials)."""
    from fsspec.core import url_to_fs

    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    if url.startswith("gs://"):
        # The plain class: the extended one probes the bucket's layout over gRPC, which
        # the emulator does not serve.
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(token="anon", **options), GCSFileSystem._strip_protocol(url)
    return url_to_fs(url, **options)  # type: ignore[no-any-return]


def _new_bucket(scheme: str) -> str:
    """Create a fresh bucket through fsspec."""
    name = f"vidpipe-{secrets.token_hex(4)}"
    fs, _ = bucket_fs(f"{scheme}://{name}")
    fs.mkdir(name)
    return f"{scheme}://{name}/studio"


@pytest.fixture
def gcs_bucket(_gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket in the GCS emulator, reached through gcsfs's own setting
    (STORAGE_EMULATOR_HOST); its URL with a prefix, ``gs://BUCKET/studio``."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", _gcs_emulator)
    return _new_bucket("gs")


@pytest.fixture
def s3_bucket(_s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket in moto's S3 server, reached through botocore's own settings
    (AWS_ENDPOINT_URL and dummy keys); its URL with a prefix, ``s3://BUCKET/studio``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", _s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return _new_bucket("s3")
