"""The model catalog: limits, inputs, locations, prices and lifecycle of every model.

The built-in catalog is package data (``vidpipe/models.yaml``, schema
``schemas/models.schema.json``). A project adds models, or overrides any field of a
built-in one, under ``models:`` in vidpipe.yaml; those entries are validated by the same
schema and located at their ``path:line:column``. Pre-flight checks, estimates, prices and
``vidpipe models`` all read the merged catalog, so a fact lives in one place::

    catalog = config.catalog
    veo = catalog.get("veo-3.1-fast-generate-001")
    veo.durations            # (4, 6, 8)
    catalog.default("google", "video")
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from vidpipe.errors import Problem

#: `validate` warns about a model this many days before it retires.
RETIRING_DAYS = 30
STEPS = ("storyboard", "image", "video")


@dataclass(frozen=True)
class ModelInfo:
    """One catalog entry, with every optional field resolved to a usable value."""

    id: str
    provider: str
    step: str
    status: str = "ga"
    released: str | None = None
    retires: str | None = None
    replacement: str | None = None
    location: str | None = None
    api: str = "generate_content"
    first_frame: bool = True
    last_frame: bool = False
    reference_images: int = 0
    max_input_images: int | None = None
    max_inline_mb: float | None = None
    durations: tuple[int, ...] = ()
    resolutions: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()
    image_sizes: tuple[str, ...] = ()
    audio: bool = False
    audio_param: bool = False
    reference_duration: int | None = None
    quota_rpm: float | None = None
    prices: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[Mapping[str, Any], ...] = ()
    #: "built-in" or the vidpipe.yaml that added or changed it.
    origin: str = "built-in"

    @classmethod
    def from_entry(cls, model_id: str, entry: Mapping[str, Any], origin: str) -> ModelInfo:
        inputs = entry.get("inputs") or {}
        return cls(
            id=model_id,
            provider=entry["provider"],
            step=entry["step"],
            status=entry.get("status") or "ga",
            released=entry.get("released"),
            retires=entry.get("retires"),
            replacement=entry.get("replacement"),
            location=entry.get("location"),
            api=entry.get("api")
            or ("predict_long_running" if entry["step"] == "video" else "generate_content"),
            first_frame=bool(inputs.get("first_frame", entry["step"] == "video")),
            last_frame=bool(inputs.get("last_frame", False)),
            reference_images=int(inputs.get("reference_images", 0)),
            max_input_images=inputs.get("max_input_images"),
            max_inline_mb=inputs.get("max_inline_mb"),
            durations=tuple(entry.get("durations") or ()),
            resolutions=tuple(entry.get("resolutions") or ()),
            aspect_ratios=tuple(entry.get("aspect_ratios") or ()),
            image_sizes=tuple(entry.get("image_sizes") or ()),
            audio=bool(entry.get("audio", False)),
            audio_param=bool(entry.get("audio_param", False)),
            reference_duration=entry.get("reference_duration"),
            quota_rpm=entry.get("quota_rpm"),
            prices=dict(entry.get("prices") or {}),
            sources=tuple(entry.get("sources") or ()),
            origin=origin,
        )

    def retired(self, today: dt.date) -> bool:
        """Retired by status, or its retirement day has come."""
        return self.status == "retired" or (
            self.retires is not None and dt.date.fromisoformat(self.retires) <= today
        )

    def days_left(self, today: dt.date) -> int | None:
        """Days until retirement (None when no date is published)."""
        if self.retires is None:
            return None
        return (dt.date.fromisoformat(self.retires) - today).days

    def lifecycle_message(self, today: dt.date) -> tuple[str, str] | None:
        """("error" | "warning", sentence) when the model is retired or about to be."""
        instead = f"; use {self.replacement} instead" if self.replacement else ""
        if self.retired(today):
            when = f" on {self.retires}" if self.retires else ""
            return "error", f"{self.id} was retired{when} and no longer answers{instead}"
        left = self.days_left(today)
        if left is not None and left <= RETIRING_DAYS:
            return "warning", f"{self.id} retires on {self.retires} (in {left} days){instead}"
        return None

    def as_dict(self) -> dict[str, Any]:
        """The entry as `vidpipe models --json` prints it."""
        return {
            "id": self.id,
            "provider": self.provider,
            "step": self.step,
            "status": self.status,
            "released": self.released,
            "retires": self.retires,
            "replacement": self.replacement,
            "location": self.location,
            "api": self.api,
            "inputs": {
                "first_frame": self.first_frame,
                "last_frame": self.last_frame,
                "reference_images": self.reference_images,
                "max_input_images": self.max_input_images,
                "max_inline_mb": self.max_inline_mb,
            },
            "durations": list(self.durations),
            "resolutions": list(self.resolutions),
            "aspect_ratios": list(self.aspect_ratios),
            "image_sizes": list(self.image_sizes),
            "audio": self.audio,
            "audio_param": self.audio_param,
            "reference_duration": self.reference_duration,
            "quota_rpm": self.quota_rpm,
            "prices": dict(self.prices),
            "sources": [dict(s) for s in self.sources],
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Catalog:
    """Every known model by id, and the default model per provider and step."""

    models: Mapping[str, ModelInfo]
    defaults: Mapping[str, Mapping[str, str]]

    def get(self, model_id: str) -> ModelInfo | None:
        return self.models.get(model_id)

    def default(self, provider: str, step: str) -> str | None:
        return (self.defaults.get(provider) or {}).get(step)

    def __iter__(self) -> Any:
        return iter(sorted(self.models.values(), key=_order))


def _order(info: ModelInfo) -> tuple[str, int, str]:
    return (info.provider, STEPS.index(info.step), info.id)


@cache
def builtin_data() -> dict[str, Any]:
    """The parsed package catalog (dates kept as text)."""
    from vidpipe.spec.yamlsource import load_text

    text = resources.files("vidpipe").joinpath("models.yaml").read_text("utf-8")
    data: dict[str, Any] = load_text(text, "vidpipe/models.yaml").data
    return data


def merged_entries(user: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each user entry laid over the built-in entry of the same id (field by field)."""
    base = builtin_data()["models"]
    out: dict[str, dict[str, Any]] = {}
    for model_id, entry in user.items():
        merged = copy.deepcopy(base.get(model_id, {}))
        if isinstance(entry, Mapping):
            _merge(merged, entry)
            out[model_id] = merged
        else:
            out[model_id] = entry  # not a mapping: the schema says so
    return out


def user_problems(user: Any, source: Any) -> list[Problem]:
    """Schema problems of a `models:` section, located in the file it came from."""
    from vidpipe.spec.schema import validate

    if not isinstance(user, Mapping):
        return validate("models", {"models": user}, source)
    return validate("models", {"models": merged_entries(user)}, source)


def build(user: Mapping[str, Any] | None = None, origin: str = "vidpipe.yaml") -> Catalog:
    """The built-in catalog with `user` entries (already validated) added or laid over it."""
    data = builtin_data()
    entries: dict[str, ModelInfo] = {
        model_id: ModelInfo.from_entry(model_id, entry, "built-in")
        for model_id, entry in data["models"].items()
    }
    for model_id, entry in merged_entries(user or {}).items():
        entries[model_id] = ModelInfo.from_entry(model_id, entry, origin)
    return Catalog(models=entries, defaults=data["defaults"])


@cache
def builtin() -> Catalog:
    """The package catalog alone (no project overrides)."""
    return build()


def today() -> dt.date:
    """The date lifecycle checks compare against (UTC, like the published dates)."""
    return dt.datetime.now(dt.UTC).date()


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


# -- what a job asks of a model -----------------------------------------------------------


def lifecycle_problems(
    job: Any, providers: Mapping[str, Any], catalog: Catalog, on: dt.date | None = None
) -> tuple[list[Problem], list[str]]:
    """Retired models the job would call (problems), and those retiring soon (warnings).

    A retired model answers 404, and only after the steps before it have been paid for,
    so it is refused with its replacement; one retiring within :data:`RETIRING_DAYS` is
    a warning, located like a problem.
    """
    on = on or today()
    problems: list[Problem] = []
    warnings: list[str] = []
    for step in STEPS:
        provider = providers.get(job.providers.get(step))
        if provider is None:
            continue
        model = provider.model(step, job.models.get(step))
        info = catalog.get(model)
        found = info.lifecycle_message(on) if info is not None else None
        if found is None:
            continue
        kind, message = found
        where = ("models", step) if job.models.get(step) else "provider"
        if kind == "error":
            problems.append(job.problem(where, message))
        else:
            warnings.append(str(job.problem(where, f"warning: {message}")))
    return problems, warnings


def job_problems(job: Any, info: ModelInfo, where_model: Any) -> list[Problem]:
    """What `job` asks of `info` that the model does not do (located in the job file).

    Covers aspect ratio, clip durations, resolution, the last frame vidpipe sends for
    continuity, sound, and the size of images the job supplies itself.
    """
    problems: list[Problem] = []
    model = info.id
    if info.aspect_ratios and job.aspect_ratio not in info.aspect_ratios:
        problems.append(
            job.problem(
                "aspect_ratio",
                f"{model} makes {_either(info.aspect_ratios)} {_what(info)}, not {job.aspect_ratio}",
            )
        )
    if info.step == "video":
        problems.extend(_video_problems(job, info, where_model))
    needed = image_size_for(job.resolution)
    if info.step == "image" and info.image_sizes and needed not in info.image_sizes:
        problems.append(
            job.problem(
                "resolution",
                f"{model} draws images of {_either(info.image_sizes)}, which cannot serve "
                f"{job.resolution} (needs {needed})",
            )
        )
    if info.max_inline_mb is not None:
        problems.extend(_image_size_problems(job, info))
    return problems


def _video_problems(job: Any, info: ModelInfo, where_model: Any) -> list[Problem]:
    problems: list[Problem] = []
    model = info.id
    if info.durations:
        for i in range(job.scenes):
            seconds = job.clip_seconds(i)
            if seconds not in info.durations:
                override = job.override(i)
                where: Any = "clip_duration"
                if override is not None and override.duration:
                    where = ("scene_overrides", job.overrides.index(override), "duration")
                choices = ", ".join(str(d) for d in info.durations)
                problems.append(
                    job.problem(where, f"{model} makes clips of {choices} seconds, not {seconds}")
                )
                break
    if info.resolutions and job.resolution is not None and job.resolution not in info.resolutions:
        problems.append(
            job.problem(
                "resolution", f"{model} renders {_either(info.resolutions)}, not {job.resolution}"
            )
        )
    if not info.last_frame:
        problems.append(
            job.problem(
                where_model,
                f"{model} cannot end a clip on a given last frame, which vidpipe needs for "
                "continuity; use a model that takes one (`vidpipe models` lists them)",
            )
        )
    if job.generate_audio and not info.audio:
        problems.append(
            job.problem(
                "generate_audio", f"{model} makes silent clips; remove generate_audio: true"
            )
        )
    return problems


def _image_size_problems(job: Any, info: ModelInfo) -> list[Problem]:
    """Images the job supplies are sent inline: each must fit the model's inline limit."""
    assert info.max_inline_mb is not None
    limit = info.max_inline_mb * 1_000_000
    problems: list[Problem] = []
    for n, override in enumerate(job.overrides):
        for key in ("start_image", "end_image"):
            path = getattr(override, key, None)
            if path is None:
                continue
            size = path.stat().st_size if path.is_file() else 0
            if size > limit:
                problems.append(
                    job.problem(
                        ("scene_overrides", n, key),
                        f"{path.name} is {size / 1e6:.1f} MB; {info.id} takes inline images "
                        f"up to {info.max_inline_mb:g} MB: make it smaller (JPEG, or fewer pixels)",
                    )
                )
    return problems


def image_size_for(resolution: str | None) -> str:
    """The image-model size (`imageSize`) that serves keyframes for a clip resolution."""
    return {"1080p": "2K", "4k": "4K"}.get(resolution or "", "1K")


def _either(values: tuple[Any, ...]) -> str:
    items = [str(v) for v in values]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _what(info: ModelInfo) -> str:
    return {"video": "video", "image": "images"}.get(info.step, "output")
