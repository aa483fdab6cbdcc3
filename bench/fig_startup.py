"""Figure 3: start-up, ``vidpipe --help`` vs ``python -c "import click"``.

Both are whole processes of the same interpreter: the console script the package
installs (``vidpipe``, beside ``python`` in the environment) and the interpreter importing
click, vidpipe's command-line library, which is the least a click CLI can cost.
"""

from __future__ import annotations

from pathlib import Path

from common import PY, Figure, interleave, median, run, say, spread


def figures(quick: bool) -> list[Figure]:
    script = Path(PY).with_name("vidpipe")
    contenders = {
        "vidpipe": lambda: run([str(script), "--help"]),
        "click": lambda: run([PY, "-c", "import click"]),
    }
    reps = 20 if quick else 60
    say(f"[3] start-up: {reps} rounds")
    interleave(contenders, 2)  # warm-up: .pyc files, page cache
    r = interleave(contenders, reps)
    if "Usage: vidpipe" not in r["vidpipe"][-1].out:
        raise RuntimeError("vidpipe --help printed no usage")
    vp, ck = median([p.wall for p in r["vidpipe"]]), median([p.wall for p in r["click"]])
    details = [
        "| command | wall | peak RSS |",
        "|---|---|---|",
        f"| `vidpipe --help` | {spread([p.wall * 1000 for p in r['vidpipe']], 'ms', 0)} | "
        f"{median([p.rss_mb for p in r['vidpipe']]):.0f} MB |",
        f'| `python -c "import click"` | {spread([p.wall * 1000 for p in r["click"]], "ms", 0)} | '
        f"{median([p.rss_mb for p in r['click']]):.0f} MB |",
    ]
    return [
        Figure(
            "3",
            "start-up: `vidpipe --help` / `python -c 'import click'`",
            vp / ck,
            "×",
            3.0,
            details,
        )
    ]
