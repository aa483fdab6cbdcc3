"""Every error vidpipe raises on purpose, in one tree.

Expected failures are instances of :class:`VidpipeError`; the CLI turns them into a
message and an exit code, never a traceback. Anything else is a bug and surfaces.

::

    VidpipeError
    ├── InputError                 exit 2: nothing was run
    │   ├── JobFileError           one or more `path:line:column: message` problems
    │   ├── ConfigError            vidpipe.yaml or the environment is wrong
    │   └── TemplateProblem        a template cannot be loaded or rendered
    ├── NotFound                   no such job or project (exit 2)
    ├── ProviderError              a provider call did not produce a result
    │   ├── TransientProviderError 429 / 5xx / network: retry with backoff
    │   ├── ContentBlocked         a safety filter or an empty answer
    │   └── InvalidAnswer          the answer does not match the schema
    ├── MediaError                 a video cannot be read, written or stitched
    ├── StorageError               a bucket (gs://, s3://) refused or failed a request
    ├── LeaseLost                  another runner took the project over; stop work on it
    │   └── InvalidCrossfade       exit 2: a crossfade the clips cannot take
    ├── EditedKeyframe             a keyframe was changed by hand: keep it or --force
    └── Interrupted                SIGINT / SIGTERM asked the run to stop
"""

from __future__ import annotations

from typing import NamedTuple


class VidpipeError(Exception):
    """Base class of every expected vidpipe failure."""

    exit_code = 1


class InputError(VidpipeError):
    """The user's input is invalid; nothing was run."""

    exit_code = 2


class Problem(NamedTuple):
    """One problem in one file, located as precisely as we can. (A NamedTuple: ordered and
    hashable like a frozen dataclass, without compiling methods when vidpipe starts.)"""

    path: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class JobFileError(InputError):
    """One or more problems in job files, each reported as `path:line:column: message`."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems), key=_problem_order)
        super().__init__("\n".join(str(p) for p in self.problems))


def _problem_order(p: Problem) -> tuple[str, int, int, str]:
    return (p.path, p.line or 0, p.column or 0, p.message)


class ConfigError(InputError):
    """vidpipe.yaml, an environment override or a CLI flag is invalid."""


class TemplateProblem(InputError):
    """A prompt template cannot be found, compiled or rendered."""

    def __init__(self, template: str, line: int | None, message: str):
        self.template = template
        self.line = line
        self.detail = message
        where = template if line is None else f"{template}:{line}"
        super().__init__(f"{where}: {message}")


class NotFound(VidpipeError):
    """No job or project matches what the user asked for."""

    exit_code = 2


class ProviderError(VidpipeError):
    """A provider call failed. Failures are never cached."""


class TransientProviderError(ProviderError):
    """Rate limited, overloaded or unreachable: worth retrying after `retry_after` seconds."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class ContentBlocked(ProviderError):
    """The model answered without the requested content (safety filter, no image)."""


class InvalidAnswer(ProviderError):
    """The model's answer is not valid JSON or does not match the schema."""


class MediaError(VidpipeError):
    """A media file cannot be decoded, encoded or stitched."""


class InvalidCrossfade(MediaError):
    """A crossfade the clips cannot take (negative, or over half the shortest clip): a bad
    value given, so `vidpipe stitch --crossfade` exits 2 like any invalid input."""

    exit_code = 2


class StorageError(VidpipeError):
    """A request to the artifacts bucket failed (after the library's own retries)."""


class LeaseLost(VidpipeError):
    """This runner's lease on a project lapsed and another runner holds it now."""


class Interrupted(VidpipeError):
    """The run was asked to stop by a signal."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")
        self.exit_code = 128 + signum


class EditedKeyframe(VidpipeError):
    """A keyframe file no longer matches what was recorded: someone edited it.

    It is never silently replaced; the project stops until the user keeps the edit
    (`vidpipe keep`) or asks for the frame again (`--force`).
    """
