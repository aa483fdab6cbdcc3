"""The `vidpipe` command line. It parses and prints; the work happens in domain modules.

Exit codes: 0 every selected job complete or up to date; 1 a job failed or was skipped
for budget; 2 invalid input (nothing was run); 128+N stopped by signal N.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from vidpipe import __version__
from vidpipe.errors import JobFileError, VidpipeError

if TYPE_CHECKING:
    from vidpipe.spec.config import Config

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What commands share: where we are and how to find the configuration."""

    cwd: Path = field(default_factory=Path.cwd)
    config_path: Path | None = None
    database: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> Config:
        from vidpipe.spec.config import load_config

        overrides = dict(self.overrides)
        if self.database:
            overrides["database"] = self.database
        return load_config(cwd=self.cwd, path=self.config_path, overrides=overrides)


pass_app = click.make_pass_decorator(App, ensure=True)


class FiniteFloat(click.FloatRange):
    """A float flag that refuses `nan` and `inf` (NaN passes every range check)."""

    name = "finite number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx) if value is not None else value
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def config_options(fn: F) -> F:
    """--config and --db, accepted by every command that reads the project."""

    def set_config(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(App).config_path = Path(value)
        return value

    def set_db(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(App).database = value
        return value

    fn = click.option(
        "--db",
        "database",
        metavar="URL",
        expose_value=False,
        callback=set_db,
        is_eager=True,
        help="Database URL (overrides `database` in vidpipe.yaml).",
    )(fn)
    fn = click.option(
        "--config",
        "config_path",
        metavar="PATH",
        expose_value=False,
        callback=set_config,
        is_eager=True,
        type=click.Path(dir_okay=False),
        help="vidpipe.yaml to use (default: found in . or its parents).",
    )(fn)
    return fn


def what_runs(fn: F) -> F:
    """--provider, --until and --select: what `run` and `submit` run, spelled alike."""
    fn = click.option(
        "--select",
        "select",
        multiple=True,
        metavar="GLOB",
        help="Only jobs whose name matches (repeatable).",
    )(fn)
    fn = click.option(
        "--until",
        type=click.Choice(["storyboard", "keyframes", "clips"]),
        help="Stop after this step.",
    )(fn)
    fn = click.option(
        "--provider", metavar="NAME", help="Use this provider for every step of every job."
    )(fn)
    return fn


def write_reports(
    cwd: Path, report: Any, targets: Sequence[tuple[str, str | None, Any]], recorded: str
) -> bool:
    """Write `report` to each (flag, path, writer); False if one could not be written.

    Each file is written on its own: one that cannot be written does not lose the others.
    `recorded` says where the batch can still be seen.
    """
    ok = True
    for flag, target, write in targets:
        if not target:
            continue
        try:
            write(cwd / target, report)
        except OSError as exc:
            click.secho(
                f"Error: {flag} {target} could not be written ({exc.strerror or exc}); {recorded}",
                fg="red",
                err=True,
            )
            ok = False
    return ok


class VidpipeGroup(click.Group):
    """Turns expected failures into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobFileError as exc:
            for problem in exc.problems:
                click.echo(_safe(str(problem)), err=True)
            n = len(exc.problems)
            click.secho(
                f"{n} problem{'s' if n != 1 else ''} found; nothing was run.", fg="red", err=True
            )
            ctx.exit(exc.exit_code)
        except VidpipeError as exc:
            click.secho(f"Error: {_safe(str(exc))}", fg="red", err=True)
            ctx.exit(exc.exit_code)


def _safe(text: str) -> str:
    """A message as printed: credentials masked, odd bytes of file names shown as escapes."""
    from vidpipe.redact import redact
    from vidpipe.spec.yamlsource import printable

    return printable(redact(text))


@click.group(cls=VidpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidpipe")
def cli() -> None:
    """Turn version-controlled YAML job files into multi-scene AI videos.

    \b
    Quick start:
      vidpipe init demo && cd demo
      vidpipe validate          # check job files and templates, no calls
      vidpipe run               # run every job in jobs/ (offline `local` provider)
      vidpipe list              # projects, newest first
    """


def _usd(amount: float) -> str:
    return f"${amount:.2f}"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _project_states() -> list[str]:
    from vidpipe.engine.states import ProjectState

    return [state.value for state in ProjectState]


def _log_calls() -> None:
    """-v: log calls and tracebacks to stderr, every line through the credential redaction."""
    import logging

    from vidpipe.redact import RedactingFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("vidpipe-stderr")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger("vidpipe")
    for old in [h for h in root.handlers if h.get_name() == "vidpipe-stderr"]:
        root.removeHandler(old)  # one per process, however many runs it makes
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="vidpipe")
    raise SystemExit(0)  # pragma: no cover - click exits itself
