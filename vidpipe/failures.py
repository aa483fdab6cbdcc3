"""Unexpected failures of one job: a one-line reason for the report, the traceback to a file.

A bug, a full disk or a file the operating system refuses must fail the job it happened
in and nothing else (the batch goes on, its report is written). The reason shown in the
report, JUnit and the database is one line; the whole traceback goes to a log file under
the artifacts folder (and to stderr with `-v`). Both pass the credential redaction.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from vidpipe.redact import redact

log = logging.getLogger("vidpipe.failures")


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, redacted and printable."""
    from vidpipe.spec.yamlsource import printable

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return printable(redact(f"{name}: {text}" if text else name))[:500]


def unexpected(exc: BaseException, log_file: Path, shown: str) -> str:
    """Record an unexpected exception; return the one-line reason for the job's failure.

    `shown` is how the log file is named in the reason (relative to the project root).
    When the log cannot be written (the disk that failed is the artifacts disk), the
    reason says so and the traceback still reaches `-v`.
    """
    text = redact("".join(traceback.format_exception(exc)))
    log.error("unexpected failure, traceback follows:\n%s", text)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text + "\n")
        where = f"traceback in {shown}"
    except OSError as write_error:
        where = f"traceback not saved: {write_error.strerror or write_error}; run with -v to see it"
    return f"internal error: {one_line(exc)} ({where})"
