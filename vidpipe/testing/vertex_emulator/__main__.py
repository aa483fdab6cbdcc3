"""`python -m vidpipe.testing.vertex_emulator`: serve the emulator until SIGTERM."""

import sys

from vidpipe.testing.vertex_emulator.standalone import main

sys.exit(main())
