"""Job files: find them, load them, validate them, expand matrices, resolve typed jobs.

Order of precedence for every job key (later wins): built-in defaults, `defaults:` in
vidpipe.yaml, `VIDPIPE_DEFAULTS__…` environment variables, the job file, CLI flags.
`vars`, `stitch`, `models` and `templates` merge key by key; everything else replaces.

Every problem is collected (not just the first) and reported as `path:line:column: message`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import glob
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.errors import JobFileError, Problem
from vidpipe.spec.assets import Asset, declared, declared_list, project_assets
from vidpipe.spec.config import Config, Limits
from vidpipe.spec.matrix import Point, axis, written_in
from vidpipe.spec.schema import validate
from vidpipe.spec.yamlsource import Path_, SourceMap, YamlProblem, load_file

STEPS = ("storyboard", "image", "video")
SCENE_FIELDS = (
    "scene_description",
    "start_frame_prompt",
    "end_frame_prompt",
    "video_motion_prompt",
    "transition_notes",
    "caption",
)
#: Job keys whose mapping values merge key by key across layers.
MERGED_KEYS = ("vars", "stitch", "models", "templates", "finish")

BUILTIN_JOB: dict[str, Any] = {
    "style": "cinematic",
    "aspect_ratio": "16:9",
    "clip_duration": 4,
    "provider": "local",
    "vars": {},
    "templates": {},
    "models": {},
    "scene_overrides": [],
    "stitch": {"crossfade": 0, "audio": True},
}
DEFAULT_SCENES = 3
JOB_SUFFIXES = (".yaml", ".yml")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


#: How an override image whose shape differs from the job's frame is made to fit.
FITS = ("pad", "crop")


@dataclass(frozen=True)
class SceneOverride:
    """What a job replaces in one storyboard scene."""

    index: int
    fields: Mapping[str, str]
    duration: int | None = None
    start_image: Path | None = None
    end_image: Path | None = None
    #: The assets the scene shows, replacing the storyboard's list (None: keep it).
    assets: tuple[str, ...] | None = None
    #: `frames` or `assets` for this scene's clip (None: the job's choice).
    video_references: str | None = None
    #: `pad` or `crop` for an image whose aspect ratio differs from the job's, by image kind.
    fit: Mapping[str, str] = field(default_factory=dict)

    def image(self, kind: str) -> Path | None:
        """The `start` or `end` image, if the override gives one."""
        return self.start_image if kind == "start" else self.end_image

    def as_data(self, root: Path) -> dict[str, Any]:
        """The override as plain data, image paths relative to the project root."""
        out: dict[str, Any] = {"index": self.index, **self.fields}
        if self.duration:
            out["duration"] = self.duration
        for kind in ("start", "end"):
            image = self.image(kind)
            if image is not None:
                path = _relative(image, root)
                out[f"{kind}_image"] = (
                    {"path": path, "fit": self.fit[kind]} if kind in self.fit else path
                )
        if self.assets is not None:
            out["assets"] = list(self.assets)
        if self.video_references:
            out["video"] = {"references": self.video_references}
        return out


@dataclass(frozen=True)
class Job:
    """A fully resolved job: every default applied, every path checked."""

    name: str
    path: Path
    display: str
    root: Path
    prompt: str
    style: str
    aspect_ratio: str
    clip_duration: int
    scenes: int
    providers: Mapping[str, str]
    models: Mapping[str, str]
    vars: Mapping[str, Any]
    templates: Mapping[str, str]
    overrides: tuple[SceneOverride, ...]
    crossfade: float
    audio: bool
    seed: int | None
    negative_prompt: str | None
    generate_audio: bool | None
    resolution: str | None
    output: Path | None
    matrix: Mapping[str, Any]
    source: SourceMap = field(compare=False, repr=False)
    #: Where values this file does not write came from: a matrix entry, or vidpipe.yaml.
    own_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    matrix_origin: Mapping[str, Path_] = field(default_factory=dict, compare=False, repr=False)
    defaults_source: SourceMap | None = field(default=None, compare=False, repr=False)
    #: Every asset the job may show, by name (assets/, defaults, then the job's own).
    assets: Mapping[str, Asset] = field(default_factory=dict)
    #: How clips are made unless a scene says otherwise: from `frames` or from `assets`.
    video_references: str = "frames"
    #: Whether the job file (or a default) wrote `video:` (settings show it only then).
    video_set: bool = False
    #: The project's budgets (template rendering, images), from `limits:` in vidpipe.yaml.
    limits: Limits = field(default_factory=Limits, compare=False, repr=False)
    #: The resolved `finish:` (see vidpipe.spec.outputs), paths relative to the project root.
    finish: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: `output:` when it is a bucket URL (gs://…, s3://…) instead of a project path.
    output_url: str | None = None

    @property
    def folder(self) -> Path:
        """The folder job-relative paths are resolved from."""
        return self.path.parent

    @functools.cached_property
    def settings(self) -> Mapping[str, Any]:
        """The resolved fields as plain data, derived from the typed ones (one copy).

        It is the `job` template variable, part of the plan's digest and what the
        database records a project was made from.
        """
        out: dict[str, Any] = {
            "name": self.name,
            "prompt": self.prompt,
            "style": self.style,
            "aspect_ratio": self.aspect_ratio,
            "clip_duration": self.clip_duration,
            "scenes": self.scenes,
            "provider": dict(self.providers),
            "models": dict(self.models),
            "vars": copy.deepcopy(dict(self.vars)),
            "templates": dict(self.templates),
            "scene_overrides": [o.as_data(self.root) for o in self.overrides],
            "stitch": {"crossfade": self.crossfade, "audio": self.audio},
            "seed": self.seed,
            "negative_prompt": self.negative_prompt,
            "generate_audio": self.generate_audio,
            "resolution": self.resolution,
            "output": self.output_url
            or (_relative(self.output, self.root) if self.output else None),
            "matrix": dict(self.matrix),
            "finish": copy.deepcopy(dict(self.finish)) if self.finish else None,
        }
        # Only when used, so the settings (and plan digest) of jobs without assets stay as
        # they were.
        if self.assets:
            out["assets"] = {
                name: asset.data(self.root, self.aspect_ratio)
                for name, asset in sorted(self.assets.items())
            }
        if self.video_set:
            out["video"] = {"references": self.video_references}
        return out

    def problem(self, key: str | Path_, message: str) -> Problem:
        """A problem located where the value at `key` was written.

        That is the job file; or the matrix entry the value came from; or `defaults:` in
        vidpipe.yaml for a value the job inherits (else the top of the job file).
        """
        at: Path_ = (key,) if isinstance(key, str) else key
        top = str(at[0]) if at else ""
        if top in self.own_keys or not at:
            return self.source.problem(at, message)
        if top in self.matrix_origin:
            return self.source.problem(self.matrix_origin[top], message)
        defaults = self.defaults_source
        if defaults is not None and ("defaults", top) in defaults.values:
            return defaults.problem(("defaults", *at), f"{message} (a default for job {self.name})")
        return self.source.problem(at, message)

    def override(self, index: int) -> SceneOverride | None:
        """The override for scene `index`, if the job has one."""
        for item in self.overrides:
            if item.index == index:
                return item
        return None

    def video_mode(self, index: int) -> str:
        """`assets` when scene `index`'s clip is made from asset references, else `frames`."""
        item = self.override(index)
        if item is not None and item.video_references:
            return item.video_references
        return self.video_references

    def clip_seconds(self, index: int) -> int:
        """Duration of scene `index`'s clip (a scene override may change it)."""
        item = self.override(index)
        return item.duration if item and item.duration else self.clip_duration


def discover(paths: Sequence[str], config: Config, cwd: Path) -> tuple[list[Path], list[Problem]]:
    """Expand files, folders and globs into job files (default: the project's `jobs/`)."""
    if not paths:
        default = config.root / "jobs"
        if not default.is_dir():
            return [], [
                Problem(
                    config.display(default),
                    None,
                    None,
                    "no jobs folder here; give job files or run `vidpipe init` first",
                )
            ]
        paths = [str(default)]
    found: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        candidate = Path(raw) if Path(raw).is_absolute() else cwd / raw
        if candidate.is_dir():
            found.extend(
                sorted(p for p in candidate.rglob("*") if p.suffix in JOB_SUFFIXES and p.is_file())
            )
        elif candidate.is_file():
            found.append(candidate)
        elif glob.has_magic(raw):
            matches = sorted(Path(p) for p in glob.glob(str(candidate), recursive=True))
            files = [p for p in matches if p.is_file() and p.suffix in JOB_SUFFIXES]
            if not files:
                problems.append(Problem(raw, None, None, "no job files match this pattern"))
            found.extend(files)
        else:
            problems.append(Problem(raw, None, None, "no such file or folder"))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique, problems


def load_jobs(
    paths: Sequence[str],
    config: Config,
    *,
    cwd: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    known_providers: Iterable[str],
) -> list[Job]:
    """Load every job in `paths`, or raise :class:`JobFileError` listing every problem.

    `known_providers` are the provider names a job may use (the caller asks the
    provider registry: job files are read before, and without, any provider).
    """
    cwd = (cwd or Path.cwd()).resolve()
    files, problems = discover(paths, config, cwd)
    if not files and not problems:
        problems.append(Problem(", ".join(paths) or "jobs/", None, None, "no job files found"))
    jobs: list[Job] = []
    defaults = _checked_defaults(config, problems)
    catalog = project_assets(
        config, defaults.pop("assets", None) or {}, _image_check(config), problems
    )
    known = set(known_providers)
    flags = dict(flags or {})
    # Provider names that do not come from a job file are checked once here, not once per job.
    if "provider" in flags:
        if flags["provider"] not in known:
            problems.append(
                Problem("--provider", None, None, _unknown_provider(flags.pop("provider"), known))
            )
    else:
        problems.extend(_default_provider_problems(config, defaults, known))
    for path in files:
        loaded, found = load_job_file(path, config, defaults, flags, known, cwd, catalog)
        jobs.extend(loaded)
        problems.extend(found)
    problems.extend(_duplicate_names(jobs))
    if problems:
        raise JobFileError(problems)
    return jobs


def _checked_defaults(config: Config, problems: list[Problem]) -> dict[str, Any]:
    defaults = dict(config.defaults)
    if config.source is not None:
        found = [
            p
            for p in validate("job", defaults, config.source, prefix=("defaults",))
            if "missing required key" not in p.message
        ]
        if found:
            problems.extend(found)
            # Reported once, in vidpipe.yaml; layering them into every job would repeat each
            # problem once per job file, located in files that never mention the key.
            return {}
    return defaults


def _unknown_provider(name: str, known: Iterable[str], step: str | None = None) -> str:
    what = f"unknown provider {name!r}" + (f" for {step}" if step else "")
    return f"{what}; known providers: {', '.join(sorted(known))}"


def _provider_names(raw: Any) -> list[tuple[str | None, str]]:
    """(step or None for all steps, name) of a `provider` value, in the order written."""
    if isinstance(raw, str):
        return [(None, raw)]
    if isinstance(raw, Mapping):
        return [(step, name) for step, name in raw.items() if isinstance(name, str)]
    return []


def _default_provider_problems(
    config: Config, defaults: Mapping[str, Any], known: set[str]
) -> list[Problem]:
    problems = []
    for step, name in _provider_names(defaults.get("provider")):
        if name not in known:
            at: Path_ = ("defaults", "provider") if step is None else ("defaults", "provider", step)
            message = _unknown_provider(name, known, step)
            if config.source is not None and at in config.source.values:
                problems.append(config.source.problem(at, f"{message} (in defaults)"))
            else:
                variable = "VIDPIPE_" + "__".join(str(part).upper() for part in at)
                problems.append(Problem("environment", None, None, f"{message} (from {variable})"))
    return problems


def load_job_file(
    path: Path,
    config: Config,
    defaults: Mapping[str, Any],
    flags: Mapping[str, Any],
    known_providers: set[str],
    cwd: Path,
    catalog: Mapping[str, Asset] | None = None,
) -> tuple[list[Job], list[Problem]]:
    """Load one job file into one job, or several when it has a `matrix`.

    `catalog` holds the project's assets (assets/ and `defaults: assets:`).
    """
    shown = _display(path, cwd)
    try:
        doc = load_file(path, shown)
    except YamlProblem as exc:
        return [], [exc.problem]
    source = doc.source
    if doc.data is None:
        return [], [Problem(shown, 1, 1, "file is empty; a job needs at least a `prompt:`")]
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else "a single value"
        return [], [
            Problem(shown, 1, 1, f"a job file holds one mapping of keys (prompt: …), not {kind}")
        ]
    problems = validate("job", doc.data, source)
    if problems:
        return [], problems

    own: dict[str, Any] = doc.data
    matrix = own.get("matrix") or {}
    axes = [axis(name, values) for name, values in matrix.items()]
    count = math.prod(len(axis) for axis in axes)
    if count > config.limits.matrix_jobs:
        # Counted before anything is expanded: a product of a few lists can be millions.
        return [], [
            source.problem(
                ("matrix",),
                f"matrix expands to {count:,} jobs, more than the limit of "
                f"{config.limits.matrix_jobs:,} (`limits: matrix_jobs` in vidpipe.yaml); "
                "split it into several job files or raise the limit",
            )
        ]
    jobs: list[Job] = []
    for combo in itertools.product(*axes) if axes else [()]:
        chosen = {point.axis: point.value for point in combo}
        refused = [p for point in combo for p in point.refused(source)]
        if refused:
            problems.extend(p for p in refused if p not in problems)
            continue
        layered = _layer(BUILTIN_JOB, defaults, {k: v for k, v in own.items() if k != "matrix"})
        layered = _layer(layered, *(point.overlay for point in combo), flags)
        origin: dict[str, Path_] = {}
        for point in combo:
            origin.update(point.origins())

        def relocate(
            at: Path_, on_key: bool, combo: tuple[Point, ...] = combo
        ) -> tuple[Path_, bool]:
            if not at or written_in(own, at):
                return at, on_key
            for point in combo:
                moved = point.locate(at)
                if moved is not None:
                    return moved, on_key and point.named
            return at, on_key

        found = validate("job", layered, source, relocate=relocate)
        if found:
            problems.extend(found)
            continue
        suffix = "".join(f"-{point.label}" for point in combo)
        job, found = _resolve(
            path,
            shown,
            layered,
            own,
            suffix,
            chosen,
            origin,
            config,
            known_providers,
            source,
            catalog or {},
        )
        problems.extend(found)
        if job is not None:
            jobs.append(job)
    return jobs, problems


def _layer(*layers: Mapping[str, Any]) -> dict[str, Any]:
    # Layers later in the list win; MERGED_KEYS merge one level deep.
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if (
                key in MERGED_KEYS
                and isinstance(value, Mapping)
                and isinstance(out.get(key), Mapping)
            ):
                out[key] = {**out[key], **copy.deepcopy(dict(value))}
            else:
                out[key] = copy.deepcopy(value)
    return out


@dataclass
class _Resolving:
    """One job being resolved: where its values came from, and the problems found so far."""

    path: Path
    config: Config
    source: SourceMap
    own: Mapping[str, Any]
    origin: Mapping[str, Path_]
    problems: list[Problem] = field(default_factory=list)

    def at(self, *key: str | int) -> Path_:
        """Where the value at `key` was written: a value the file does not write (a default,
        a matrix value) is located at its origin."""
        if written_in(self.own, key):
            return key
        if key and key[0] in self.origin:
            top = self.origin[str(key[0])]
            return (*top, *key[1:]) if top[-1] == key[0] else top
        return ()

    def refuse(self, key: Path_, message: str) -> None:
        self.problems.append(self.source.problem(key, message))

    def image(self, value: str, key: Path_) -> Path | None:
        return _image(self.config, self.path, value, self.source, key, self.problems)


def _resolve(
    path: Path,
    shown: str,
    data: dict[str, Any],
    own: Mapping[str, Any],
    suffix: str,
    chosen: Mapping[str, Any],
    origin: Mapping[str, Path_],
    config: Config,
    known_providers: set[str],
    source: SourceMap,
    catalog: Mapping[str, Asset],
) -> tuple[Job | None, list[Problem]]:
    """One job from its layered data (built-in defaults, `defaults:`, the file, the matrix
    values, CLI flags), in named steps; every problem located where its value was written."""
    cx = _Resolving(path, config, source, own, origin)
    assets = {
        **catalog,
        **declared(
            own.get("assets") or {}, path, source, ("assets",), _image_check(config), cx.problems
        ),
    }
    name = _job_name(cx, data, suffix)
    clip, scenes = _scene_count(cx, data)
    providers = _step_providers(cx, data, chosen, known_providers)
    templates = _template_paths(cx, data)
    overrides = _scene_overrides(cx, data, scenes, assets)
    finish = _finish(cx, data)
    if cx.problems:
        return None, cx.problems

    stitch = data["stitch"]
    job = Job(
        name=name,
        path=path,
        display=shown,
        root=config.root,
        prompt=data["prompt"],
        style=data["style"],
        aspect_ratio=data["aspect_ratio"],
        clip_duration=clip,
        scenes=scenes,
        providers=providers,
        models=dict(data.get("models") or {}),
        vars=data.get("vars") or {},
        templates=templates,
        overrides=tuple(sorted(overrides, key=lambda o: o.index)),
        crossfade=float(stitch.get("crossfade", 0)),
        audio=bool(stitch.get("audio", True)),
        seed=data.get("seed"),
        negative_prompt=data.get("negative_prompt"),
        generate_audio=data.get("generate_audio"),
        resolution=data.get("resolution"),
        output=None,
        matrix=dict(chosen),
        source=source,
        own_keys=frozenset(own),
        matrix_origin=dict(origin),
        defaults_source=config.source,
        limits=config.limits,
        finish=finish,
        assets=assets,
        video_references=(data.get("video") or {}).get("references", "frames"),
        video_set=bool(data.get("video")),
    )
    if data.get("output"):
        job = _with_output(cx, data["output"], job)
    return (job, []) if not cx.problems else (None, cx.problems)


def _job_name(cx: _Resolving, data: Mapping[str, Any], suffix: str) -> str:
    name = f"{data.get('name') or cx.path.stem}{suffix}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
        cx.refuse(
            cx.at("name"),
            f"job name {name!r} (from the file name) is not a valid job name; add "
            "`name:` with 1-64 lowercase letters, digits, '.', '_' or '-'",
        )
    return name


def _scene_count(cx: _Resolving, data: Mapping[str, Any]) -> tuple[int, int]:
    """The clip length and the scene count (`scenes`, or `duration` / `clip_duration`)."""
    if "scenes" in cx.own and "duration" in cx.own:
        cx.refuse(cx.at("duration"), "give `scenes` or `duration`, not both")
    clip = int(data["clip_duration"])
    if "duration" in data and "scenes" not in cx.own:
        scenes = max(1, round(float(data["duration"]) / clip))
    else:
        scenes = int(data.get("scenes", DEFAULT_SCENES))
    if scenes > cx.config.max_scenes:
        cx.refuse(
            cx.at("scenes") if "scenes" in data else cx.at("duration"),
            f"{scenes} scenes is more than max_scenes ({cx.config.max_scenes}); lower it or "
            "raise max_scenes in vidpipe.yaml",
        )
    return clip, scenes


def _step_providers(
    cx: _Resolving, data: Mapping[str, Any], chosen: Mapping[str, Any], known: set[str]
) -> dict[str, str]:
    """The provider of each step (one name for all, or one per step)."""
    raw = data["provider"]
    default = cx.config.defaults.get("provider", "local")
    if not isinstance(default, str):
        default = "local"
    if isinstance(raw, str):
        providers = dict.fromkeys(STEPS, raw)
    else:
        providers = {step: raw.get(step, default) for step in STEPS}
    if "provider" in cx.own or "provider" in chosen:
        # Names from defaults and --provider are checked once, by load_jobs; a valid
        # --provider replaces the job's value, so there is nothing left to refuse here.
        for step, name in _provider_names(raw):
            if name not in known:
                loc = cx.at("provider") if step is None else cx.at("provider", step)
                cx.refuse(loc, _unknown_provider(name, known, step))
    return providers


def _template_paths(cx: _Resolving, data: Mapping[str, Any]) -> dict[str, str]:
    """`templates:`: relative, inside the project, and found on the search path."""
    templates = dict(data.get("templates") or {})
    root, folder = cx.config.root, cx.path.parent
    for key, value in templates.items():
        where = cx.at("templates", key)
        if Path(value).is_absolute():
            cx.refuse(where, f"template path {value!r} must be relative, not absolute")
        elif not _stays_inside(root, folder / value):
            cx.refuse(where, f"template path {value!r} leaves the project folder {root}")
        elif not _template_exists(root, folder, value):
            cx.refuse(
                where,
                f"template {value!r} not found in {cx.config.display(folder)}/, templates/ or "
                "vidpipe's built-in templates; create it or fix the name",
            )
    return templates


def _scene_overrides(
    cx: _Resolving, data: Mapping[str, Any], scenes: int, assets: Mapping[str, Asset]
) -> list[SceneOverride]:
    overrides: list[SceneOverride] = []
    seen: set[int] = set()
    for i, item in enumerate(data.get("scene_overrides") or []):
        index = int(item["index"])
        loc = cx.at("scene_overrides", i, "index")
        if index >= scenes:
            cx.refuse(
                loc,
                f"scene_overrides[{i}].index is {index}, but the job has {scenes} scene(s) "
                f"(indexes 0 to {scenes - 1})",
            )
        if index in seen:
            cx.refuse(loc, f"scene {index} is overridden twice")
        seen.add(index)
        images: dict[str, Path | None] = {}
        fit: dict[str, str] = {}
        for kind in ("start_image", "end_image"):
            images[kind] = None
            value = item.get(kind)
            loc = cx.at("scene_overrides", i, kind)
            if isinstance(value, Mapping):
                if value.get("fit"):
                    fit[kind.removesuffix("_image")] = value["fit"]
                value, loc = value["path"], (*loc, "path")
            if value:
                images[kind] = cx.image(value, loc)
        scene_assets = item.get("assets")
        for j, asset_name in enumerate(scene_assets or ()):
            if asset_name not in assets:
                cx.refuse(
                    cx.at("scene_overrides", i, "assets", j),
                    f"unknown asset {asset_name!r}; declared assets: {declared_list(assets)}",
                )
        overrides.append(
            SceneOverride(
                index=index,
                fields={k: item[k] for k in SCENE_FIELDS if k in item},
                duration=item.get("duration"),
                start_image=images["start_image"],
                end_image=images["end_image"],
                fit=fit,
                assets=tuple(dict.fromkeys(scene_assets)) if scene_assets is not None else None,
                video_references=(item.get("video") or {}).get("references"),
            )
        )
    return overrides


def _finish(cx: _Resolving, data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """`finish:` with its files checked (see vidpipe.spec.outputs)."""
    from vidpipe.spec.outputs import resolve_finish

    finish, found = resolve_finish(
        data.get("finish"),
        data["aspect_ratio"],
        lambda key, message: cx.source.problem(cx.at(*key), message),
        lambda value, key, what: _inside(
            cx.config, cx.path, value, cx.source, cx.at(*key), what, cx.problems
        ),
        cx.config.display,
        lambda value, key: cx.image(value, cx.at(*key)),
    )
    cx.problems.extend(found)
    return finish


def _with_output(cx: _Resolving, template: str, job: Job) -> Job:
    """`output:` is a template over the job's resolved fields (job.name, job.matrix…)."""
    from vidpipe.spec.outputs import render_output

    try:
        rendered = render_output(template, {"job": job.settings, "vars": job.settings["vars"]})
    except ValueError as exc:
        cx.refuse(cx.at("output"), str(exc))
        return job
    from vidpipe.objectstore import is_url, url_problem

    if is_url(rendered):
        problem = url_problem(rendered, "output")
        if problem:
            cx.refuse(cx.at("output"), problem)
            return job
        return dataclasses.replace(job, output_url=rendered)
    output = _inside(
        cx.config, cx.path, rendered, cx.source, cx.at("output"), "output", cx.problems
    )
    return dataclasses.replace(job, output=output) if output is not None else job


def _image_check(config: Config) -> Any:
    """Checks an image path written in a file (job, asset file or vidpipe.yaml)."""

    def check(
        declaring_file: Path, value: str, source: SourceMap, loc: Path_, problems: list[Problem]
    ) -> Path | None:
        return _image(config, declaring_file, value, source, loc, problems)

    return check


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _template_exists(root: Path, job_folder: Path, name: str) -> bool:
    """Whether `name` is found where templates are searched (see vidpipe.prompts)."""
    from vidpipe.prompts import builtin_dir

    return any(
        (folder / name).is_file() for folder in (job_folder, root / "templates", builtin_dir())
    )


def _stays_inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _inside(
    config: Config,
    job_path: Path,
    value: str,
    source: SourceMap,
    loc: Path_,
    what: str,
    problems: list[Problem],
) -> Path | None:
    if Path(value).is_absolute():
        problems.append(
            source.problem(
                loc, f"{what} path {value!r} must be relative to the job file, not absolute"
            )
        )
        return None
    target = (job_path.parent / value).resolve()
    if not _stays_inside(config.root, target):
        problems.append(
            source.problem(loc, f"{what} path {value!r} leaves the project folder {config.root}")
        )
        return None
    return target


def _image(
    config: Config,
    job_path: Path,
    value: str,
    source: SourceMap,
    loc: Path_,
    problems: list[Problem],
) -> Path | None:
    target = _inside(config, job_path, value, source, loc, "image", problems)
    if target is None:
        return None
    if not target.is_file():
        folder = config.display(job_path.parent)
        problems.append(
            source.problem(
                loc,
                f"image {value!r} does not exist; image paths are relative to the job file's "
                f"folder ({folder}/)",
            )
        )
        return None
    if target.suffix.lower() not in _IMAGE_SUFFIXES:
        problems.append(source.problem(loc, f"image {value!r} must be a .png, .jpg or .jpeg file"))
        return None
    problem = image_problem(target, config.limits.image_pixels)
    if problem:
        problems.append(source.problem(loc, f"image {value!r} {problem}"))
        return None
    return target


def image_problem(path: Path, max_pixels: int) -> str:
    """Why an image file cannot be used ('' if it can): format, size, then a full decode.

    The pixel count comes from the header before anything is decoded (a 20000×20000 PNG
    is a few kilobytes that decode to 1.2 GB), and the full decode happens here, at
    validate time: checksums can be valid over compressed data that does not decode.
    """
    from PIL import Image, UnidentifiedImageError

    limit = f"the limit of {max_pixels:,} pixels (`limits: image_pixels` in vidpipe.yaml)"
    try:
        with Image.open(path) as img:
            fmt = img.format
            width, height = img.size
            img.verify()
        if fmt not in ("PNG", "JPEG"):
            return f"is {fmt}, not PNG or JPEG"
        if width * height > max_pixels:
            return f"is {width}×{height} = {width * height:,} pixels, more than {limit}"
        with Image.open(path) as img:
            img.load()
    except Image.DecompressionBombError:
        return f"has more pixels than {limit}"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return "is not a readable PNG or JPEG image"
    return ""


def _duplicate_names(jobs: Sequence[Job]) -> list[Problem]:
    by_name: dict[str, list[Job]] = {}
    for job in jobs:
        by_name.setdefault(job.name, []).append(job)
    problems = []
    for name, same in by_name.items():
        if len(same) < 2:
            continue
        files = ", ".join(dict.fromkeys(j.display for j in same))
        if len({j.display for j in same}) == 1 and same[0].matrix:
            # One file: two matrix values slugify to the same suffix ("Film Noir", "film-noir").
            values = "; ".join(
                ", ".join(f"{k}={v!r}" for k, v in job.matrix.items()) for job in same
            )
            problems.append(
                same[0].problem(
                    "matrix",
                    f"matrix gives {len(same)} jobs the name {name!r} ({values}); "
                    "make the values differ in their letters or digits",
                )
            )
            continue
        for job in same:
            problems.append(
                job.problem(
                    "name",
                    f"job name {name!r} is used more than once in this batch ({files}); give each "
                    "job a different `name:`",
                )
            )
    return problems


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.resolve().relative_to(cwd).as_posix()
    except ValueError:
        return str(path)
