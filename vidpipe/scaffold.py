"""`vidpipe init`: a new project with a config, an example job and editable templates."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CONFIG = """\
# vidpipe project configuration. Every key can also come from the environment:
# VIDPIPE_ + the upper-cased path joined by __ (VIDPIPE_CONCURRENCY__JOBS=8).
defaults:                  # any job key; job files win over these
  style: cinematic
  provider: local          # offline animatic renderer; `google` for Vertex AI (Gemini + Veo)
database: sqlite:///vidpipe.db
artifacts_dir: tmp
max_scenes: 15
concurrency: {jobs: 4}
rate_limits: {text: 60, image: 20, video: 10}   # requests per minute, shared by all jobs
google:                    # project/location: GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION
  poll_interval: 10
  poll_timeout: 600
"""

EXAMPLE_JOB = """\
# yaml-language-server: $schema=../schemas/job.schema.json
prompt: >
  A lighthouse keeper climbs the spiral stairs at dusk as a storm rolls in.
  She lights the great lamp. The beam sweeps across the dark sea and finds a small boat.
style: cinematic
aspect_ratio: "16:9"
scenes: 3
clip_duration: 4
vars:
  location: a rocky Atlantic headland
scene_overrides:
  - index: 2
    video_motion_prompt: Slow pull out from the lighthouse as the beam reaches the boat.
stitch:
  crossfade: 0
"""

# What vidpipe writes into a project: the artifacts folder (clips, films, manifests, the
# gallery), the SQLite database with its WAL files, and the hidden temporaries a write
# leaves only if the machine dies mid-write (`--report`/`--junit`/`output:` copies).
GITIGNORE = """\
# written by vidpipe
tmp/
vidpipe.db
vidpipe.db-*
.*.part-*
"""


def existing_project(directory: Path) -> bool:
    """A folder that is already a vidpipe project: it has a vidpipe.yaml or job files."""
    jobs = directory / "jobs"
    return (directory / "vidpipe.yaml").is_file() or (
        jobs.is_dir() and any(p.suffix in (".yaml", ".yml") for p in jobs.iterdir())
    )


def scaffold(directory: Path, *, force: bool = False) -> tuple[list[str], list[str], list[str]]:
    """Create the project files; return (written, kept, skipped) paths relative to `directory`.

    In an existing project nothing new is added — not the example job (it would run in
    every batch from then on), not templates that would shadow the built-ins: `skipped`
    lists what a new project would have had. ``force`` rewrites the files that exist.
    """
    existing = existing_project(directory)
    package = resources.files("vidpipe")
    files: dict[str, str] = {
        "vidpipe.yaml": CONFIG,
        "jobs/example.yaml": EXAMPLE_JOB,
        ".gitignore": GITIGNORE,
        "schemas/job.schema.json": package.joinpath("schemas", "job.schema.json").read_text(
            "utf-8"
        ),
    }
    for name in ("storyboard.j2", "keyframe_start.j2", "keyframe_end.j2", "motion.j2"):
        files[f"templates/{name}"] = package.joinpath("templates", name).read_text("utf-8")
    written, kept, skipped = [], [], []
    for rel, text in files.items():
        path = directory / rel
        if path.exists() and not force:
            kept.append(rel)
            continue
        if existing and not path.exists():
            skipped.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(rel)
    return written, kept, skipped
