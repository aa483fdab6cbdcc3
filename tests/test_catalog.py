"""The model catalog: `vidpipe models`, lifecycle checks, and `models:` in vidpipe.yaml."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from conftest import refused

from vidpipe.catalog import builtin, builtin_data
from vidpipe.spec.schema import validate
from vidpipe.spec.yamlsource import SourceMap

Project = Any


def test_the_packaged_catalog_is_valid_and_sourced() -> None:
    assert validate("models", builtin_data(), SourceMap("vidpipe/models.yaml")) == []
    catalog = builtin()
    for info in catalog:
        assert info.sources, f"{info.id} has no source"
        if info.prices:
            assert info.prices.get("source") and info.prices.get("read"), info.id
        if info.replacement:
            assert catalog.get(info.replacement) is not None, info.id
    for provider, steps in catalog.defaults.items():
        for step, model in steps.items():
            info = catalog.get(model)
            assert info is not None and (info.provider, info.step) == (provider, step)
            assert info.status == "ga" and not info.retired(dt.date(2026, 11, 29))
    # The providers' own defaults are the catalog's.
    from vidpipe.providers.google import GoogleProvider
    from vidpipe.providers.local import LocalProvider

    assert dict(GoogleProvider.default_models) == dict(catalog.defaults["google"])
    assert dict(LocalProvider.default_models) == dict(catalog.defaults["local"])


def test_models_lists_every_model_with_limits_and_prices(project: Project) -> None:
    result = project.cli("models")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["model", "provider", "step", "limits", "price", "(USD)", "status"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {info.id for info in builtin()}
    veo = rows["veo-3.1-fast-generate-001"]
    assert "4/6/8 s" in veo and "720p/1080p/4k" in veo and "first+last frame" in veo
    assert "0.1/s (0.15/s with audio)" in veo
    assert "retired 2026-10-20 → gemini-3.8-flash" in rows["gemini-2.5-flash"]
    assert "free" in rows["local-animatic-1"]

    data = json.loads(project.cli("models", "--json").stdout)
    by_id = {m["id"]: m for m in data}
    assert by_id["veo-3.1-generate-001"]["resolutions"] == ["720p", "1080p", "4k"]
    assert by_id["veo-3.1-generate-001"]["prices"]["by_resolution"]["4k"]["per_second_audio"] > 0
    assert by_id["gemini-3.1-flash-image"]["inputs"]["max_input_images"] == 14
    assert by_id["gemini-3.8-flash"]["prices"]["source"]
    assert by_id["veo-3.1-lite-generate-001"]["origin"] == "built-in"


ADDED = """\
models:
  veo-9-preview:
    provider: google
    step: video
    status: preview
    retires: "{retires}"
    location: us-central1
    inputs: {{first_frame: true, last_frame: true}}
    durations: [4, 8]
    resolutions: [720p]
    aspect_ratios: ["16:9"]
    audio: true
    audio_param: true
    prices: {{per_second: 1.0, per_second_audio: 2.0, source: "our quote", read: "2026-11-01"}}
    sources: [{{what: "our account manager"}}]
  veo-3.1-generate-001:
    prices: {{per_second: 0.18}}
"""


def test_a_model_added_in_vidpipe_yaml_is_listed_checked_priced_and_warned(
    project: Project,
) -> None:
    soon = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    config = project.root / "vidpipe.yaml"
    config.write_text(config.read_text() + ADDED.format(retires=soon))

    listed = {m["id"]: m for m in json.loads(project.cli("models", "--json").stdout)}
    assert listed["veo-9-preview"]["origin"] == "vidpipe.yaml"
    assert listed["veo-9-preview"]["durations"] == [4, 8]
    # An override changes one field and keeps the rest of the built-in entry.
    assert listed["veo-3.1-generate-001"]["prices"]["per_second"] == 0.18
    assert listed["veo-3.1-generate-001"]["prices"]["per_second_audio"] == 0.40

    job = project.job(
        "future",
        "prompt: A lighthouse at dusk\nprovider: google\nmodels: {video: veo-9-preview}\n"
        'aspect_ratio: "16:9"\nresolution: 720p\nclip_duration: 6\nscenes: 2\n',
    )
    result = project.cli("validate")
    refused(result, "jobs/future.yaml:6:16: veo-9-preview makes clips of 4, 8 seconds, not 6")

    job.write_text(job.read_text().replace("clip_duration: 6", "clip_duration: 8"))
    result = project.cli("validate")
    assert result.exit_code == 0, result.output
    assert (
        f"jobs/future.yaml:3:17: warning: veo-9-preview retires on {soon} (in 10 days)"
        in result.stderr
    )
    estimate = json.loads(project.cli("estimate", "--json").stdout)
    (planned,) = estimate["jobs"]
    assert planned["by_step"]["video"] == 2 * 8 * 2.0  # the audio rate from vidpipe.yaml


def test_a_retired_model_is_refused_with_its_replacement(project: Project) -> None:
    project.job(
        "old",
        "prompt: A lighthouse at dusk\nprovider: google\n"
        "models: {storyboard: gemini-2.5-pro, video: veo-3.0-generate-001}\n"
        'aspect_ratio: "16:9"\nresolution: 720p\nclip_duration: 4\n',
    )
    result = project.cli("validate")
    assert result.exit_code == 2
    errors = result.stderr
    assert (
        "jobs/old.yaml:3:22: gemini-2.5-pro was retired on 2026-10-20 and no longer answers; "
        "use gemini-3.8-flash instead" in errors
    )
    assert (
        "jobs/old.yaml:3:45: veo-3.0-generate-001 was retired on 2026-06-30 and no longer "
        "answers; use veo-3.1-generate-001 instead" in errors
    )
    # A local preview of the same job calls none of them: nothing to refuse.
    assert project.cli("validate", "--provider", "local").exit_code == 0


def test_catalog_entries_in_vidpipe_yaml_are_validated_and_located(project: Project) -> None:
    config = project.root / "vidpipe.yaml"
    config.write_text(
        config.read_text()
        + "models:\n  my-model:\n    provider: google\n    step: vidoe\n"
        + "  veo-3.1-generate-001:\n    durations: [4, -1]\n"
    )
    result = project.cli("models")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert any(
        line.startswith("Error: vidpipe.yaml:9:11: models.my-model.step must be one of")
        for line in lines
    ), result.stderr
    assert any(
        line.startswith(
            "vidpipe.yaml:11:20: models.veo-3.1-generate-001.durations[1] must be at least 1"
        )
        for line in lines
    ), result.stderr
    missing = "models:\n  half-model:\n    step: video\n"
    config.write_text(config.read_text().split("models:")[0] + missing)
    result = project.cli("models")
    assert result.exit_code == 2
    assert "missing required key 'provider' in models.half-model" in result.stderr
