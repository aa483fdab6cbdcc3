"""Safe YAML loading that remembers where every value came from.

PyYAML's `safe_load` forgets positions, so a schema error could only say *what* is wrong.
We compose the node tree with the safe loader, then build plain Python values ourselves,
recording the line and column of every key and value by its path. Building the values
ourselves also lets us bound alias expansion (a "billion laughs" file is an error within
milliseconds, not a hang) and refuse every tag that is not plain data — a `!!python/…`
tag is reported, never constructed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from vidpipe.errors import Problem

if TYPE_CHECKING:
    import yaml

Path_ = tuple[str | int, ...]

#: Total values a document may expand to through aliases before we call it a bomb.
MAX_NODES = 50_000
MAX_DEPTH = 64

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
# Dates are kept as the text the user wrote: job fields never want a datetime.
_TEXT_TAGS = {"tag:yaml.org,2002:timestamp"}
_MERGE_TAG = "tag:yaml.org,2002:merge"
# YAML 1.1 reads unquoted `16:9` as a base-60 number (16 * 60 + 9 = 969).
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


class SourceMap:
    """Line/column (1-based) of every value and mapping key in a document, by path.

    (This and :class:`Document` are not dataclasses: every command loads vidpipe.yaml,
    and a dataclass compiles its methods from source when its module is imported.)
    """

    def __init__(
        self,
        path: str,
        values: dict[Path_, tuple[int, int]] | None = None,
        keys: dict[Path_, tuple[int, int]] | None = None,
        sexagesimal: dict[Path_, str] | None = None,
    ) -> None:
        self.path = path
        self.values = values if values is not None else {}
        self.keys = keys if keys is not None else {}
        #: Unquoted `N:M` values YAML turned into numbers, as written, by path.
        self.sexagesimal = sexagesimal if sexagesimal is not None else {}

    def __repr__(self) -> str:
        return f"SourceMap({self.path!r})"

    def quote_hint(self, at: Path_) -> str:
        """How to fix a value at `at` that YAML read as a base-60 number, or ""."""
        written = self.sexagesimal.get(tuple(at))
        if written is None:
            return ""
        key = next((part for part in reversed(at) if isinstance(part, str)), "value")
        return (
            f'; YAML reads an unquoted {written} as a base-60 number: quote it: {key}: "{written}"'
        )

    def problem(self, at: Path_, message: str, *, key: bool = False) -> Problem:
        """A problem located at the value (or, with `key`, the key) at `at`.

        Falls back to the nearest located ancestor, so every problem has a line.
        """
        table = self.keys if key else self.values
        probe = tuple(at)
        while True:
            if probe in table:
                line, col = table[probe]
                return Problem(self.path, line, col, message)
            if probe in self.values:
                line, col = self.values[probe]
                return Problem(self.path, line, col, message)
            if not probe:
                return Problem(self.path, 1, 1, message)
            probe = probe[:-1]


class Document(NamedTuple):
    """A parsed YAML document: the data and where each piece of it came from."""

    data: Any
    source: SourceMap


class YamlProblem(Exception):
    """A located problem found while loading; carries a :class:`Problem`."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def load_file(path: Path, display: str | None = None) -> Document:
    """Read and parse one YAML file; raise :class:`YamlProblem` with a located message."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlProblem(Problem(shown, None, None, f"cannot read file: {exc.strerror}")) from None
    return load_bytes(raw, shown)


def load_bytes(raw: bytes, display: str) -> Document:
    """Parse YAML bytes that must be UTF-8 text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        # Count characters, not bytes: what precedes the bad byte on its line is valid UTF-8.
        column = len(raw[line_start : exc.start].decode("utf-8")) + 1
        raise YamlProblem(
            Problem(display, line, column, "file is not UTF-8 text; save it as UTF-8")
        ) from None
    return load_text(text, display)


def load_text(text: str, display: str) -> Document:
    """Parse YAML text into plain data plus a :class:`SourceMap`.

    A text parsed before is read back from the user's cache (see vidpipe.usercache): the
    same data and positions, without importing PyYAML. Only documents that loaded without
    a problem are kept, so every error is found by parsing afresh.
    """
    from vidpipe.usercache import entry, remember

    marker = entry("yaml", hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())
    known = _cached(marker, display)
    if known is not None:
        return known
    document = _parse(text, display)
    with contextlib.suppress(ValueError, TypeError):  # data JSON cannot hold: not cached
        remember(marker, _dumps(document))
    return document


def _dumps(document: Document) -> bytes:
    source = document.source
    return json.dumps(
        {
            "data": document.data,
            "values": [[list(k), *v] for k, v in source.values.items()],
            "keys": [[list(k), *v] for k, v in source.keys.items()],
            "sexagesimal": [[list(k), v] for k, v in source.sexagesimal.items()],
        },
        allow_nan=False,
        ensure_ascii=False,
    ).encode("utf-8", "surrogatepass")


def _cached(marker: Path, display: str) -> Document | None:
    try:
        raw = json.loads(marker.read_bytes().decode("utf-8", "surrogatepass"))
        source = SourceMap(
            display,
            {tuple(k): (line, col) for k, line, col in raw["values"]},
            {tuple(k): (line, col) for k, line, col in raw["keys"]},
            {tuple(k): v for k, v in raw["sexagesimal"]},
        )
        return Document(raw["data"], source)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _parse(text: str, display: str) -> Document:
    import yaml

    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context}"
        if mark is None:
            raise YamlProblem(Problem(display, None, None, message)) from None
        raise YamlProblem(Problem(display, mark.line + 1, mark.column + 1, message)) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Problem(display, None, None, f"invalid YAML: {exc}")) from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level: thousands of `[` exhaust the stack.
        raise YamlProblem(
            Problem(display, None, None, f"nesting deeper than {MAX_DEPTH} levels; flatten it")
        ) from None
    source = SourceMap(display)
    if node is None:
        return Document(None, source)
    builder = _Builder(source)
    data = builder.build(node, ())
    return Document(data, source)


def _compose(text: str) -> yaml.Node | None:
    """The node tree of `text`: by libyaml when PyYAML has it (several times faster, and
    it refuses nesting deeper than 1000 levels itself), by the pure-Python loader when a
    document does not parse, so every error reads exactly the same either way."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        with contextlib.suppress(yaml.YAMLError):
            return yaml.compose(text, Loader=fast)
    return yaml.compose(text, Loader=yaml.SafeLoader)


class _Builder:
    def __init__(self, source: SourceMap):
        self.source = source
        import yaml

        self.count = 0
        self.constructor = yaml.SafeLoader("")
        self.yaml = yaml  # imported here: a document read from the cache needs no PyYAML

    def _fail(self, node: yaml.Node, message: str) -> YamlProblem:
        mark = node.start_mark
        return YamlProblem(Problem(self.source.path, mark.line + 1, mark.column + 1, message))

    def _tick(self, node: yaml.Node) -> None:
        """Count one unit of expansion work; refuse documents that expand without bound."""
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(
                node,
                f"document expands to more than {MAX_NODES:,} values through aliases; "
                "refusing it (is this an alias bomb?)",
            )

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self._tick(node)
        if len(path) > MAX_DEPTH:
            raise self._fail(node, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
        mark = node.start_mark
        self.source.values.setdefault(path, (mark.line + 1, mark.column + 1))
        if isinstance(node, self.yaml.ScalarNode):
            if not node.style and _SEXAGESIMAL.fullmatch(node.value):
                self.source.sexagesimal[path] = node.value
            return self._scalar(node)
        if isinstance(node, self.yaml.SequenceNode):
            self._check_tag(node, "tag:yaml.org,2002:seq")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, self.yaml.MappingNode):
            self._check_tag(node, "tag:yaml.org,2002:map")
            return self._mapping(node, path)
        raise self._fail(node, "unsupported YAML node")  # pragma: no cover - PyYAML has 3 kinds

    def _check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            raise self._fail(node, f"tag {_short(node.tag)} is not allowed in vidpipe files")

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise self._fail(node, f"tag {_short(node.tag)} is not allowed in vidpipe files")
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str) and not_text(value):
            # A "\udc80" escape makes a lone surrogate: no file, database or API can hold it.
            raise self._fail(
                node, f"{not_text(value)} is not a character (a lone surrogate); remove it"
            )
        if isinstance(value, float) and not math.isfinite(value):
            # `.nan`, `.inf` and overflowing literals like 1e999: no setting means them, and
            # NaN passes every range check (every comparison with it is false).
            raise self._fail(
                node, f"{node.value} is not a finite number; write a number such as 0.5"
            )
        return value

    def _pairs(
        self, node: yaml.MappingNode, merging: tuple[int, ...] = ()
    ) -> Iterator[tuple[yaml.Node, yaml.Node, bool]]:
        """Yield (key, value, merged?) with `<<` merge keys expanded after the node's own keys.

        `merging` holds the mappings whose merges are being expanded: a mapping that merges
        itself is refused, and every merged pair counts toward MAX_NODES, so neither a
        recursive merge nor a merge bomb (pairs repeated 9**9 times) can hang the loader.
        """
        merging = (*merging, id(node))
        merged: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value
                    if isinstance(value_node, self.yaml.SequenceNode)
                    else [value_node]
                )
                for src in sources:
                    if not isinstance(src, self.yaml.MappingNode):
                        raise self._fail(src, "a `<<` merge needs a mapping")
                    if id(src) in merging:
                        raise self._fail(src, "a `<<` merge includes itself (a recursive alias)")
                    if len(merging) > MAX_DEPTH:
                        raise self._fail(src, f"`<<` merges nested deeper than {MAX_DEPTH} levels")
                    for k, v, _ in self._pairs(src, merging):
                        self._tick(src)
                        merged.append((k, v, True))
            else:
                yield key_node, value_node, False
        yield from merged

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node, from_merge in self._pairs(node):
            if not isinstance(key_node, self.yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                raise self._fail(key_node, "mapping keys must be plain text")
            key = str(self.constructor.construct_object(key_node))
            if key in result:
                if not from_merge:
                    raise self._fail(key_node, f"duplicate key {key!r}")
                continue  # YAML 1.1: explicit keys and earlier merges win
            child = (*path, key)
            mark = key_node.start_mark
            self.source.keys.setdefault(child, (mark.line + 1, mark.column + 1))
            result[key] = self.build(value_node, child)
        return result


def not_text(value: str) -> str:
    """The first lone surrogate in `value`, escaped for messages ('' if there is none).

    Text decoded with `surrogateescape` (file names, environment values holding bytes that
    are not UTF-8) carries its odd bytes as lone surrogates.
    """
    for char in value:
        if "\ud800" <= char <= "\udfff":
            return ascii(char)[1:-1]
    return ""


def printable(value: str) -> str:
    """`value` safe to print or store: lone surrogates shown as escapes."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag
