"""Starts the measured commands, from a process that stays small.

Linux carries a process's peak memory (``ru_maxrss``) across ``exec``: a child forked
from the benchmark process (hundreds of MB after rendering clips) would report at least
that much. This helper is started first, while the benchmark process is still small,
and spawns every measured command for it: each reads one JSON request per stdin line
(``cmd``, ``env``, ``cwd``, ``stdin``, ``stdout``, ``stderr`` paths) and answers one JSON
line (``wall`` seconds, ``rc``, ``maxrss_kb``, ``cpu`` seconds) from ``os.wait4``.
"""

import json
import os
import subprocess
import sys
import time


def main() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        with (
            open(req["stdin"] or os.devnull, "rb") as stdin,
            open(req["stdout"], "wb") as out,
            open(req["stderr"], "wb") as err,
        ):
            start = time.perf_counter()
            proc = subprocess.Popen(
                req["cmd"], stdin=stdin, stdout=out, stderr=err, env=req["env"], cwd=req["cwd"]
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        answer = {
            "wall": wall,
            "rc": proc.returncode,
            "maxrss_kb": usage.ru_maxrss,
            "cpu": usage.ru_utime + usage.ru_stime,
        }
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
