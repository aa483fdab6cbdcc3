"""Assets: the characters, products, locations, logos and styles a video keeps showing.

An asset is declared once and kept in git, in one of three places (later wins by name):

1. the project's ``assets/`` folder, one asset per ``*.yaml`` file (its name is the file
   name, or ``name:``), shared by every job;
2. ``defaults: assets:`` in ``vidpipe.yaml``;
3. ``assets:`` in a job file.

Each has a ``kind``, a ``description`` and reference ``images`` (paths relative to the file
that declares the asset, checked like override images), optionally one list per aspect
ratio. Scenes name the assets they show (the storyboard's per-scene ``assets``, or a
``scene_overrides`` entry); their images then go with every keyframe request of the scene.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe.errors import Problem
from vidpipe.spec.config import Config
from vidpipe.spec.schema import validate
from vidpipe.spec.yamlsource import Path_, SourceMap, YamlProblem, load_file

KINDS = ("character", "product", "location", "logo", "style")
#: The order reference images are sent in (and kept when a model takes fewer): who is in
#: the shot first, then what is sold, the brand mark, where it happens, how it looks.
PRIORITY = {"character": 0, "product": 1, "logo": 2, "location": 3, "style": 4}
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ASSET_SUFFIXES = (".yaml", ".yml")

#: Checks one image path: (declaring file, value, source, location, problems) → path or None.
ImageCheck = Callable[[Path, str, SourceMap, Path_, list[Problem]], Path | None]


@dataclass(frozen=True)
class Asset:
    """One declared asset, its image paths resolved and checked."""

    name: str
    kind: str
    description: str
    images: tuple[Path, ...]
    by_ratio: Mapping[str, tuple[Path, ...]]
    #: Where it was declared (for messages and `status`).
    origin: str
    #: Where each image path was written, to locate a problem with the image itself.
    written: Mapping[Path, Problem] = field(default_factory=dict, compare=False, repr=False)

    def image_problem(self, path: Path, message: str) -> Problem:
        """A problem located where `path` was written (else at the declaring file)."""
        at = self.written.get(path)
        if at is None:
            return Problem(self.origin, None, None, message)
        return Problem(at.path, at.line, at.column, message)

    def images_for(self, aspect_ratio: str) -> tuple[Path, ...]:
        """The reference images for frames of `aspect_ratio` (its own list, else the default)."""
        return self.by_ratio.get(aspect_ratio, self.images)

    def needs_sheet(self, aspect_ratio: str) -> bool:
        """Whether a reference sheet must be generated: a description and no image."""
        return not self.images_for(aspect_ratio) and bool(self.description)

    def data(self, root: Path, aspect_ratio: str) -> dict[str, Any]:
        """What templates and the job's settings see of it (paths relative to `root`)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "images": [_relative(p, root) for p in self.images_for(aspect_ratio)],
        }


def declared(
    raw: Mapping[str, Any],
    declaring_file: Path,
    source: SourceMap,
    prefix: Path_,
    check_image: ImageCheck,
    problems: list[Problem],
) -> dict[str, Asset]:
    """Assets from a schema-valid `assets:` mapping written in `declaring_file`."""
    out: dict[str, Asset] = {}
    for name, item in raw.items():
        asset = _asset(name, item, declaring_file, source, (*prefix, name), check_image, problems)
        if asset is not None:
            out[name] = asset
    return out


def _asset(
    name: str,
    item: Mapping[str, Any],
    declaring_file: Path,
    source: SourceMap,
    at: Path_,
    check_image: ImageCheck,
    problems: list[Problem],
) -> Asset | None:
    found: list[Problem] = []
    if not NAME_RE.fullmatch(name):
        found.append(
            source.problem(
                at,
                f"asset name {name!r} is not a valid name: use 1-64 lowercase letters, digits, "
                "'_' or '-', starting with a letter or digit",
                key=True,
            )
        )
    raw_images = item.get("images") or []
    lists: dict[str, list[str]] = (
        {"default": list(raw_images)} if isinstance(raw_images, list) else dict(raw_images)
    )
    resolved: dict[str, tuple[Path, ...]] = {}
    written: dict[Path, Problem] = {}
    for ratio, values in lists.items():
        paths = []
        for i, value in enumerate(values):
            loc: Path_ = (
                (*at, "images", i)
                if ratio == "default" and isinstance(raw_images, list)
                else (*at, "images", ratio, i)
            )
            path = check_image(declaring_file, value, source, loc, found)
            if path is not None:
                paths.append(path)
                written.setdefault(path, source.problem(loc, ""))
        resolved[ratio] = tuple(paths)
    description = str(item.get("description") or "")
    if not description and not any(lists.values()):
        found.append(
            source.problem(
                at,
                f"asset {name!r} needs a description or images (a description alone gets "
                "one generated reference sheet)",
                key=True,
            )
        )
    problems.extend(found)
    if found:
        return None
    default = resolved.pop("default", ())
    return Asset(
        name=name,
        kind=str(item["kind"]),
        description=description,
        images=default,
        by_ratio=resolved,
        origin=source.path,
        written=written,
    )


def project_assets(
    config: Config,
    defaults_assets: Mapping[str, Any],
    check_image: ImageCheck,
    problems: list[Problem],
) -> dict[str, Asset]:
    """The assets every job of the project sees: `assets/*.yaml`, then `defaults: assets:`."""
    out: dict[str, Asset] = {}
    folder = config.root / "assets"
    if folder.is_dir():
        for path in sorted(p for p in folder.iterdir() if p.suffix in ASSET_SUFFIXES):
            asset = _asset_file(path, config, check_image, problems)
            if asset is not None:
                if asset.name in out:
                    problems.append(
                        Problem(
                            config.display(path),
                            1,
                            1,
                            f"asset {asset.name!r} is declared twice in assets/ "
                            f"(also in {out[asset.name].origin}); give each file its own name",
                        )
                    )
                out[asset.name] = asset
    if defaults_assets and config.source is not None:
        vidpipe_yaml = config.root / "vidpipe.yaml"
        out.update(
            declared(
                defaults_assets,
                vidpipe_yaml,
                config.source,
                ("defaults", "assets"),
                check_image,
                problems,
            )
        )
    return out


def _asset_file(
    path: Path, config: Config, check_image: ImageCheck, problems: list[Problem]
) -> Asset | None:
    shown = config.display(path)
    try:
        doc = load_file(path, shown)
    except YamlProblem as exc:
        problems.append(exc.problem)
        return None
    if not isinstance(doc.data, dict):
        problems.append(
            Problem(shown, 1, 1, "an asset file holds one mapping (kind:, description:, images:)")
        )
        return None
    data = dict(doc.data)
    name = data.pop("name", path.stem)
    if not isinstance(name, str):
        problems.append(doc.source.problem(("name",), "name must be text"))
        return None
    found = validate("asset", data, doc.source)
    if found:
        problems.extend(found)
        return None
    return _asset(name, data, path, doc.source, (), check_image, problems)


def unknown_names(names: list[str], known: Mapping[str, Asset]) -> list[str]:
    """The names in `names` that are not declared assets."""
    return [n for n in names if n not in known]


def declared_list(known: Mapping[str, Asset]) -> str:
    """The declared asset names for a message ("none" when there are none)."""
    return ", ".join(sorted(known)) or "none (declare them under `assets:`)"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
