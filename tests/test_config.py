"""Configuration layers: built-in → vidpipe.yaml `defaults:` → environment → job file → CLI flag.

Each layer is shown winning over the one before it, through what users see: the style in
`vidpipe render`'s prompts, the scene count and provider in `vidpipe validate`, the provider
per step in `vidpipe estimate --json`. Bad settings are refused with exit 2, located in
vidpipe.yaml or naming the environment variable.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import Project, refused

from vidpipe.spec.config import load_config


def style_in_prompts(project: Project, env: dict[str, str] | None = None) -> str:
    """The job style as the scene 0 start-frame prompt shows it: `Style: … (STYLE).`"""
    result = project.cli("render", "jobs/a.yaml", "--scene", "0", env=env)
    assert result.exit_code == 0, result.output
    match = re.search(r"^Style: .* \((?P<style>[^)]+)\)\.$", result.output, re.M)
    assert match, result.output
    return match["style"]


def validated(project: Project, *args: str, env: dict[str, str] | None = None) -> str:
    """The `ok` line of jobs/a.yaml from `vidpipe validate`."""
    result = project.cli("validate", "jobs/a.yaml", *args, env=env)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[0]


def providers(project: Project, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result = project.cli("estimate", "jobs/a.yaml", "--json", *args, env=env)
    assert result.exit_code == 0, result.output
    job: dict[str, str] = json.loads(result.output)["jobs"][0]["provider"]
    return job


# -- precedence ------------------------------------------------------------------------------


def test_style_built_in_then_vidpipe_yaml_then_environment_then_job(project: Project) -> None:
    project.job("a", "prompt: A lighthouse at dusk\n")
    assert style_in_prompts(project) == "cinematic"

    project.write("vidpipe.yaml", "defaults:\n  style: anime\n")
    assert style_in_prompts(project) == "anime"

    env = {"VIDPIPE_DEFAULTS__STYLE": "noir"}
    assert style_in_prompts(project, env) == "noir"
    # The style guide follows the style, not only the label.
    out = project.cli("render", "jobs/a.yaml", "--scene", "0", env=env).output
    assert "1940s film noir, high-contrast black and white" in out

    project.job("a", "prompt: A lighthouse at dusk\nstyle: watercolor\n")
    assert style_in_prompts(project, env) == "watercolor"


def test_provider_built_in_then_vidpipe_yaml_then_environment_then_job_then_flag(
    project: Project,
) -> None:
    # No fast defaults here: the google provider only accepts 4/6/8-second 720p+ clips.
    project.write("vidpipe.yaml", "")
    project.job("a", "prompt: A lighthouse at dusk\n")
    local = dict.fromkeys(("storyboard", "image", "video"), "local")
    google = dict.fromkeys(("storyboard", "image", "video"), "google")

    assert validated(project) == "ok  jobs/a.yaml: a (3 scenes, 16:9, local)"
    assert providers(project) == local

    project.write("vidpipe.yaml", "defaults:\n  provider: google\n")
    assert validated(project) == "ok  jobs/a.yaml: a (3 scenes, 16:9, google)"
    assert providers(project) == google

    env = {"VIDPIPE_DEFAULTS__PROVIDER": "local"}
    assert providers(project, env=env) == local

    project.job("a", "prompt: A lighthouse at dusk\nprovider: google\n")
    assert providers(project, env=env) == google

    assert providers(project, "--provider", "local", env=env) == local
    assert validated(project, "--provider", "local", env=env) == (
        "ok  jobs/a.yaml: a (3 scenes, 16:9, local)"
    )


def test_a_provider_per_step_falls_back_to_the_default_provider(project: Project) -> None:
    project.write("vidpipe.yaml", "defaults:\n  provider: google\n")
    project.job("a", "prompt: hi\nprovider:\n  video: local\n")
    assert providers(project) == {"storyboard": "google", "image": "google", "video": "local"}
    assert validated(project) == "ok  jobs/a.yaml: a (3 scenes, 16:9, google/local)"


def test_scenes_built_in_then_vidpipe_yaml_then_environment_then_job(project: Project) -> None:
    project.job("a", "prompt: hi\n")
    assert validated(project) == "ok  jobs/a.yaml: a (3 scenes, 16:9, local)"
    project.write("vidpipe.yaml", "defaults:\n  scenes: 2\n")
    assert validated(project) == "ok  jobs/a.yaml: a (2 scenes, 16:9, local)"
    env = {"VIDPIPE_DEFAULTS__SCENES": "4"}
    assert validated(project, env=env) == "ok  jobs/a.yaml: a (4 scenes, 16:9, local)"
    project.job("a", "prompt: hi\nscenes: 5\n")
    assert validated(project, env=env) == "ok  jobs/a.yaml: a (5 scenes, 16:9, local)"


def test_max_scenes_built_in_then_vidpipe_yaml_then_environment(project: Project) -> None:
    project.job("a", "prompt: hi\nscenes: 5\n")
    assert validated(project) == "ok  jobs/a.yaml: a (5 scenes, 16:9, local)"

    project.write("vidpipe.yaml", "max_scenes: 4\n")
    refused(
        project.cli("validate"),
        "jobs/a.yaml:2:9: 5 scenes is more than max_scenes (4); lower it or raise max_scenes "
        "in vidpipe.yaml",
    )
    env = {"VIDPIPE_MAX_SCENES": "5"}
    assert validated(project, env=env) == "ok  jobs/a.yaml: a (5 scenes, 16:9, local)"


def test_aspect_ratio_from_the_environment_is_text_not_sexagesimal(project: Project) -> None:
    # YAML 1.1 reads 9:16 as the base-60 number 556; an environment value must not.
    project.job("a", "prompt: hi\n")
    env = {"VIDPIPE_DEFAULTS__ASPECT_RATIO": "9:16"}
    assert validated(project, env=env) == "ok  jobs/a.yaml: a (3 scenes, 9:16, local)"


def test_vars_merge_key_by_key_across_every_layer(project: Project) -> None:
    project.write(
        "vidpipe.yaml",
        "defaults:\n  vars:\n    brand: Acme\n    tone: calm\n    place: a harbour\n",
    )
    project.job("a", "prompt: hi\nvars:\n  tone: urgent\n  season: winter\n")
    env = {"VIDPIPE_DEFAULTS__VARS__PLACE": "a lighthouse", "VIDPIPE_DEFAULTS__VARS__LOUD": "yes"}
    out = project.cli("render", "jobs/a.yaml", env=env).output
    assert (
        "- Project notes: brand: Acme; tone: urgent; place: a lighthouse; loud: yes; "
        "season: winter." in out.splitlines()
    )


def test_stitch_merges_key_by_key_and_other_mappings_replace(project: Project) -> None:
    project.write("vidpipe.yaml", "defaults:\n  stitch: {crossfade: 0.5, audio: false}\n")
    project.job("a", "prompt: hi\nstitch: {crossfade: 1}\n")
    project.write("templates/storyboard.j2", "{{ job.stitch.crossfade }} {{ job.stitch.audio }}\n")
    out = project.cli("render", "jobs/a.yaml").output
    assert "\n1.0 False\n" in out


def test_concurrency_built_in_then_vidpipe_yaml_then_environment_then_flag(
    project: Project,
) -> None:
    assert load_config(cwd=project.root, env={}).jobs == 4
    project.write("vidpipe.yaml", "concurrency: {jobs: 2}\n")
    assert load_config(cwd=project.root, env={}).jobs == 2
    env = {"VIDPIPE_CONCURRENCY__JOBS": "8"}
    assert load_config(cwd=project.root, env=env).jobs == 8
    assert load_config(cwd=project.root, env=env, overrides={"concurrency": {"jobs": 3}}).jobs == 3


def test_environment_values_keep_their_types(project: Project) -> None:
    env = {
        "VIDPIPE_GOOGLE__POLL_INTERVAL": "2.5",
        "VIDPIPE_GOOGLE__BASE_URL": "http://127.0.0.1:9/",
        "VIDPIPE_GOOGLE__PROJECT": "null",
        "VIDPIPE_DEFAULTS__SEED": "42",
        "VIDPIPE_DEFAULTS__GENERATE_AUDIO": "false",
    }
    config = load_config(cwd=project.root, env=env)
    assert config.google.poll_interval == 2.5
    assert config.google.base_url == "http://127.0.0.1:9/"
    assert config.google.project is None
    assert config.defaults["seed"] == 42
    assert config.defaults["generate_audio"] is False


# -- invalid environment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "VIDPIPE_MAX_SCENES",
            "abc",
            "max_scenes must be an integer (got text 'abc'); fix or unset it",
        ),
        (
            "VIDPIPE_CONCURRENCY__JOBS",
            "0",
            "concurrency.jobs must be at least 1 (got 0); fix or unset it",
        ),
        (
            "VIDPIPE_CONCURRENCY",
            "8",
            "concurrency must be a mapping (got int 8); fix or unset it",
        ),
        (
            "VIDPIPE_MAX_SCENE",
            "8",
            "unknown key 'max_scene'; did you mean 'max_scenes'?",
        ),
        (
            "VIDPIPE_DEFAULTS__SCENES",
            "many",
            "scenes must be an integer (got text 'many'); fix or unset it",
        ),
        (
            "VIDPIPE_DEFAULTS__STYEL",
            "noir",
            "unknown key 'styel'; did you mean 'style'?",
        ),
        (
            "VIDPIPE_DEFAULTS__ASPECT_RATIO",
            "4:3",
            "aspect_ratio must be one of 16:9, 9:16, 1:1 (got '4:3'); fix or unset it",
        ),
    ],
)
def test_an_invalid_environment_variable_is_named_with_exit_2(
    project: Project, name: str, value: str, message: str
) -> None:
    project.job("a", "prompt: hi\n")
    project.job("b", "prompt: hi\n")
    result = project.cli("validate", env={name: value})
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    # One message naming the variable, not one per job file.
    assert result.output == f"Error: environment variable {name}={value!r}: {message}\n"


def test_an_invalid_environment_variable_stops_every_command(project: Project) -> None:
    project.job("a", "prompt: hi\n")
    for args in (["render", "jobs/a.yaml"], ["estimate"], ["list"]):
        result = project.cli(*args, env={"VIDPIPE_MAX_SCENES": "abc"})
        assert result.exit_code == 2, args
        assert "VIDPIPE_MAX_SCENES='abc'" in result.output


def test_an_unknown_default_provider_from_the_environment(project: Project) -> None:
    project.job("a", "prompt: hi\n")
    project.job("b", "prompt: hi\n")
    refused(
        project.cli("validate", env={"VIDPIPE_DEFAULTS__PROVIDER": "runway"}),
        "environment: unknown provider 'runway'; known providers: google, local "
        "(from VIDPIPE_DEFAULTS__PROVIDER)",
    )


# -- invalid vidpipe.yaml --------------------------------------------------------------------


def test_vidpipe_yaml_schema_errors_are_located(project: Project) -> None:
    project.write(
        "vidpipe.yaml", "database: sqlite:///v.db\nmax_scenes: many\nconcurency: {jobs: 2}\n"
    )
    project.job("a", "prompt: hi\n")
    result = project.cli("validate")
    assert result.exit_code == 2
    assert result.output == (
        "Error: vidpipe.yaml:2:13: max_scenes must be an integer (got text 'many')\n"
        "vidpipe.yaml:3:1: unknown key 'concurency'; did you mean 'concurrency'?\n"
    )


def test_malformed_vidpipe_yaml_is_located(project: Project) -> None:
    project.write("vidpipe.yaml", "defaults:\n  style: [noir\n")
    result = project.cli("validate")
    assert result.exit_code == 2
    assert result.output == (
        "Error: vidpipe.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'\n"
    )


def test_vidpipe_yaml_that_is_not_a_mapping(project: Project) -> None:
    project.write("vidpipe.yaml", "- max_scenes: 3\n")
    result = project.cli("validate")
    assert result.exit_code == 2
    assert result.output == "Error: vidpipe.yaml:1:1: vidpipe.yaml must be a mapping of settings\n"


def test_vidpipe_yaml_found_in_a_parent_folder_is_located(project: Project) -> None:
    project.write("vidpipe.yaml", "max_scenes: 0\n")
    result = Project(project.root / "jobs").cli("validate")
    assert result.exit_code == 2
    where = project.root / "vidpipe.yaml"
    assert result.output == f"Error: {where}:1:13: max_scenes must be at least 1 (got 0)\n"


def test_bad_defaults_are_reported_once_in_vidpipe_yaml(project: Project) -> None:
    project.write("vidpipe.yaml", "defaults:\n  stlye: noir\n  scenes: many\n")
    project.job("a", "prompt: hi\n")
    project.job("b", "prompt: hi\nscenes: 0\n")
    refused(
        project.cli("validate"),
        "jobs/b.yaml:2:9: scenes must be at least 1 (got 0)",
        "vidpipe.yaml:2:3: unknown key 'stlye' in defaults; did you mean 'style'?",
        "vidpipe.yaml:3:11: defaults.scenes must be an integer (got text 'many')",
    )


def test_an_unknown_default_provider_in_vidpipe_yaml(project: Project) -> None:
    project.write("vidpipe.yaml", "defaults:\n  provider:\n    image: runway\n")
    project.job("a", "prompt: hi\n")
    project.job("b", "prompt: hi\n")
    refused(
        project.cli("validate"),
        "vidpipe.yaml:3:12: unknown provider 'runway' for image; known providers: google, local "
        "(in defaults)",
    )


def test_config_flag(project: Project) -> None:
    project.write("other.yaml", "defaults:\n  scenes: 7\n")
    project.job("a", "prompt: hi\n")
    assert (
        validated(project, "--config", "other.yaml") == "ok  jobs/a.yaml: a (7 scenes, 16:9, local)"
    )
    result = project.cli("validate", "--config", "missing.yaml")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: config file {project.root / 'missing.yaml'} does not exist; check the --config path\n"
    )
