"""What an unchanged batch compiled to, recognised from its inputs without compiling it.

Compiling reads job files, vidpipe.yaml, the environment, templates (and what they
include), images and the finish step's files, then renders every template and runs every
check. :func:`record` notes, after a compile that found no problem, every file it read
(by content), every file whose absence it relied on (a template the job's folder would
shadow), the folders it listed, and a summary of each plan: name, digest and the settings
that `stitch` and `run` read. :func:`recall` hands that summary back when every one of
those inputs is as it was, so `validate`, `stitch` and an unchanged `run` skip the Jinja
rendering and the checks; any difference at all means a full compile.

The key of a memo covers what no file list can: vidpipe's own code (each module's size and
time), the installed packages (their folders' times), the resolved configuration and the
bytes of vidpipe.yaml, the environment's settings and credentials (hashed, never stored),
the command's paths and `--provider`, the working folder and the date (a model may retire
overnight). Memos live in the user cache (vidpipe.usercache): a missing or unreadable one
only costs a compile. Failed compiles are never remembered, so every error is found afresh.

This module imports only the standard library until it records: reading a memo must stay
cheaper than the compile it replaces.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from vidpipe.plan.model import Plan
    from vidpipe.spec.config import Config

#: Raised whenever the memo's shape or meaning changes.
FORMAT = "1"
JOB_SUFFIXES = (".yaml", ".yml")
_ENV_PREFIXES = ("VIDPIPE_", "GOOGLE_", "GEMINI_")


class JobMemo(NamedTuple):
    """One compiled job as remembered: enough for `validate`, `stitch` and an unchanged run.

    It reads like a :class:`~vidpipe.plan.model.Plan` where those commands read one
    (`name`, `digest`, `crossfade`, `audio`, `output`, `settings["finish"]`). The records
    here are NamedTuples and a plain class, not dataclasses: a dataclass compiles its
    methods from source at import, which costs more than reading a memo.
    """

    name: str
    source: str  # the job file as displayed
    digest: str
    scenes: int
    aspect_ratio: str
    providers: Mapping[str, str]
    models: Mapping[str, str]
    output: str | None
    crossfade: float
    audio: bool
    finish: Any = None
    estimate_usd: float = 0.0

    @property
    def settings(self) -> Mapping[str, Any]:
        return {"finish": self.finish} if self.finish is not None else {}


class Memo(NamedTuple):
    jobs: list[JobMemo]
    warnings: list[str]


# -- the key ------------------------------------------------------------------------------


def _code() -> str:
    """Size and time of every file of the vidpipe package (code, schemas, templates)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            st = os.stat(os.path.join(folder, name))
            digest.update(f"{folder}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _installed() -> str:
    """The times of the folders packages are installed in: an install or upgrade (a new
    provider plugin, another Jinja2) changes them."""
    out = []
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")):
            try:
                out.append(f"{entry}\0{os.stat(entry).st_mtime_ns}")
            except OSError:
                continue
    return "\n".join(out)


def _environment() -> str:
    digest = hashlib.sha256()
    for name in sorted(os.environ):
        if name.startswith(_ENV_PREFIXES):
            digest.update(f"{name}\0{os.environ[name]}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _key(config: Config, paths: Sequence[str], provider: str | None, cwd: Path) -> Path:
    from vidpipe.usercache import entry

    config_bytes = _content(config.path) if config.path is not None else None
    return entry(
        "plans",
        FORMAT,
        repr(config),
        str(config_bytes),
        _environment(),
        json.dumps([list(paths), provider, str(cwd.resolve())]),
        dt.datetime.now(dt.UTC).date().isoformat(),
        _code(),
        _installed(),
    )


# -- what a compile read ------------------------------------------------------------------


def _content(path: Path | str) -> str | None:
    """sha256 of a file's bytes; None when it is not a readable file."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def _tree(folder: Path | str) -> str | None:
    """Every name under `folder` (recursively), or None when it is not a folder."""
    if not os.path.isdir(folder):
        return None
    names: list[str] = []
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        names.extend(os.path.join(parent, n) for n in (*dirs, *sorted(files)))
    return hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def _listing(pattern: str) -> str:
    found = sorted(glob.glob(pattern, recursive=True))
    return hashlib.sha256("\n".join(found).encode("utf-8", "surrogateescape")).hexdigest()


class _Inputs:
    """Files by content (None: must not be a file), folders by their names, glob results."""

    def __init__(
        self,
        files: dict[str, str | None] | None = None,
        trees: dict[str, str | None] | None = None,
        globs: dict[str, str] | None = None,
    ) -> None:
        self.files = files if files is not None else {}
        self.trees = trees if trees is not None else {}
        self.globs = globs if globs is not None else {}

    def file(self, path: Path | str) -> None:
        key = str(path)
        if key not in self.files:
            self.files[key] = _content(key)

    def tree(self, folder: Path | str) -> None:
        key = str(folder)
        if key not in self.trees:
            self.trees[key] = _tree(key)

    def unchanged(self) -> bool:
        return (
            all(_content(p) == sha for p, sha in self.files.items())
            and all(_tree(p) == sha for p, sha in self.trees.items())
            and all(_listing(p) == sha for p, sha in self.globs.items())
        )

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "trees": self.trees, "globs": self.globs}


def _read(plans: Sequence[Plan], config: Config, paths: Sequence[str], cwd: Path) -> _Inputs:
    """Everything a compile of `paths` read or relied on being absent."""
    from vidpipe.prompts import prompts_for
    from vidpipe.spec.outputs import finish_files

    inputs = _Inputs()
    for raw in paths or [str(config.root / "jobs")]:
        candidate = Path(raw) if Path(raw).is_absolute() else cwd / raw
        if candidate.is_dir():
            inputs.tree(candidate)
        elif candidate.is_file():
            inputs.file(candidate.resolve())
        else:
            inputs.globs[str(candidate)] = _listing(str(candidate))
    # The output check reads every job file of jobs/; asset files are read by every job.
    inputs.tree(config.root / "jobs")
    inputs.tree(config.root / "assets")
    assets = config.root / "assets"
    if assets.is_dir():
        for path in sorted(assets.iterdir()):
            inputs.file(path)
    for plan in plans:
        job = plan.job
        inputs.file(job.path.resolve())
        for path, present in prompts_for(job).sources():
            inputs.files.setdefault(str(path), _content(path) if present else None)
        for frame in plan.frames:
            if frame.image is not None:
                inputs.file(frame.image)
        for asset in job.assets.values():
            for image in (*asset.images, *(p for ps in asset.by_ratio.values() for p in ps)):
                inputs.file(image)
        for name in finish_files(job.finish):
            inputs.file(job.root / name)
        if plan.output:
            # What the output may not overwrite: the job's folder (its templates) and
            # whether the target is a folder.
            inputs.tree(job.folder)
            inputs.tree(config.root / plan.output)
    return inputs


# -- record and recall --------------------------------------------------------------------


def summary(plan: Plan) -> JobMemo:
    """What is remembered of a compiled plan."""
    return JobMemo(
        name=plan.name,
        source=plan.job.display,
        digest=plan.digest,
        scenes=plan.job.scenes,
        aspect_ratio=plan.job.aspect_ratio,
        providers=dict(plan.providers),
        models=dict(plan.models),
        output=plan.output,
        crossfade=plan.crossfade,
        audio=plan.audio,
        finish=plan.settings.get("finish"),
        estimate_usd=plan.estimate.cost_usd,
    )


def record(
    plans: Sequence[Plan],
    warnings: Sequence[str],
    config: Config,
    paths: Sequence[str],
    provider: str | None,
    cwd: Path,
) -> None:
    """Remember a compile of `paths` that found no problem (see the module docstring)."""
    from vidpipe.usercache import remember

    jobs = [summary(plan)._asdict() for plan in plans]
    try:
        text = json.dumps(jobs, allow_nan=False)
    except (TypeError, ValueError):
        return  # a setting JSON cannot carry: not remembered
    if json.loads(text) != jobs:
        return  # nor one it would carry changed (a tuple, a key that is not text)
    inputs = _read(plans, config, paths, cwd)
    data = {"inputs": inputs.as_dict(), "jobs": jobs, "warnings": list(warnings)}
    remember(_key(config, paths, provider, cwd), json.dumps(data).encode("utf-8"))


def recall(config: Config, paths: Sequence[str], provider: str | None, cwd: Path) -> Memo | None:
    """The memo of an earlier compile of `paths` whose inputs are all unchanged, else None."""
    try:
        data = json.loads(_key(config, paths, provider, cwd).read_bytes())
        raw = data["inputs"]
        inputs = _Inputs(dict(raw["files"]), dict(raw["trees"]), dict(raw["globs"]))
        if not inputs.unchanged():
            return None
        return Memo([JobMemo(**job) for job in data["jobs"]], list(data["warnings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
