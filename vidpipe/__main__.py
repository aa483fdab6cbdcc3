"""`python -m vidpipe`."""

from .cli import main

main()
