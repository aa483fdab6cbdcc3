"""`vidpipe init` and the command line's front page (`vidpipe --help`, `python -m vidpipe`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import Project
from jsonschema import Draft202012Validator

from vidpipe.spec.schema import load_schema

CREATED = [
    "vidpipe.yaml",
    "jobs/example.yaml",
    ".gitignore",
    "schemas/job.schema.json",
    "templates/storyboard.j2",
    "templates/keyframe_start.j2",
    "templates/keyframe_end.j2",
    "templates/motion.j2",
]

#: Every command of SPEC §6.
COMMANDS = [
    "init",
    "validate",
    "render",
    "run",
    "submit",
    "worker",
    "estimate",
    "models",
    "plan",
    "list",
    "status",
    "resume",
    "keep",
    "stitch",
    "report",
    "gc",
    "batches",
    "costs",
]


def test_init_creates_a_project(tmp_path: Path) -> None:
    result = Project(tmp_path).cli("init", "demo")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "".join(f"created {rel}\n" for rel in CREATED)
        + "\nNext: cd demo && vidpipe validate && vidpipe run\n"
    )
    root = tmp_path / "demo"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(
        CREATED
    )


def test_the_templates_are_the_built_ins_and_the_schema_is_published(tmp_path: Path) -> None:
    import vidpipe

    Project(tmp_path).cli("init", "demo")
    package = Path(vidpipe.__file__).parent
    for name in ("storyboard", "keyframe_start", "keyframe_end", "motion"):
        assert (tmp_path / "demo" / "templates" / f"{name}.j2").read_text() == (
            package / "templates" / f"{name}.j2"
        ).read_text()
    published = json.loads((tmp_path / "demo" / "schemas" / "job.schema.json").read_text())
    assert published == load_schema("job")
    # The example job points editors at the published schema, and is valid against it.
    example = (tmp_path / "demo" / "jobs" / "example.yaml").read_text()
    assert example.startswith("# yaml-language-server: $schema=../schemas/job.schema.json\n")


def test_the_example_job_is_valid_against_the_published_schema(tmp_path: Path) -> None:
    import yaml

    Project(tmp_path).cli("init", "demo")
    data = yaml.safe_load((tmp_path / "demo" / "jobs" / "example.yaml").read_text())
    assert list(Draft202012Validator(load_schema("job")).iter_errors(data)) == []


def test_init_in_the_current_folder(tmp_path: Path) -> None:
    result = Project(tmp_path).cli("init")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("\nNext: vidpipe validate && vidpipe run\n")
    assert (tmp_path / "vidpipe.yaml").is_file()


def test_the_created_project_validates(tmp_path: Path) -> None:
    Project(tmp_path).cli("init", "demo")
    result = Project(tmp_path / "demo").cli("validate")
    assert result.exit_code == 0, result.output
    assert result.output == "ok  jobs/example.yaml: example (3 scenes, 16:9, local)\n1 job valid.\n"


def test_init_keeps_existing_files_without_force(tmp_path: Path) -> None:
    Project(tmp_path).cli("init", "demo")
    root = tmp_path / "demo"
    (root / "jobs" / "example.yaml").write_text("prompt: my own job\n")
    (root / "templates" / "motion.j2").write_text("my motion\n")
    before = {rel: (root / rel).read_bytes() for rel in CREATED}

    result = Project(tmp_path).cli("init", "demo")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "".join(f"kept    {rel} (exists; --force overwrites)\n" for rel in CREATED)
        + "\nNext: cd demo && vidpipe validate && vidpipe run\n"
    )
    assert {rel: (root / rel).read_bytes() for rel in CREATED} == before


def test_init_in_an_existing_project_adds_no_files(tmp_path: Path) -> None:
    # The project dropped the example job (it would run every night) and one template (to
    # use the built-in): init, with or without --force, puts neither back.
    Project(tmp_path).cli("init", "demo")
    root = tmp_path / "demo"
    (root / "jobs" / "example.yaml").unlink()
    (root / "jobs" / "nightly.yaml").write_text("prompt: my own job\n")
    (root / "templates" / "motion.j2").unlink()
    for args in (("init", "demo"), ("init", "demo", "--force")):
        result = Project(tmp_path).cli(*args)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert "skipped jobs/example.yaml (an existing project: init adds no files to it)" in lines
        assert (
            "skipped templates/motion.j2 (an existing project: init adds no files to it)" in lines
        )
        assert not (root / "jobs" / "example.yaml").exists()
        assert not (root / "templates" / "motion.j2").exists()
    assert sorted(p.name for p in (root / "jobs").iterdir()) == ["nightly.yaml"]
    # A folder with job files but no vidpipe.yaml is a project too: no config, no example.
    other = tmp_path / "other"
    (other / "jobs").mkdir(parents=True)
    (other / "jobs" / "a.yaml").write_text("prompt: a\n")
    assert Project(tmp_path).cli("init", "other").exit_code == 0
    assert sorted(p.name for p in other.rglob("*")) == ["a.yaml", "jobs"]


def test_the_gitignore_covers_what_vidpipe_writes(tmp_path: Path) -> None:
    import shutil

    Project(tmp_path).cli("init", "demo")
    root = tmp_path / "demo"
    project = Project(root)
    assert project.cli("run", "-q", "--report", "report.json").exit_code == 0
    assert project.cli("report").exit_code == 0
    assert (root / "tmp" / "report.html").is_file()
    assert not (root / "report.html").exists()
    (root / ".report.part-0123abcd.json").write_text("{")  # a write cut short by a crash
    git = shutil.which("git")
    if git is None:
        import pytest

        pytest.skip("git is not installed")
    subprocess.run([git, "init", "-q", str(root)], check=True)
    shown = subprocess.run(
        [git, "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    written_by_user_or_init = {"??", ".gitignore", "vidpipe.yaml", "report.json"} | {
        rel for rel in CREATED
    }
    assert set(shown) <= written_by_user_or_init, shown


def test_init_force_overwrites(tmp_path: Path) -> None:
    Project(tmp_path).cli("init", "demo")
    root = tmp_path / "demo"
    (root / "jobs" / "example.yaml").write_text("prompt: my own job\n")
    result = Project(tmp_path).cli("init", "demo", "--force")
    assert result.exit_code == 0, result.output
    assert "created jobs/example.yaml" in result.output.splitlines()
    assert "A lighthouse keeper" in (root / "jobs" / "example.yaml").read_text()


def test_init_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "demo").write_text("a file\n")
    result = Project(tmp_path).cli("init", "demo")
    assert result.exit_code == 2
    assert "Error: Invalid value for '[DIRECTORY]': Directory 'demo' is a file." in result.output


# -- the front page --------------------------------------------------------------------------


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = Project(tmp_path).cli("--help")
    assert result.exit_code == 0
    listed = re.findall(r"^  (\w+)\s", result.output.split("Commands:\n", 1)[1], re.M)
    assert sorted(listed) == sorted(COMMANDS)
    for command in COMMANDS:
        sub = Project(tmp_path).cli(command, "--help")
        assert sub.exit_code == 0, command
        # CliRunner names the program after the group function.
        assert sub.output.startswith(f"Usage: cli {command} [OPTIONS]"), sub.output


def test_python_m_vidpipe_help_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vidpipe", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: vidpipe [OPTIONS] COMMAND [ARGS]...\n")
    assert "Turn version-controlled YAML job files into multi-scene AI videos." in result.stdout
    assert result.stderr == ""


def test_python_m_vidpipe_validate_exit_codes_in_a_real_process(scaffolded: Project) -> None:
    ok = scaffolded.subprocess("validate")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "ok  jobs/example.yaml: example (3 scenes, 16:9, local)\n1 job valid.\n"
    scaffolded.job("bad", "prompt: hi\nstyel: noir\n")
    bad = scaffolded.subprocess("validate")
    assert bad.returncode == 2
    assert bad.stderr == (
        "jobs/bad.yaml:2:1: unknown key 'styel'; did you mean 'style'?\n"
        "1 problem found; nothing was run.\n"
    )
    assert "Traceback" not in bad.stderr
