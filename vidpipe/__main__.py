"""`python -m vidpipe`."""

from vidpipe.cli import main

main()
