"""The `vidpipe` command line. It parses and prints; the work happens in domain modules.

Exit codes: 0 every selected job complete or up to date; 1 a job failed or was skipped
for budget; 2 invalid input (nothing was run); 128+N stopped by signal N.

`base` holds what every command shares (the `cli` group, `App`, option helpers); each
other module registers a family of commands on the group when imported.
"""

from vidpipe.cli import jobs as jobs
from vidpipe.cli import projects as projects
from vidpipe.cli import queue as queue
from vidpipe.cli.base import cli as cli
from vidpipe.cli.base import main as main
