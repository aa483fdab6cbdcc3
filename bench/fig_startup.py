"""Figure 3: start-up of commands against `python -c "import click"`.

Every contender is a whole process of the same interpreter: the console script the
package installs (`vidpipe`, beside `python` in the environment) and the interpreter
importing click, vidpipe's command-line library, which is the least a click CLI can cost.
`validate` checks one job file and `list` reads the database of figure 2's project (one
project); both are warmed once, as a user's second command would be (the schema check's
result is cached per vidpipe version, schema and data). `plan` compiles the job and
assesses it against the generation cache, which it reads through the ORM store: it is
reported without a goal.
"""

from __future__ import annotations

from pathlib import Path

from clips import stitch_project
from common import PY, Figure, clean_env, interleave, median, run, say, spread

NOTES = {
    "3b": "`validate` reads the batch's summary from vidpipe.memo when nothing it compiled "
    "from has changed, and YAML it parsed before from the user cache: no PyYAML, Jinja2, "
    "jsonschema or SQLAlchemy. What is left is the interpreter, click, vidpipe's command "
    "modules and the configuration (the model catalog).",
}


def figures(quick: bool) -> list[Figure]:
    script = str(Path(PY).with_name("vidpipe"))
    root, _ = stitch_project()
    env = clean_env()
    commands = {
        "--help": [script, "--help"],
        "validate": [script, "validate", "jobs/film.yaml"],
        "list": [script, "list"],
        "plan": [script, "plan", "jobs/film.yaml"],
    }
    contenders = {name: (lambda c=c: run(c, cwd=root, env=env)) for name, c in commands.items()}
    contenders["click"] = lambda: run([PY, "-c", "import click"])
    reps = 10 if quick else 40
    say(f"[3] start-up: {reps} rounds")
    interleave(contenders, 2)  # warm-up: .pyc files, page cache, the schema cache
    r = interleave(contenders, reps)
    if "Usage: vidpipe" not in r["--help"][-1].out or "1 job valid" not in r["validate"][-1].out:
        raise RuntimeError("vidpipe --help or validate printed the wrong thing")
    click = median([p.wall for p in r["click"]])
    details = ["| command | wall | CPU | peak RSS |", "|---|---|---|---|"]
    for name, procs in r.items():
        shown = "`python -c 'import click'`" if name == "click" else f"`vidpipe {name}`"
        details.append(
            f"| {shown} | {spread([p.wall * 1000 for p in procs], 'ms', 0)} | "
            f"{spread([p.cpu * 1000 for p in procs], 'ms', 0)} | "
            f"{median([p.rss_mb for p in procs]):.0f} MB |"
        )
    goals = {"--help": ("3a", 3.0), "validate": ("3b", 3.0), "list": ("3c", 3.0)}
    goals["plan"] = ("3d", None)  # reads the generation cache: the ORM store is its path
    return [
        Figure(
            key,
            f"start-up: `vidpipe {name}` / `python -c 'import click'`",
            median([p.wall for p in r[name]]) / click,
            "×",
            goal,
            details if key == "3a" else ["See 3a."],
            NOTES.get(key, "") if median([p.wall for p in r[name]]) / click > 3.0 else "",
        )
        for name, (key, goal) in goals.items()
    ]
