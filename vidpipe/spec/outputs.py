"""What a job delivers: the `output:` name (a template) and the `finish:` settings.

`output:` is rendered in Jinja's sandbox with the job's resolved fields (`job.name`,
`job.aspect_ratio`, `job.matrix.KEY`, …) and `vars`, so one matrix job can name each of
its films. The rendered path follows the rules of every job path: relative to the job
file, inside the project; the plan's checks (vidpipe.plan.checks.outputs) refuse two
jobs writing one file.

`finish:` is resolved here into plain data for one job: intro and outro cards (the
variant for the job's aspect ratio), the music bed, loudness targets and captions, with
every file checked and its path written relative to the project root, as the manifest
and `vidpipe stitch` read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vidpipe.errors import Problem

RATIOS = ("16:9", "9:16", "1:1")
CARD_KEYS = ("image", "video", "seconds", "fade", "fit")
DEFAULT_CARD_SECONDS = 2.0
DEFAULT_DUCK_DB = 12.0
DEFAULT_MUSIC_FADE = 1.0
DEFAULT_TARGET_LUFS = -14.0
DEFAULT_TRUE_PEAK_DB = -1.0

#: Locates a problem at a key path of the job (the job file, a matrix entry or defaults).
Locate = Callable[[tuple[str | int, ...], str], Problem]
#: Resolves a job-relative path inside the project: (value, key path, what) → Path or None
#: (a problem is then already recorded).
Resolve = Callable[[str, tuple[str | int, ...], str], "Path | None"]


def render_output(template: str, context: Mapping[str, Any]) -> str:
    """Render an `output:` template in the sandbox; raise ValueError with a readable reason."""
    import jinja2
    from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    if "{" not in template:
        return template
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        text = env.from_string(template).render(**context)
    except TemplateSyntaxError as exc:
        raise ValueError(f"output template does not parse: {exc.message}") from None
    except UndefinedError as exc:
        raise ValueError(
            f"output template: {exc.message}; it can use job.name, job.aspect_ratio, "
            "job.matrix.KEY, vars.KEY and the other job fields"
        ) from None
    except SecurityError as exc:
        raise ValueError(f"output template: not allowed in the sandbox ({exc})") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise ValueError(f"output template: {exc}") from None
    text = text.strip()
    if not text:
        raise ValueError(f"output template {template!r} renders to an empty path")
    return text


def resolve_finish(
    raw: Mapping[str, Any] | None,
    aspect_ratio: str,
    locate: Locate,
    resolve: Resolve,
    display: Callable[[Path], str],
    image_ok: Callable[[str, tuple[str | int, ...]], Path | None],
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The `finish:` of one job as plain data (None when the job has none), and problems."""
    if not raw:
        return None, []
    problems: list[Problem] = []
    out: dict[str, Any] = {}
    for which in ("intro", "outro"):
        if raw.get(which):
            card = _card(
                raw[which], which, aspect_ratio, locate, resolve, display, image_ok, problems
            )
            if card is not None:
                out[which] = card
    music = raw.get("music")
    if music:
        path = resolve(music["file"], ("finish", "music", "file"), "music")
        if path is not None:
            if not path.is_file():
                problems.append(
                    locate(
                        ("finish", "music", "file"),
                        f"music file {music['file']!r} does not exist; paths are relative to "
                        "the job file's folder",
                    )
                )
            else:
                out["music"] = {
                    "file": display(path),
                    "duck_db": float(music.get("duck_db", DEFAULT_DUCK_DB)),
                    "fade": float(music.get("fade", DEFAULT_MUSIC_FADE)),
                }
    loudness = raw.get("loudness") or {}
    out["loudness"] = {
        "target_lufs": float(loudness.get("target_lufs", DEFAULT_TARGET_LUFS)),
        "true_peak_db": float(loudness.get("true_peak_db", DEFAULT_TRUE_PEAK_DB)),
    }
    captions = raw.get("captions")
    out["captions"] = {"burn": bool(captions.get("burn", False))} if captions is not None else None
    return out, problems


def _card(
    raw: Mapping[str, Any],
    which: str,
    aspect_ratio: str,
    locate: Locate,
    resolve: Resolve,
    display: Callable[[Path], str],
    image_ok: Callable[[str, tuple[str | int, ...]], Path | None],
    problems: list[Problem],
) -> dict[str, Any] | None:
    at: tuple[str | int, ...] = ("finish", which)
    variants = [r for r in RATIOS if r in raw]
    plain = [k for k in CARD_KEYS if k in raw]
    if variants and plain:
        problems.append(
            locate(
                at,
                f"finish.{which} mixes aspect-ratio variants ({', '.join(variants)}) with "
                f"{', '.join(plain)}; put every setting inside the variants",
            )
        )
        return None
    if variants:
        # The job's own shape, else the first variant written (fitted to the film).
        chosen = aspect_ratio if aspect_ratio in variants else variants[0]
        spec, at = raw[chosen], (*at, chosen)
    else:
        spec = raw
    has = [k for k in ("image", "video") if k in spec]
    name = ".".join(str(p) for p in at)
    if len(has) != 1:
        problems.append(
            locate(at, f"{name} needs exactly one of `image` or `video`, not {len(has) or 'none'}")
        )
        return None
    if "video" in spec and "seconds" in spec:
        problems.append(
            locate(
                (*at, "seconds"),
                f"{name}.seconds applies to an image; a video card plays for its own length",
            )
        )
        return None
    card: dict[str, Any] = {
        "fade": float(spec.get("fade", 0.0)),
        "fit": spec.get("fit", "pad"),
    }
    if "image" in spec:
        path = image_ok(spec["image"], (*at, "image"))
        if path is None:
            return None
        card["image"] = display(path)
        card["seconds"] = float(spec.get("seconds", DEFAULT_CARD_SECONDS))
        if card["fade"] * 2 > card["seconds"] + 1e-9:
            problems.append(
                locate(
                    (*at, "fade"),
                    f"{name}.fade of {card['fade']:g}s is too long for a {card['seconds']:g}s "
                    "card: a fade in and a fade out must fit",
                )
            )
            return None
    else:
        path = resolve(spec["video"], (*at, "video"), "video")
        if path is None:
            return None
        if not path.is_file():
            problems.append(
                locate(
                    (*at, "video"),
                    f"video {spec['video']!r} does not exist; paths are relative to the job "
                    "file's folder",
                )
            )
            return None
        card["video"] = display(path)
    return card


def finish_files(finish: Mapping[str, Any] | None) -> list[str]:
    """Every file a resolved `finish:` reads (paths relative to the project root)."""
    if not finish:
        return []
    files: list[str] = []
    for which in ("intro", "outro"):
        card = finish.get(which) or {}
        files.extend(card[k] for k in ("image", "video") if k in card)
    if finish.get("music"):
        files.append(finish["music"]["file"])
    return files
