"""The outputs of a project: the stitched video, `manifest.json` and the contact sheet.

Clips, keyframes and costs come from what the database recorded; how to stitch them
(crossfade, audio, the `output:` copy) comes from the job's plan: the job file is the
truth. Paths in the manifest are relative to the project root (SPEC §7).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.artifacts import Layout, atomic_path, copy_atomic, sha256_file, verified, write_atomic
from vidpipe.errors import MediaError

if TYPE_CHECKING:
    from vidpipe.plan.model import Stitching
    from vidpipe.spec.config import Config
    from vidpipe.store import Project, Scene, Store
    from vidpipe.store.lite import LiteStore, ProjectRow, SceneRow

    AnyStore = Store | LiteStore
    AnyProject = Project | ProjectRow

GAP_STATES = ("rai_filtered", "timed_out")


def finished_clips(
    store: AnyStore,
    config: Config,
    project: AnyProject,
    scenes: list[Scene] | list[SceneRow] | None = None,
) -> list[Path]:
    """The project's finished clips, each checked against its recorded sha256 (`scenes`:
    the project's scenes if the caller has just read them)."""
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    clips = []
    for scene in store.scenes(project.id) if scenes is None else scenes:
        clip = scene.clip
        if clip is None or clip.status != "complete":
            continue
        path = layout.load(clip.path or "")
        # In bucket mode a clip another machine made is fetched here (stitching reads
        # local files).
        if not config.objects.restore(path, clip.sha256):
            raise MediaError(
                f"clip of scene {scene.index} ({config.display(path)}) is missing or changed on disk; "
                f"run `vidpipe resume {project.id}` to make it again"
            )
        clips.append(path)
    if not clips:
        raise MediaError("no finished clip to stitch")
    return clips


def write_preview(
    store: AnyStore, config: Config, project: AnyProject, plan: Stitching, crossfade: float
) -> Path:
    """Stitch the project's clips with another crossfade into output/preview-crossfade-S.mp4.

    final.mp4, the manifest and the database are left alone: only the job file decides
    what final.mp4 is.
    """
    from vidpipe import media

    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    clips = finished_clips(store, config, project)
    target = layout.preview(crossfade)
    # Not flushed to disk: nothing records a preview, and another stitch remakes it.
    with atomic_path(target, durable=False) as tmp:
        media.stitch(clips, tmp, crossfade=crossfade, audio=plan.audio)
    return target


def write_outputs(
    store: AnyStore,
    config: Config,
    project: AnyProject,
    plan: Stitching,
    *,
    timings: dict[str, float] | None = None,
) -> str:
    """Stitch the project's finished clips as its plan says; write manifest and contact sheet.

    Returns the final video's path relative to the project root.
    """
    from vidpipe import media

    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    scenes = store.scenes(project.id)
    stitch = {"crossfade": plan.crossfade, "audio": plan.audio}
    clips = finished_clips(store, config, project, scenes)
    # The last manifest says which finish and contact sheet are current (in bucket mode
    # it may be another machine's: fetched).
    config.objects.pull(layout.manifest, project.manifest_sha256)
    settings = plan.settings.get("finish")
    # With a finish step the stitch is an intermediate and final.mp4 the finished film.
    stitched = layout.output.with_name("stitched.mp4") if settings else layout.output
    with atomic_path(stitched) as tmp:
        result = media.stitch(clips, tmp, crossfade=plan.crossfade, audio=plan.audio)
    finished = None
    if settings:
        from vidpipe.outputs.finishing import finish_film

        finished = finish_film(
            config,
            settings,
            stitched,
            layout.output,
            scenes,
            plan.crossfade if result.mode == "crossfade" else 0.0,
            _recorded_finish(layout),
        )
    output_sha = sha256_file(layout.output)

    sheet_key, sheet_sha = _refresh_contact_sheet(scenes, layout, project, config)
    captioned = bool(finished and finished.get("captions"))
    files = [layout.output, layout.contact_sheet]
    if captioned:
        files += [layout.output.with_suffix(".vtt"), layout.output.with_suffix(".srt")]
    # In bucket mode the outputs go to the bucket, the manifest (which lists them) last.
    for path in files:
        config.objects.publish(path)
    if plan.output:
        deliver(config, layout, plan.output, captioned=captioned)

    store.update_project(
        project.id,
        output_path=layout.stored(layout.output),
        output_sha256=output_sha,
        output_duration=finished["duration"] if finished else result.duration,
    )
    fresh = store.project(project.id) or project
    manifest = build_manifest(
        store, config, fresh, timings=timings, stitch=stitch, status="complete", scenes=scenes
    )
    manifest["output"].update(
        {
            "width": result.width,
            "height": result.height,
            "mode": result.mode,
            # How the frames got there (copy, smart: only the crossfade windows encoded,
            # full re-encode) and why: a probe of the clips decides, see media/smart.py.
            "stitch_path": result.path,
            "stitch_reason": result.reason,
        }
    )
    manifest["contact_sheet"] = {
        "path": config.address(layout.contact_sheet),
        "inputs": sheet_key,
    }
    if finished is not None:
        manifest["finish"] = finished
    # What "intact" means for each output file, checkable without its bytes (another
    # machine compares the bucket's sizes with these; see outputs_intact).
    manifest["files"] = {
        path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for path in files
    }
    manifest_sha = write_atomic(
        layout.manifest, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    )
    config.objects.publish(layout.manifest)
    # Recorded so a later run trusts these files only while they are intact.
    store.update_project(project.id, manifest_sha256=manifest_sha, sheet_sha256=sheet_sha)
    return manifest["output"]["path"]


# Part of the contact sheet's key: bump when its drawing changes, so old sheets are redrawn.
_SHEET_VERSION = 2


def outputs_intact(config: Config, project: AnyProject) -> bool:
    """Whether a project's final video, manifest and contact sheet match their records.

    In bucket mode the bucket is what counts, checked without downloading the films: the
    manifest (a few KB) is fetched if need be and must match its recorded sha256; it lists
    every other output file with its size, and the bucket must hold each with that size.
    (Uploads appear whole or not at all, so a size that matches is the file we wrote.)
    """
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    if not project.output_path:
        return False
    if not config.objects.remote:
        return (
            verified(config.artifacts_dir / project.output_path, project.output_sha256)
            and verified(layout.manifest, project.manifest_sha256)
            and verified(layout.contact_sheet, project.sheet_sha256)
        )
    if not config.objects.pull(layout.manifest, project.manifest_sha256):
        return False
    objects = config.objects
    if objects.published_size(layout.manifest) != layout.manifest.stat().st_size:
        return False
    files = (_recorded_manifest(layout) or {}).get("files")
    if not isinstance(files, dict) or not files:
        return False  # written before bucket mode listed its files: stitch again
    recorded = {"final.mp4": project.output_sha256, "storyboard.png": project.sheet_sha256}
    for name, entry in files.items():
        if name in recorded and entry.get("sha256") != recorded[name]:
            return False
        if objects.published_size(layout.output.with_name(name)) != entry.get("bytes"):
            return False
    return True


def deliver(config: Config, layout: Layout, output: str, *, captioned: bool) -> None:
    """Copy the final video (and its captions) to `output:`: a path relative to the
    project root, or a bucket URL (gs://…, s3://…)."""
    from vidpipe.objectstore import is_url, put_url

    sources = [layout.output]
    if captioned:
        # Captions travel with the video: deliverables/x.mp4 gets x.vtt and x.srt.
        sources += [layout.output.with_suffix(".vtt"), layout.output.with_suffix(".srt")]
    for source in sources:
        if is_url(output):
            put_url(source, _with_suffix(output, source.suffix))
        else:
            # Copied, never hard-linked: the user's file must not share bytes with an
            # artifact.
            copy_atomic(source, (config.root / output).with_suffix(source.suffix), link=False)


def delivered(config: Config, project: AnyProject, output: str) -> bool:
    """Whether `output:` holds the project's final video (a URL: one of its size)."""
    from vidpipe.objectstore import is_url, url_size

    if not is_url(output):
        return verified(config.root / output, project.output_sha256)
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    files = (_recorded_manifest(layout) or {}).get("files") or {}
    size = (files.get("final.mp4") or {}).get("bytes")
    if size is None and verified(layout.output, project.output_sha256):
        size = layout.output.stat().st_size
    return size is not None and url_size(output) == size


def deliver_again(config: Config, project: AnyProject, output: str, *, captioned: bool) -> bool:
    """Copy a finished project's final video to `output:` again (it was changed or is
    missing there, e.g. on another machine), fetching it from the bucket if need be.
    False when the final video is not at hand (the project is then stitched again)."""
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    needed = [(layout.output, project.output_sha256)]
    if captioned:
        files = (_recorded_manifest(layout) or {}).get("files") or {}
        for suffix in (".vtt", ".srt"):
            entry = files.get(f"final{suffix}") or {}
            needed.append((layout.output.with_suffix(suffix), entry.get("sha256")))
    if not all(config.objects.pull(path, sha) for path, sha in needed):
        return False
    deliver(config, layout, output, captioned=captioned)
    return True


def _with_suffix(url: str, suffix: str) -> str:
    head, _, name = url.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{head}/{stem}{suffix}"


def write_contact_sheet(store: AnyStore, config: Config, project: AnyProject) -> str:
    """Write the project's contact sheet (`output/storyboard.png`) from its recorded
    keyframes; returns its path relative to the project root. A project stopped after its
    keyframes gets one too: it is what the review before paying for clips looks at."""
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    title, rows, _ = _sheet_inputs(store.scenes(project.id), layout, project, config)
    _draw_contact_sheet(layout, title, rows)
    config.objects.publish(layout.contact_sheet)
    return config.address(layout.contact_sheet)


def _recorded_finish(layout: Layout) -> dict[str, Any] | None:
    """The `finish` of the manifest on disk, if any (the finish step's last key)."""
    data = _recorded_manifest(layout)
    finish = data.get("finish") if data is not None else None
    return finish if isinstance(finish, dict) else None


_SheetRows = list[tuple[int, str, Path | None, Path | None, str | None]]


def _sheet_inputs(
    scenes: list[Scene] | list[SceneRow], layout: Layout, project: AnyProject, config: Config
) -> tuple[str, _SheetRows, str]:
    """What the contact sheet is drawn from: its title, its rows and their key.

    The key covers everything the drawing reads (keyframe hashes, captions, notes, title,
    layout version).
    """
    title = f"{project.job_name} · {project.id}"
    rows: _SheetRows = []
    digests: list[list[str | None]] = []
    for scene in scenes:
        frames = {k.kind: (layout.load(k.path), k.sha256) for k in scene.keyframes}
        for path, sha in frames.values():
            config.objects.restore(path, sha)  # bucket mode: another machine's frames
        clip = scene.clip
        note = f"gap: {clip.status}" if clip is not None and clip.status in GAP_STATES else None
        start, end = frames.get("start"), frames.get("end")
        rows.append((scene.index, scene.description, start and start[0], end and end[0], note))
        # The recorded hash stands for the file's content; a deleted file is drawn as a
        # placeholder, so its absence is part of the key.
        digests.append([f[1] if f and f[0].is_file() else None for f in (start, end)])
    inputs = [_SHEET_VERSION, title, [(r[0], r[1], r[4]) for r in rows], digests]
    key = hashlib.sha256(json.dumps(inputs, ensure_ascii=False).encode("utf-8")).hexdigest()
    return title, rows, key


def _refresh_contact_sheet(
    scenes: list[Scene] | list[SceneRow], layout: Layout, project: AnyProject, config: Config
) -> tuple[str, str]:
    """Draw the contact sheet unless the one on disk was drawn from the same inputs.

    The previous manifest records the key of the sheet beside it, the project the sheet's
    sha256: a sheet is kept only while both match (a damaged one is drawn again).
    Returns the key and the sheet's sha256.
    """
    title, rows, key = _sheet_inputs(scenes, layout, project, config)
    recorded = project.sheet_sha256
    if (
        recorded
        and _recorded_sheet_key(layout) == key
        and config.objects.pull(layout.contact_sheet, recorded)
    ):
        return key, recorded
    return key, _draw_contact_sheet(layout, title, rows)


def _draw_contact_sheet(layout: Layout, title: str, rows: _SheetRows) -> str:
    """Draw and write the contact sheet; returns its sha256."""
    from vidpipe.outputs.contact_sheet import SheetRow, contact_sheet

    sheet_rows = [SheetRow(i, caption, start, end, note) for i, caption, start, end, note in rows]
    return write_atomic(layout.contact_sheet, contact_sheet(sheet_rows, title=title))


def _recorded_manifest(layout: Layout) -> dict[str, Any] | None:
    try:
        data = json.loads(layout.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _recorded_sheet_key(layout: Layout) -> str | None:
    recorded = _recorded_manifest(layout)
    sheet = recorded.get("contact_sheet") if recorded is not None else None
    key = sheet.get("inputs") if isinstance(sheet, dict) else None
    return key if isinstance(key, str) else None


def _sent(record: dict[str, Any]) -> list[dict[str, str]]:
    """The reference images a request carried: asset, path, sha256."""
    return [dict(r) for r in record.get("sent") or []]


def _clip_refs(scene: Scene | SceneRow) -> dict[str, Any] | None:
    return scene.clip.reference_images if scene.clip is not None else None


def _where(config: Config, layout: Layout, stored: str, sha256: str | None) -> str:
    """Where a keyframe or clip is kept: its project path, or in bucket mode the object
    in the bucket (the project folders there hold outputs only)."""
    if config.objects.remote and sha256:
        return config.objects.object_address(sha256)
    return config.display(layout.load(stored))


def build_manifest(
    store: AnyStore,
    config: Config,
    project: AnyProject,
    *,
    timings: dict[str, float] | None = None,
    stitch: dict[str, Any] | None = None,
    status: str | None = None,
    check_files: bool = False,
    scenes: list[Scene] | list[SceneRow] | None = None,
) -> dict[str, Any]:
    """The manifest of a project as recorded now (SPEC §7).

    With `check_files`, a clip recorded complete whose file is missing or changed shows
    as ``damaged`` (what `vidpipe status` shows; the next run remakes it from the cache).
    `scenes`: the project's scenes, if the caller has just read them.
    """
    layout = Layout(config.artifacts_dir, project.job_name, project.id)
    scenes_out = []
    gaps = []
    for scene in store.scenes(project.id) if scenes is None else scenes:
        keyframes = {
            k.kind: {
                "path": _where(config, layout, k.path, k.sha256),
                "sha256": k.sha256,
                "source": k.source,
                **({"references": _sent(k.reference_images)} if k.reference_images else {}),
            }
            for k in scene.keyframes
        }
        warnings = [
            r["warning"]
            for r in [*(k.reference_images for k in scene.keyframes), _clip_refs(scene)]
            if r and r.get("warning")
        ]
        clip = scene.clip
        clip_out: dict[str, Any] | None = None
        if clip is not None:
            state = clip.status
            if (
                check_files
                and state == "complete"
                and not verified(layout.load(clip.path or ""), clip.sha256)
                # Bucket mode: a clip only in the bucket is intact (fetched when needed).
                and not (config.objects.remote and config.objects.has(clip.sha256))
            ):
                state = "damaged"
            clip_out = {
                "path": _where(config, layout, clip.path, clip.sha256) if clip.path else None,
                "status": state,
                "duration": clip.duration,
                "sha256": clip.sha256,
                "source": clip.source,
                "attempts": clip.attempts,
            }
            if clip.reference_images:
                clip_out["references"] = _sent(clip.reference_images)
            if clip.status in GAP_STATES:
                gaps.append(
                    {"index": scene.index, "reason": clip.status, "detail": clip.error_message}
                )
        scenes_out.append(
            {
                "index": scene.index,
                "description": scene.description,
                "status": scene.status,
                "prompts": dict(scene.prompts or {}),
                "assets": list((scene.fields or {}).get("assets") or []),
                "keyframes": keyframes,
                "clip": clip_out,
                **({"warnings": warnings} if warnings else {}),
            }
        )
    by_step = store.project_cost(project.id)
    output = None
    if project.output_path:
        output = {
            "path": config.address(layout.load(project.output_path)),
            "duration": project.output_duration,
            "sha256": project.output_sha256,
        }
    return {
        "job": project.job_name,
        "project_id": project.id,
        "status": status or project.status,
        "source": project.source_path,
        "provider": dict(project.providers or {}),
        "models": dict(project.models or {}),
        "output": output or {"path": None, "duration": None, "sha256": None},
        "stitch": stitch if stitch is not None else dict(project.settings.get("stitch") or {}),
        "scenes": scenes_out,
        "gaps": gaps,
        "cost": {
            "estimate_usd": round(project.cost_estimate_usd or 0.0, 6),
            "actual_usd": round(sum(by_step.values()), 6),
            "by_step": {k: round(v, 6) for k, v in sorted(by_step.items())},
        },
        "timings": dict(timings if timings is not None else (project.timings or {})),
    }
