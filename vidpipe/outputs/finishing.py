"""The finish step of a project: from the stitched film to the delivered one.

Keyed by its inputs — the stitched film's sha256, every finish file's sha256, the settings
and the caption texts — and recorded in the manifest: when the key is unchanged and
`final.mp4` is intact, nothing is redone. No provider is ever called here; a new music
bed only re-finishes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.artifacts import atomic_path, sha256_file, verified, write_atomic
from vidpipe.spec.config import Config
from vidpipe.spec.outputs import finish_files

if TYPE_CHECKING:
    from vidpipe.store import Scene as _OrmScene
    from vidpipe.store.lite import SceneRow

    # `vidpipe stitch` hands over the rows it read with sqlite3 (vidpipe.store.lite).
    Scene = _OrmScene | SceneRow

FINISH_VERSION = 1


def caption_text(scene: Scene) -> str:
    """A scene's caption: the storyboard's (or the job's override) `caption`, else its
    description."""
    fields = scene.fields or {}
    return str(fields.get("caption") or scene.description or "")


def stitched_cues(
    scenes: Sequence[Scene], rate: Fraction, crossfade: float
) -> list[tuple[int, int, str]]:
    """(scene index, frames, caption) of every scene in the stitched film, in order."""
    out = []
    for scene in scenes:
        clip = scene.clip
        if clip is None or clip.status != "complete" or not clip.duration:
            continue  # a gap: the film goes straight to the next clip
        out.append(
            (scene.index, max(1, round(Fraction(clip.duration) * rate)), caption_text(scene))
        )
    return out


def finish_key(stitched_sha: str, files: Mapping[str, str], settings: Any, texts: Any) -> str:
    payload = {
        "v": FINISH_VERSION,
        "stitched": stitched_sha,
        "files": dict(files),
        "settings": settings,
        "captions": texts,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def finish_film(
    config: Config,
    settings: Mapping[str, Any],
    stitched: Path,
    final: Path,
    scenes: Sequence[Scene],
    crossfade: float,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Finish `stitched` into `final` (and its captions beside it); the manifest's `finish`.

    `previous` is the `finish` of the manifest already on disk: when its key matches and
    `final` is intact, the film is not made again.
    """
    from vidpipe.media import probe
    from vidpipe.media.captions import scene_cues, srt, webvtt
    from vidpipe.media.finish import Card, Music, finish

    info = probe(stitched)
    rate = Fraction(info.fps).limit_denominator(1001)
    stitched_sha = sha256_file(stitched)
    files = {f: sha256_file(config.root / f) for f in finish_files(settings)}
    spans = stitched_cues(scenes, rate, crossfade)
    overlap = round(Fraction(crossfade) * rate) if crossfade > 0 else 0
    if spans:
        overlap = min(overlap, *(n // 2 for _, n, _ in spans))
    captions = settings.get("captions")
    key = finish_key(stitched_sha, files, dict(settings), [text for _, _, text in spans])
    vtt_path, srt_path = final.with_suffix(".vtt"), final.with_suffix(".srt")
    if (
        previous
        and previous.get("key") == key
        and verified(final, previous.get("sha256"))
        and (not captions or (vtt_path.is_file() and srt_path.is_file()))
    ):
        return dict(previous)

    def card(name: str) -> Card | None:
        raw = settings.get(name)
        if not raw:
            return None
        return Card(
            image=config.root / raw["image"] if raw.get("image") else None,
            video=config.root / raw["video"] if raw.get("video") else None,
            seconds=float(raw.get("seconds", 2.0)),
            fade=float(raw.get("fade", 0.0)),
            fit=str(raw.get("fit", "pad")),
        )

    music = settings.get("music")
    loudness = settings.get("loudness") or {}
    with atomic_path(final) as tmp:
        result = finish(
            stitched,
            tmp,
            intro=card("intro"),
            outro=card("outro"),
            music=Music(config.root / music["file"], float(music["duck_db"]), float(music["fade"]))
            if music
            else None,
            target_lufs=float(loudness.get("target_lufs", -14.0)),
            true_peak_db=float(loudness.get("true_peak_db", -1.0)),
            cues=scene_cues(spans, overlap),
            burn=bool(captions and captions.get("burn")),
        )
    out: dict[str, Any] = {
        "key": key,
        "sha256": sha256_file(final),
        "duration": result.duration,
        "stitched_duration": info.duration,
        "inputs": {
            "stitched": {"path": config.display(stitched), "sha256": stitched_sha},
            "files": files,
        },
        "settings": dict(settings),
        "intro_seconds": round(float(result.intro_frames / result.rate), 3),
        "outro_seconds": round(float(result.outro_frames / result.rate), 3),
        "captions": None,
        "loudness": None,
    }
    if result.loudness is not None:
        out["loudness"] = {
            "integrated_lufs": round(result.loudness.integrated_lufs, 2),
            "true_peak_db": round(result.loudness.true_peak_db, 2),
            "target_lufs": float(loudness.get("target_lufs", -14.0)),
        }
    if captions:
        write_atomic(vtt_path, webvtt(result.cues, result.rate).encode("utf-8"))
        write_atomic(srt_path, srt(result.cues, result.rate).encode("utf-8"))
        out["captions"] = {
            "vtt": config.address(vtt_path),
            "srt": config.address(srt_path),
            "cues": [
                {
                    "index": c.index,
                    "start": round(float(c.start / result.rate), 3),
                    "end": round(float(c.end / result.rate), 3),
                    "text": c.text,
                }
                for c in result.cues
            ],
            "burn": bool(captions.get("burn")),
        }
    return out
