"""Prompt templates: Jinja2 in an immutable sandbox with strict undefined variables.

Search order for a template name: the job file's folder, the project's `templates/`, then
the templates built into vidpipe. A name may be a path relative to those folders; it may
not leave the project. Errors name the template, its line and what went wrong.

Context: `job` (every resolved job field), `vars`, `assets` (every declared asset by name:
`name`, `kind`, `description`, `images`), and for scene templates `scene` (its `assets` is
the list of asset names the scene shows), `prev_scene`, `next_scene` (None at the ends),
`scene_count` and `style_guide`.

Rendering runs under budgets (`limits:` in vidpipe.yaml): a time limit checked at every
loop iteration, call and output chunk, and a size limit checked before a string or list
is multiplied, before a call gets an integer argument that large, and on the output.
A template that recurses without end (a self-include, a recursive macro) is reported at
its line like any other template error.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vidpipe.errors import TemplateProblem
from vidpipe.spec.config import Limits

BUILTIN_NAMES = {
    "storyboard": "storyboard.j2",
    "keyframe_start": "keyframe_start.j2",
    "keyframe_end": "keyframe_end.j2",
    "motion": "motion.j2",
}
_BUILTIN_PREFIX = "vidpipe:templates/"


def builtin_dir() -> Path:
    """The folder of templates shipped inside the package."""
    return Path(str(resources.files("vidpipe").joinpath("templates")))


class _SearchLoader(jinja2.BaseLoader):
    """Finds templates in an ordered list of folders, refusing paths that leave the project."""

    def __init__(self, folders: Sequence[Path], root: Path):
        self.folders = [f.resolve() for f in folders]
        self.root = root.resolve()
        self.builtin = builtin_dir().resolve()
        #: Every file served, to find template frames in a traceback.
        self.served: set[str] = set()

    def locate(self, name: str) -> Path:
        if Path(name).is_absolute():
            raise TemplateNotFound(name, f"template {name!r} must be a relative path")
        for folder in self.folders:
            candidate = (folder / name).resolve()
            allowed = self.builtin if folder == self.builtin else self.root
            if not candidate.is_relative_to(allowed):
                raise TemplateNotFound(name, f"template path {name!r} leaves the project")
            if candidate.is_file():
                return candidate
        raise TemplateNotFound(name)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = self.locate(template)
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            raise TemplateProblem(self.display(path), None, "template is not UTF-8 text") from None
        mtime = path.stat().st_mtime_ns
        self.served.add(str(path))

        def uptodate() -> bool:
            # Still the file this name finds first (a new file may now shadow it), unchanged.
            try:
                return self.locate(template) == path and path.stat().st_mtime_ns == mtime
            except (TemplateNotFound, OSError):
                return False

        return text, str(path), uptodate

    def display(self, path: Path | str) -> str:
        path = Path(path)
        if path.is_relative_to(self.builtin):
            return _BUILTIN_PREFIX + path.relative_to(self.builtin).as_posix()
        if path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return str(path)


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt and the template it came from."""

    text: str
    template: str


class _OverBudget(Exception):
    """A template went over its time or size budget."""


class _Budget(threading.local):
    """The budget of the render in progress on this thread (environments are shared)."""

    deadline = math.inf
    seconds = 0.0
    max_chars = Limits().template_output_chars

    def start(self, limits: Limits) -> None:
        self.seconds = limits.template_seconds
        self.max_chars = limits.template_output_chars
        self.deadline = time.monotonic() + limits.template_seconds

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OverBudget(
                f"rendering took longer than {self.seconds:g} s (`limits: template_seconds` "
                "in vidpipe.yaml); look for loops that never end"
            )

    def size(self, n: int, what: str, unit: str = "items") -> None:
        if n > self.max_chars:
            raise _OverBudget(
                f"{what} would hold {n:,} {unit}, more than the limit of {self.max_chars:,} "
                "(`limits: template_output_chars` in vidpipe.yaml)"
            )

    def arguments(self, args: Any, kwargs: Mapping[str, Any]) -> None:
        # An integer this large as a width, count or length makes an output this large.
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool):
                self.size(abs(value), "a call's result")

    def result(self, value: Any) -> Any:
        if isinstance(value, (str, list, tuple)):
            self.size(len(value), "a call's result")
        return value


class _BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with `*`, `**`, calls, filters and loops checked against the budget."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.budget = _Budget()
        self.filters = {name: self._checked(f) for name, f in self.filters.items()}
        self.filters["_vidpipe_loop"] = self._loop

    def _checked(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # keeps jinja's pass_context/… marks
        def checked(*args: Any, **kwargs: Any) -> Any:
            self.budget.tick()
            self.budget.arguments(args[1:], kwargs)  # not the value being filtered
            return self.budget.result(fn(*args, **kwargs))

        return checked

    def _loop(self, iterable: Any) -> Any:
        for item in iterable:
            self.budget.tick()
            yield item

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every {% for %} iterates through the budget, so nested loops that would run for
        # hours stop at the time limit even when they write nothing.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, "_vidpipe_loop", [], [], None, None, lineno=loop.iter.lineno
            )
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    self.budget.size(len(seq) * max(times, 0), "a repeated string or list")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            digits = right * math.log10(abs(left)) if abs(left) > 1 and right > 0 else 0
            self.budget.size(int(digits), "a power", "digits")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.tick()
        __self.budget.arguments(args, {k: v for k, v in kwargs.items() if not k.startswith("_")})
        return __self.budget.result(super().call(__context, __obj, *args, **kwargs))


@functools.lru_cache(maxsize=64)
def _environment(folders: tuple[Path, ...], root: Path) -> _BudgetedEnvironment:
    """One environment per search path, shared by every job that has it.

    A batch of a hundred jobs in one folder compiles each template once, not a hundred
    times. `auto_reload` re-reads a template whose file changed (one stat per use).
    """
    return _BudgetedEnvironment(
        loader=_SearchLoader(list(folders), root),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=True,
    )


class Prompts:
    """Renders one job's four prompt templates."""

    def __init__(
        self,
        job_folder: Path,
        root: Path,
        names: Mapping[str, str] | None = None,
        limits: Limits | None = None,
    ):
        self.limits = limits or Limits()
        folders = (job_folder, root / "templates", builtin_dir())
        key = tuple(dict.fromkeys(f.resolve() for f in folders))
        self.env = _environment(key, root.resolve())
        self.loader: _SearchLoader = self.env.loader  # type: ignore[assignment]
        self.names = {**BUILTIN_NAMES, **(names or {})}

    def template_path(self, key: str) -> Path:
        """The file a template key resolves to (for hashing and for messages)."""
        try:
            return self.loader.locate(self.names[key])
        except TemplateNotFound as exc:
            raise TemplateProblem(self.names[key], None, _not_found(exc)) from None

    def digest(self, key: str) -> str:
        """sha256 over one template's source and the sources it includes."""
        digest = hashlib.sha256()
        path = self.template_path(key)
        digest.update(path.read_bytes() + b"\0")
        for dep in self._includes(path.read_text("utf-8")):
            with contextlib.suppress(TemplateNotFound):  # reported when rendering
                digest.update(self.loader.locate(dep).read_bytes())
        return digest.hexdigest()

    def sources(self) -> list[tuple[Path, bool]]:
        """Every file the templates come from (what they include too), each preceded by
        the paths its name would find first, which must stay absent: (path, is the file).
        """
        out: dict[Path, bool] = {}
        todo, seen = list(self.names.values()), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for folder in self.loader.folders:
                candidate = (folder / name).resolve()
                if candidate.is_file():
                    out[candidate] = True
                    with contextlib.suppress(OSError, UnicodeDecodeError):
                        todo.extend(self._includes(candidate.read_text("utf-8")))
                    break
                out.setdefault(candidate, False)
        return list(out.items())

    def fingerprint(self) -> str:
        """sha256 over the sources of all four templates and what they include."""
        digest = hashlib.sha256()
        for key in BUILTIN_NAMES:
            digest.update(key.encode() + b"\0" + self.digest(key).encode())
        return digest.hexdigest()

    @staticmethod
    def _includes(text: str) -> list[str]:
        return re.findall(r"{%-?\s*(?:include|import|extends|from)\s+['\"]([^'\"]+)['\"]", text)

    def render(self, key: str, context: Mapping[str, Any]) -> Rendered:
        """Render template `key` (`storyboard`, `keyframe_start`, `keyframe_end`, `motion`)."""
        name = self.names[key]
        try:
            template = self.env.get_template(name)
        except TemplateNotFound as exc:
            raise TemplateProblem(name, None, _not_found(exc)) from None
        except TemplateSyntaxError as exc:
            shown = self.loader.display(exc.filename) if exc.filename else name
            raise TemplateProblem(shown, exc.lineno, f"syntax error: {exc.message}") from None
        shown = self.loader.display(template.filename or name)
        try:
            text = self._render(template, context)
        except (_OverBudget, RecursionError, MemoryError) as exc:
            file, line = _template_frame(exc, template.filename, self.loader.served)
            message = str(exc)
            if isinstance(exc, RecursionError):
                message = "the template includes or calls itself without end"
            elif isinstance(exc, MemoryError):
                message = "the template builds more text than fits in memory"
            raise TemplateProblem(
                self.loader.display(file) if file else shown, line, message
            ) from None
        except UndefinedError as exc:
            file, line = _template_frame(exc, template.filename, self.loader.served)
            raise TemplateProblem(
                self.loader.display(file) if file else shown,
                line,
                _undefined(exc.message or "", file, line, context),
            ) from None
        except SecurityError as exc:
            file, line = _template_frame(exc, template.filename, self.loader.served)
            raise TemplateProblem(
                self.loader.display(file) if file else shown,
                line,
                f"not allowed in the template sandbox: {exc}",
            ) from None
        except TemplateSyntaxError as exc:  # from an {% include %} compiled at render time
            where = self.loader.display(exc.filename) if exc.filename else shown
            raise TemplateProblem(where, exc.lineno, f"syntax error: {exc.message}") from None
        except TemplateNotFound as exc:
            raise TemplateProblem(shown, None, _not_found(exc)) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            file, line = _template_frame(exc, template.filename, self.loader.served)
            raise TemplateProblem(
                self.loader.display(file) if file else shown, line, f"error: {exc}"
            ) from None
        return Rendered(_tidy(text), shown)

    def _render(self, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        """Render chunk by chunk under the budget; the output's size is checked as it grows."""
        budget = self.env.budget
        budget.start(self.limits)
        chunks: list[str] = []
        size = 0
        try:
            for chunk in template.generate(dict(context)):
                size += len(chunk)
                budget.size(size, "the rendered prompt", "characters")
                budget.tick()
                chunks.append(chunk)
        finally:
            budget.deadline = math.inf
        return "".join(chunks)


_CONTEXT = (
    "job, vars, assets and, in scene templates, scene, prev_scene, next_scene, scene_count, "
    "style_guide"
)


def _undefined(
    message: str, file: str | None, line: int | None, context: Mapping[str, Any] | None = None
) -> str:
    """Jinja's "'dict object' has no attribute 'x'" as the expression the template wrote.

    Jinja names the missing attribute but not what it was looked up on; the template line
    does, so we find `something.x` (or `something['x']`) there and say what to do — with
    the closest name `something` does have, when one is close.
    """
    missing = re.fullmatch(r"'(.*)' is undefined", message)
    if missing:
        hint = _did_you_mean(missing.group(1), list(context or {}), "")
        return f"undefined variable {missing.group(1)!r}{hint}; templates see {_CONTEXT}"
    found = re.fullmatch(r"'(.*)' has no (?:attribute|element) '?(.*?)'?", message)
    if not found:
        return f"undefined variable: {message}"
    owner, attr = found.groups()
    text = ""
    if file is not None and line is not None:
        lines = Path(file).read_text("utf-8").splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
    name = re.escape(attr)
    written = re.search(rf"[A-Za-z_][\w.]*(?:\.{name}\b|\[\s*['\"]{name}['\"]\s*\])", text)
    if not written:
        return f"undefined variable: {message}"
    expr = written.group(0)
    if owner == "None":
        base = expr.rsplit(".", 1)[0].split("[", 1)[0]
        return (
            f"undefined variable {expr}: {base} is None here (prev_scene in the first scene, "
            f"next_scene in the last); guard it with {{% if {base} %}}"
        )
    base = re.sub(rf"(?:\.{name}|\[\s*['\"]{name}['\"]\s*\])$", "", expr)
    names = _names_of(base, context or {})
    advice = _did_you_mean(attr, names, base + ".")
    if not advice and expr.startswith(("vars.", "vars[")):
        advice = "; set it under `vars:` in the job file or in `defaults: vars:` in vidpipe.yaml"
    return f"undefined variable {expr}: {message}{advice}"


def _names_of(expr: str, context: Mapping[str, Any]) -> list[str]:
    """The keys of what a dotted expression (`scene`, `job.vars`) names in the context."""
    value: Any = context
    for part in expr.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return []
    return [str(k) for k in value] if isinstance(value, Mapping) else []


def _did_you_mean(name: str, names: Sequence[str], prefix: str) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def _not_found(exc: TemplateNotFound) -> str:
    if exc.message and exc.message != exc.name:
        return str(exc.message)
    return (
        f"template {exc.name!r} not found in the job's folder, the project's templates/ "
        "or vidpipe's built-in templates"
    )


def _template_frame(
    exc: BaseException, default: str | None, served: set[str]
) -> tuple[str | None, int | None]:
    """The innermost template file and line in a Jinja traceback.

    Jinja rewrites tracebacks so frames carry the template's filename and line; the
    innermost one is where the error happened (an included template, say).
    """
    found: tuple[str | None, int | None] = (default, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in served:
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def scene_context(
    base: Mapping[str, Any],
    scenes: Sequence[Mapping[str, Any]],
    index: int,
    style_guide: Mapping[str, Any],
) -> dict[str, Any]:
    """The context of a scene template for scene `index`."""
    return {
        **base,
        "scene": scenes[index],
        "prev_scene": scenes[index - 1] if index > 0 else None,
        "next_scene": scenes[index + 1] if index + 1 < len(scenes) else None,
        "scene_count": len(scenes),
        "style_guide": style_guide,
    }


# -- from a job to its prompts ------------------------------------------------------------

SCENE_FIELDS = (
    "scene_description",
    "start_frame_prompt",
    "end_frame_prompt",
    "video_motion_prompt",
    "transition_notes",
    "caption",
)


@dataclass(frozen=True)
class ScenePrompts:
    """The three rendered prompts of one scene."""

    index: int
    start: Rendered
    end: Rendered
    motion: Rendered


def prompts_for(job: Any) -> Prompts:
    """The template set of a job (its folder, the project's templates, the built-ins)."""
    return Prompts(job.folder, job.root, job.templates, job.limits)


def base_context(job: Any) -> dict[str, Any]:
    """What every template sees: `job` (resolved fields), `vars` and `assets`."""
    return {
        "job": dict(job.settings),
        "vars": dict(job.vars),
        "assets": dict(job.settings.get("assets") or {}),
    }


def storyboard_prompt(job: Any, prompts: Prompts | None = None) -> Rendered:
    """The rendered storyboard prompt of a job."""
    return (prompts or prompts_for(job)).render("storyboard", base_context(job))


def scenes_after_overrides(job: Any, storyboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The storyboard's scenes with the job's `scene_overrides` applied, plus `index`/`duration`."""
    scenes = []
    for i, raw in enumerate(storyboard["scenes"][: job.scenes]):
        scene = {k: raw.get(k, "") for k in SCENE_FIELDS}
        scene["assets"] = list(dict.fromkeys(raw.get("assets") or []))
        override = job.override(i)
        if override is not None:
            scene.update(override.fields)
            if override.assets is not None:
                scene["assets"] = list(override.assets)
        scene["index"] = i
        scene["scene_index"] = i
        scene["duration"] = job.clip_seconds(i)
        scenes.append(scene)
    return scenes


def scene_prompts(
    job: Any, storyboard: Mapping[str, Any], prompts: Prompts | None = None
) -> list[ScenePrompts]:
    """Render the keyframe and motion prompts of every scene."""
    prompts = prompts or prompts_for(job)
    scenes = scenes_after_overrides(job, storyboard)
    base = base_context(job)
    out = []
    for i in range(len(scenes)):
        context = scene_context(base, scenes, i, storyboard["style_guide"])
        out.append(
            ScenePrompts(
                index=i,
                start=prompts.render("keyframe_start", context),
                end=prompts.render("keyframe_end", context),
                motion=prompts.render("motion", context),
            )
        )
    return out


def offline_storyboard(job: Any) -> dict[str, Any]:
    """The offline planner's storyboard for a job (what `render` and `validate` use)."""
    from vidpipe.providers.local.planner import plan

    return plan(
        job.prompt,
        scenes=job.scenes,
        style=job.style,
        clip_duration=job.clip_duration,
        seed=job.seed,
    )


def check_templates(job: Any) -> None:
    """Render every template of a job with the offline storyboard; raise TemplateProblem.

    A job whose templates (their fingerprint) and resolved fields are those of a job that
    passed before is not rendered again: an unchanged batch of a hundred jobs re-checks
    nothing (the result is remembered in the user's cache, see vidpipe.usercache).
    """
    from vidpipe.usercache import entry, remember

    prompts = prompts_for(job)
    try:
        key = (prompts.fingerprint(), repr(prompts.names), repr(job.settings), repr(job.vars))
    except (TemplateProblem, UnicodeDecodeError, OSError):
        key = None  # a template missing or unreadable: rendering reports it
    passed = entry("templates", *key) if key else None
    if passed is not None and passed.is_file():
        return
    storyboard_prompt(job, prompts)
    scene_prompts(job, offline_storyboard(job), prompts)
    if passed is not None:
        remember(passed)
