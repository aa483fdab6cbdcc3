"""The emulator as a process of its own (benchmarks): prints its URL, serves until killed."""

from __future__ import annotations

import argparse
import signal
import threading

from vidpipe.testing.vertex_emulator.server import VertexEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Vertex AI emulator for vidpipe.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--polls", type=int, default=1, help="not-done polls before done")
    parser.add_argument("--no-strict", action="store_true", help="accept any Veo duration/aspect")
    parser.add_argument("--no-auth", action="store_true", help="do not require credentials")
    args = parser.parse_args(argv)
    emu = VertexEmulator(
        args.host,
        args.port,
        latency=args.latency,
        polls_until_done=args.polls,
        strict=not args.no_strict,
        require_auth=not args.no_auth,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emu:
        print(emu.url, flush=True)
        stop.wait()
    return 0
