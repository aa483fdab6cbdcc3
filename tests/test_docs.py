"""The README tells the truth: every command and flag documented, its examples valid."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from vidpipe.cli import cli
from vidpipe.spec.config import load_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented(name):
    assert f"`vidpipe {name}" in README


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_option_is_documented(command):
    for param in cli.commands[command].params:
        if isinstance(param, click.Option) and command == "run":
            assert any(f"`{opt}" in README or f" {opt}" in README for opt in param.opts), param.opts


def test_the_readme_job_example_is_valid(project):
    example = next(
        block for block in code_blocks("yaml") if block.startswith("# jobs/lighthouse.yaml")
    )
    project.job("lighthouse", example)
    result = project.cli("validate")
    assert result.exit_code == 0, result.output
    assert "lighthouse (3 scenes, 16:9, local)" in result.output


def test_the_readme_configuration_example_is_valid(tmp_path):
    example = next(block for block in code_blocks("yaml") if block.startswith("defaults:"))
    (tmp_path / "vidpipe.yaml").write_text(example)
    config = load_config(cwd=tmp_path)
    assert config.max_scenes == 15
    assert config.rate_limits == {"text": 60, "image": 20, "video": 10}


def test_ci_runs_the_readme_test_command():
    test_command = next(line for line in code_blocks("sh")[1].splitlines() if "pytest" in line)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_example_jobs_of_this_repository_are_valid(monkeypatch):
    from click.testing import CliRunner

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["validate", "--db", "sqlite:///:memory:"])
    assert result.exit_code == 0, result.output
