"""Matrices: a job file's `matrix:` expanded into one job per combination of values.

An axis is a list of values of one job key (`aspect_ratio: ["16:9", "9:16"]`, jobs named
`-16x9`-style by a slug of the value) or a mapping of named values, each a set of job keys
(`product: {oat-latte: {...}}`, jobs named `-oat-latte`). Each value remembers where it was
written, so a problem in a value a matrix set is reported at that value's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vidpipe.errors import Problem
from vidpipe.spec.yamlsource import Path_, SourceMap


@dataclass(frozen=True)
class Point:
    """One value of one matrix axis: a value of a job key, or a named set of job keys."""

    axis: str
    value: Any  # what `job.matrix.<axis>` holds: the value, or the value's name
    label: str  # the job name suffix
    overlay: Mapping[str, Any]  # the job keys this value sets
    at: Path_  # where the value is written
    named: bool

    def origins(self) -> dict[str, Path_]:
        if self.named:
            return {key: (*self.at, key) for key in self.overlay}
        return {self.axis: self.at}

    def locate(self, at: Path_) -> Path_ | None:
        """Where the value at job path `at` came from, if this matrix value set it."""
        if self.named:
            return (*self.at, *at) if written_in(self.overlay, at) else None
        return self.at if at[0] == self.axis else None

    def refused(self, source: SourceMap) -> list[Problem]:
        return [
            source.problem(
                (*self.at, key),
                f"a named matrix value cannot set `{key}` (the job is named after the value)"
                if key == "name"
                else "a named matrix value cannot hold another matrix",
                key=True,
            )
            for key in ("name", "matrix")
            if self.named and key in self.overlay
        ]


def written_in(own: Mapping[str, Any], at: Path_) -> bool:
    """Whether the data `own` holds a value at the path `at`."""
    node: Any = own
    for part in at:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return True


def slug(value: Any, index: int) -> str:
    """The job-name suffix of a matrix value (its position when it has no usable text)."""
    if isinstance(value, (dict, list)):
        return str(index)
    return re.sub(r"[^a-z0-9._]+", "-", str(value).lower()).strip("-") or str(index)


def axis(name: str, values: Any) -> list[Point]:
    """The values of one matrix axis: a list of values, or a mapping of named values."""
    if isinstance(values, Mapping):
        return [
            Point(name, label, label, dict(overlay), ("matrix", name, label), True)
            for label, overlay in values.items()
        ]
    return [
        Point(name, value, slug(value, i), {name: value}, ("matrix", name, i), False)
        for i, value in enumerate(values)
    ]
