"""vidpipe: a declarative, config-driven batch runner for multi-scene AI video."""

__version__ = "0.1.0"

import logging as _logging

# A library logs only where its user asks (`vidpipe run -v` adds a handler): without this,
# Python's last-resort handler would print error records, tracebacks included, to stderr.
_logging.getLogger("vidpipe").addHandler(_logging.NullHandler())
