"""Project configuration, resolved once: built-ins → vidpipe.yaml → environment → CLI flags.

The project root is the folder that holds `vidpipe.yaml` (found in the working directory
or its parents, or given with `--config`), else the working directory. Every setting can
come from the environment as ``VIDPIPE_`` + its upper-cased path joined by ``__``
(``VIDPIPE_CONCURRENCY__JOBS=8``, ``VIDPIPE_DEFAULTS__STYLE=noir``); values are read as
YAML scalars so numbers and booleans keep their type.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.errors import ConfigError
from vidpipe.spec.schema import validate
from vidpipe.spec.yamlsource import SourceMap, YamlProblem, load_file, not_text, printable

if TYPE_CHECKING:
    from vidpipe.catalog import Catalog
    from vidpipe.objectstore import ObjectStore

CONFIG_NAME = "vidpipe.yaml"
ENV_PREFIX = "VIDPIPE_"

BUILTIN: dict[str, Any] = {
    "defaults": {},
    "database": "sqlite:///vidpipe.db",
    "artifacts_dir": "tmp",
    # Bucket mode only (artifacts_dir: gs://… or s3://…): the local working folder, and
    # its size bound (least recently used files safely in the bucket are evicted).
    "scratch_dir": None,
    "scratch_max_bytes": "20GB",
    "max_scenes": 15,
    "concurrency": {"jobs": 4},
    "rate_limits": {"text": 60, "image": 20, "video": 10},
    "google": {
        "project": None,
        "location": None,
        "base_url": None,
        "poll_interval": 10,
        "poll_timeout": 600,
        "max_retries": 5,
        "retry_base_delay": 1.0,
        "output_gcs_uri": None,
        "locations": {"text": None, "image": None, "video": None},
    },
    "lease_seconds": 60,
    "pricing": {},
    "models": {},
    "limits": {
        "template_seconds": 5.0,
        "template_output_chars": 200_000,
        "image_pixels": 40_000_000,
        "matrix_jobs": 1000,
    },
}


@dataclass(frozen=True)
class Limits:
    """Budgets that keep validation from hanging or exhausting memory (`limits:`).

    A template renders for at most `template_seconds` and writes at most
    `template_output_chars` characters (string and list products and loop iterations are
    checked as they happen, not after); an image may have at most `image_pixels` pixels
    (read from its header before anything is decoded); a `matrix` may expand to at most
    `matrix_jobs` jobs (counted before it is expanded).
    """

    template_seconds: float = 5.0
    template_output_chars: int = 200_000
    image_pixels: int = 40_000_000
    matrix_jobs: int = 1000


@dataclass(frozen=True)
class GoogleSettings:
    """The `google:` section; credentials are never part of it (environment only)."""

    project: str | None = None
    location: str | None = None
    base_url: str | None = None
    poll_interval: float = 10
    poll_timeout: float = 600
    max_retries: int = 5
    retry_base_delay: float = 1.0
    output_gcs_uri: str | None = None
    #: Location per rate kind (text, image, video) overriding the catalog's per model.
    locations: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """Resolved project configuration."""

    root: Path
    path: Path | None
    defaults: Mapping[str, Any]
    database: str
    artifacts_dir: Path
    max_scenes: int
    jobs: int
    rate_limits: Mapping[str, float]
    google: GoogleSettings
    pricing: Mapping[str, Mapping[str, float]]
    lease_seconds: float
    #: `models:` from vidpipe.yaml and the environment (validated), and where they came from.
    model_entries: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    models_origin: str = field(default="vidpipe.yaml", compare=False, repr=False)
    limits: Limits = field(default_factory=Limits)
    #: Where each default came from, to locate errors in values taken from `defaults:`.
    source: SourceMap | None = field(default=None, compare=False, repr=False)
    #: `artifacts_dir` as given when it is a bucket URL (gs://…, s3://…); `artifacts_dir`
    #: is then the local scratch folder that holds working copies.
    artifacts_url: str | None = None
    #: The bound of the scratch folder in bucket mode (None: unbounded).
    scratch_max_bytes: int | None = None

    @cached_property
    def catalog(self) -> Catalog:
        """The model catalog: the built-in one with `models:` laid over it. Built when first
        asked for: commands that never look at a model (`stitch`, `list`) skip it."""
        from vidpipe import catalog

        if self.model_entries:
            return catalog.build(self.model_entries, origin=self.models_origin)
        return catalog.builtin()

    def display(self, path: Path) -> str:
        """`path` relative to the project root when inside it (how we print paths)."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def address(self, path: Path) -> str:
        """Where an artifact (a path under `artifacts_dir`) is kept, as users should see
        it: its bucket URL in bucket mode, else :meth:`display`."""
        if self.artifacts_url is not None:
            with contextlib.suppress(ValueError):
                return self.objects.address(path)
        return self.display(path)

    @cached_property
    def objects(self) -> ObjectStore:
        """The artifacts' objects: the local folder, and in bucket mode the bucket."""
        from vidpipe.objectstore import ObjectStore

        return ObjectStore(self.artifacts_dir, self.artifacts_url, self.scratch_max_bytes)


def find_config(start: Path) -> Path | None:
    """The nearest `vidpipe.yaml` in `start` or its parents."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(
    *,
    cwd: Path | None = None,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Resolve the configuration for a project.

    `overrides` holds CLI flags as config paths (`{"database": url, "concurrency": {"jobs": 8}}`).
    """
    cwd = (cwd or Path.cwd()).resolve()
    env = os.environ if env is None else env
    if path is not None:
        path = (cwd / path).resolve()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; check the --config path")
    else:
        path = find_config(cwd)
    root = path.parent if path is not None else cwd

    data = copy.deepcopy(BUILTIN)
    source = None
    if path is not None:
        shown = _display(path, cwd)
        try:
            doc = load_file(path, shown)
        except YamlProblem as exc:
            raise ConfigError(str(exc.problem)) from None
        source = doc.source
        if doc.data is None:
            file_data: dict[str, Any] = {}
        elif not isinstance(doc.data, dict):
            raise ConfigError(f"{shown}:1:1: vidpipe.yaml must be a mapping of settings")
        else:
            file_data = doc.data
        problems = validate("config", file_data, doc.source)
        if problems:
            raise ConfigError("\n".join(str(p) for p in sorted(problems)))
        _merge(data, file_data)

    settings = _env_settings(env)
    env_data = _from_env(settings)
    if env_data:
        messages = _env_problems(settings)
        if messages:
            raise ConfigError("\n".join(messages))
        _merge(data, env_data)
    if overrides:
        _merge(data, dict(overrides))
    if data["models"]:
        # Checked after the environment is merged in, with the file's positions (a value
        # set only from the environment is located at the top of the file).
        from vidpipe.catalog import user_problems

        problems = user_problems(data["models"], source or SourceMap("environment"))
        if problems:
            raise ConfigError("\n".join(str(p) for p in sorted(problems)))

    g = data["google"]
    artifacts_dir, artifacts_url, scratch_max = _artifacts(data, root, env)
    return Config(
        root=root,
        path=path,
        defaults=data["defaults"],
        database=_database_url(data["database"], root),
        artifacts_dir=artifacts_dir,
        artifacts_url=artifacts_url,
        scratch_max_bytes=scratch_max,
        max_scenes=int(data["max_scenes"]),
        jobs=int(data["concurrency"]["jobs"]),
        rate_limits={k: float(v) for k, v in data["rate_limits"].items()},
        google=GoogleSettings(
            project=g.get("project"),
            location=g.get("location"),
            base_url=g.get("base_url"),
            poll_interval=float(g["poll_interval"]),
            poll_timeout=float(g["poll_timeout"]),
            max_retries=int(g["max_retries"]),
            retry_base_delay=float(g["retry_base_delay"]),
            output_gcs_uri=g.get("output_gcs_uri"),
            locations=dict(g.get("locations") or {}),
        ),
        pricing=data["pricing"],
        lease_seconds=float(data["lease_seconds"]),
        model_entries=data["models"],
        models_origin=_display(path, cwd) if path else "environment",
        limits=Limits(
            template_seconds=float(data["limits"]["template_seconds"]),
            template_output_chars=int(data["limits"]["template_output_chars"]),
            image_pixels=int(data["limits"]["image_pixels"]),
            matrix_jobs=int(data["limits"]["matrix_jobs"]),
        ),
        source=source,
    )


def _artifacts(
    data: Mapping[str, Any], root: Path, env: Mapping[str, str]
) -> tuple[Path, str | None, int | None]:
    """The local artifacts folder, the bucket URL (bucket mode) and the scratch bound.

    A bucket URL is checked here (scheme, bucket name, library installed) so every
    command refuses it the same way; reaching the bucket is checked by the commands that
    use it (`ObjectStore.check`).
    """
    from vidpipe.objectstore import is_url, parse_size, url_problem

    value = str(data["artifacts_dir"])
    if not is_url(value):
        return (root / value).resolve(), None, None
    problem = url_problem(value, "artifacts_dir")
    if problem:
        raise ConfigError(problem)
    try:
        bound = parse_size(data.get("scratch_max_bytes"))
    except ValueError as exc:
        raise ConfigError(f"scratch_max_bytes: {exc}") from None
    url = value.rstrip("/")
    if data.get("scratch_dir"):
        scratch = (root / str(data["scratch_dir"])).expanduser().resolve()
    else:
        # One scratch folder per bucket URL under the user's cache, shared by the projects
        # (and runs) of this user that use the same bucket.
        base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        slug = re.sub(r"[^a-z0-9]+", "-", url.split("://", 1)[1].lower()).strip("-")[:40]
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
        scratch = Path(base) / "vidpipe" / "scratch" / f"{slug}-{digest}"
    return scratch, url, bound


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Deep-merge `extra` into `base`: mappings key by key, everything else replaced."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _env_settings(env: Mapping[str, str]) -> list[tuple[str, str, list[str], Any]]:
    """Every `VIDPIPE_…` variable as (name, raw text, config path, value)."""
    out = []
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        if not_text(name) or not_text(raw):
            raise ConfigError(
                f"environment variable {printable(name)} holds bytes that are not UTF-8 text "
                f"({not_text(name) or not_text(raw)}); fix or unset it"
            )
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(parts):
            raise ConfigError(f"environment variable {name} has an empty part between '__'")
        out.append((name, raw, parts, _env_value(raw)))
    return out


_NULL = re.compile(r"~|null", re.IGNORECASE)
_BOOL = re.compile(r"true|false", re.IGNORECASE)
_INT = re.compile(r"[-+]?(?:[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


def _env_value(raw: str) -> Any:
    """An environment value as a YAML 1.2 core scalar: null, bool, int, float, else text.

    Not YAML 1.1 (`yaml.safe_load`): it reads `9:16` as the sexagesimal 556, `off` as
    false and `2024-01-01` as a date, none of which a user setting a variable means.
    """
    text = raw.strip()
    if not text or _NULL.fullmatch(text):
        return None
    if _BOOL.fullmatch(text):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text, 0) if text.lstrip("+-")[:2] in ("0x", "0o") else int(text)
    if _FLOAT.fullmatch(text) and math.isfinite(number := float(text)):
        return number  # 1e999 (infinity) stays text, which the schema refuses
    return raw


def _from_env(settings: list[tuple[str, str, list[str], Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, _raw, parts, value in settings:
        node = out
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"environment variables {name} and VIDPIPE_{part.upper()} clash")
            node = nxt
        node[parts[-1]] = value
    return out


def _env_problems(settings: list[tuple[str, str, list[str], Any]]) -> list[str]:
    """Check each variable on its own, so every message can name the variable to fix.

    `VIDPIPE_DEFAULTS__…` values are job keys: they are checked against the job schema
    here, or they would surface later as errors in every job file, located in files that
    never mention them.
    """
    messages = []
    for name, raw, parts, value in settings:
        if parts[0] == "defaults" and len(parts) > 1:
            schema, data = "job", _nest(parts[1:], value)
        else:
            schema, data = "config", _nest(parts, value)
        for problem in validate(schema, data, SourceMap("environment")):
            if "missing required key" in problem.message:
                continue
            advice = "" if problem.message.endswith("?") else "; fix or unset it"
            messages.append(f"environment variable {name}={raw!r}: {problem.message}{advice}")
    return messages


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        data = {part: data}
    return data


def _database_url(url: str, root: Path) -> str:
    """Make relative SQLite paths relative to the project root, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix) :]
        if rest and not rest.startswith(":memory:"):
            return prefix + str((root / rest).resolve())
    return url
