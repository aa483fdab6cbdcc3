"""Shared fixtures: a hermetic environment and a fresh vidpipe project per test.

No test reads the real home directory, real credentials or the network: every
VIDPIPE_/GOOGLE_ variable is removed, HOME points into the test's temporary folder, and
the Google provider is only ever pointed at the local Vertex emulator.
"""

from __future__ import annotations

import json
import os
import sqlite3
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

SECRET_PREFIXES = ("VIDPIPE_", "GOOGLE_", "GEMINI_", "CLOUDSDK_")


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(SECRET_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)  # caches go under the fake home


@dataclass
class Project:
    """A vidpipe project folder with helpers to write jobs and run the CLI in it."""

    root: Path

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


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """An empty project (vidpipe.yaml with fast defaults, jobs/, templates/)."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "jobs").mkdir()
    (root / "templates").mkdir()
    (root / "vidpipe.yaml").write_text(FAST_CONFIG, encoding="utf-8")
    yield Project(root)


@pytest.fixture
def fake() -> Iterator[Script]:
    """The recording fake provider, registered as `fake` (see tests/fakes.py)."""
    providers.register("fake", FakeProvider)
    SCRIPT.reset()
    yield SCRIPT
    providers._registered.pop("fake", None)
    SCRIPT.reset()


def recorded_artifacts_intact(root: Path) -> None:
    """Every artifact the database records matches its file: nothing truncated counts."""
    db = root / "vidpipe.db"
    if not db.exists():
        return
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute("select path, sha256 from keyframes").fetchall()
        rows += conn.execute(
            "select path, sha256 from video_clips where status = 'complete'"
        ).fetchall()
        rows += conn.execute(
            "select result_path, result_sha256 from generations where result_path is not null"
        ).fetchall()
        rows += conn.execute(
            "select output_path, output_sha256 from projects where output_path is not null"
        ).fetchall()
    for path, digest in rows:
        assert sha256_file(root / "tmp" / path) == digest, path


@pytest.fixture
def scaffolded(tmp_path: Path) -> Project:
    """A project made by `vidpipe init` (the example job, the editable templates)."""
    root = tmp_path / "demo"
    scaffold(root)
    return Project(root)
