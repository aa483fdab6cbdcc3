"""A plan against what is recorded: which generations are reused, new or in flight, why,
and what the new ones cost (`vidpipe plan`, `run --dry-run`, `--max-cost`).

The walk follows the run: the storyboard's key is known from the plan; when the cache
holds that storyboard, the scene prompts can be rendered and the keyframe keys computed;
a cached keyframe gives the bytes its end frame and clip are keyed by, and so on. Where a
generation is new, everything downstream of it is new too (its inputs do not exist yet).

Nothing here writes: the cache is read, never repaired.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidpipe.plan.model import AFTER_STORYBOARD, FrameSource, Plan
from vidpipe.plan.requests import (
    image_references,
    image_request,
    request_key,
    scene_references,
    sheet_request,
    storyboard_request,
    video_references,
    video_request,
)
from vidpipe.prompts import prompts_for, scene_prompts, scenes_after_overrides
from vidpipe.providers import Provider, ReferenceImage
from vidpipe.spec.assets import Asset
from vidpipe.spec.config import Config

if TYPE_CHECKING:
    from vidpipe.memo import JobMemo
    from vidpipe.objectstore import ObjectStore
    from vidpipe.store import Project, Store
    from vidpipe.store.lite import ProjectRow

#: Scene fields a reason may name.
_SCENE_FIELDS = (
    "scene_description",
    "start_frame_prompt",
    "end_frame_prompt",
    "video_motion_prompt",
    "transition_notes",
)
_PROMPT_OF = {
    "storyboard": "the storyboard prompt",
    "start": "{scene}'s start-frame prompt",
    "end": "{scene}'s end-frame prompt",
    "video": "{scene}'s motion prompt",
}
_TEMPLATE_OF = {"storyboard": "storyboard", "start": "keyframe_start", "end": "keyframe_end"}


class Status(StrEnum):
    """What a run would do with one generation."""

    REUSE = "reuse"  # finished and cached: no call
    NEW = "new"  # a call (and its price)
    IN_FLIGHT = "in flight"  # submitted earlier; the run polls it


@dataclass(frozen=True)
class Step:
    """One generation of a plan, assessed."""

    node: str
    capability: str
    scene: int | None
    status: Status
    key: str | None
    cost_usd: float
    reasons: tuple[str, ...] = ()
    #: What determined it, named (request fields, template and scene-field digests): the
    #: record a later plan compares with to say why a generation is new.
    inputs: Mapping[str, str] = field(default_factory=dict, compare=False)
    context: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: How to name the frames it is made from (request field → "scene 0's start_image (…)").
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Assessment:
    """A plan's generations against the cache, and what the new ones cost."""

    plan: Plan
    steps: tuple[Step, ...]
    #: Whether the run stitches (no provider call): "reuse" when final.mp4 matches.
    stitch: Status
    stitch_reason: str
    #: The storyboard is not made yet: frames and clips are priced as the estimate does.
    storyboard_pending: bool

    @property
    def new_cost_usd(self) -> float:
        return round(sum(s.cost_usd for s in self.steps if s.status is Status.NEW), 6)

    def count(self, status: Status) -> int:
        return sum(1 for s in self.steps if s.status is status)

    def record(self) -> dict[str, Any]:
        """What the project records so a later plan can say what changed."""
        return {
            s.node: {"key": s.key, "inputs": dict(s.inputs), "context": dict(s.context)}
            for s in self.steps
            if s.inputs
        }


def _short(value: Any) -> str:
    """A recorded input: short values as written, long ones as a digest."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def _inputs(provider: Provider, request: Any) -> dict[str, str]:
    """A request's recorded inputs; its asset references one entry per asset (`asset cup`),
    so a reason can name the asset whose image changed."""
    fields = provider.key_fields(request)
    references = fields.pop("references", None) or []
    out = {k: _short(v) for k, v in fields.items()}
    by_asset: dict[str, list[str]] = {}
    for ref in references:
        by_asset.setdefault(ref["asset"], []).append(ref["sha256"][:16])
    for asset, digests in by_asset.items():
        out[f"asset {asset}"] = "sha256:" + ",".join(digests)
    return out


class _Cache:
    """Read-only lookups of finished generations and intact project artifacts.

    In bucket mode an image whose bytes a later key needs is fetched from the bucket; a
    clip is only looked up there (nothing needs its bytes).
    """

    def __init__(self, store: Store | None, objects: ObjectStore, project: Project | None):
        self.store = store
        self.objects = objects
        artifacts_dir = objects.root
        self.trusted: dict[str, Path] = {}
        if store is not None and project is not None:
            # The project's own rows count as the engine trusts them (same key, file intact).
            for scene in store.scenes(project.id):
                for frame in scene.keyframes:
                    if frame.generation_key:
                        self.trusted[frame.generation_key] = artifacts_dir / frame.path
                clip = scene.clip
                if clip is not None and clip.status == "complete" and clip.path:
                    self.trusted[clip.generation_key] = artifacts_dir / clip.path

    def result(self, key: str) -> tuple[Path | None, Any] | None:
        """(artifact path, JSON result) of a finished generation, or None."""
        if self.store is None:
            return None
        row = self.store.generation(key)
        if row is not None and row.status == "complete":
            if row.result_path is None:
                return None, row.result
            if row.capability == "video":
                if self.objects.has(row.result_sha256):
                    return self.objects.root / row.result_path, row.result
            else:
                path = self.objects.local(row.result_sha256)
                if path is not None:
                    return path, row.result
        if key in self.trusted and self.trusted[key].is_file():
            return self.trusted[key], None
        return None

    def in_flight(self, key: str) -> bool:
        if self.store is None:
            return False
        row = self.store.generation(key)
        return row is not None and row.status == "submitted" and bool(row.operation_id)


def assess(
    plan: Plan,
    providers: Mapping[str, Provider],
    store: Store | None,
    config: Config,
    *,
    force: bool = False,
) -> Assessment:
    """Walk the plan's graph against the cache (see the module docstring).

    `store` None (no database yet) assesses every generation as new.
    """
    job = plan.job
    project = None if store is None else store.newest_project(job.name, plan.digest)
    cache = _Cache(None if force else store, config.objects, None if force else project)
    step_provider = {step: providers[name] for step, name in plan.providers.items()}
    steps: list[Step] = []
    settings_facts = {f"setting {k}": _short(v) for k, v in plan.settings.items()}

    def new(node_id: str, reasons: tuple[str, ...], **values: Any) -> Step:
        node = plan.node(node_id)
        assert node is not None
        return Step(
            node_id, node.capability, node.scene, Status.NEW, values.pop("key", None),
            node.cost_usd, reasons, **values,
        )  # fmt: skip

    # -- storyboard ---------------------------------------------------------------------
    sb_provider = step_provider["storyboard"]
    sb_request = storyboard_request(job, sb_provider, plan.storyboard_prompt.text)
    sb_key = request_key(sb_provider, "storyboard", sb_request)
    sb_inputs = {k: _short(v) for k, v in sb_provider.key_fields(sb_request).items()}
    sb_context = {"template storyboard": plan.templates["storyboard"], **settings_facts}
    found = cache.result(sb_key)
    storyboard = found[1] if found else None
    if (
        storyboard is None
        and not force
        and project is not None
        and project.storyboard
        and project.storyboard_prompt == plan.storyboard_prompt.text
    ):
        storyboard = project.storyboard
    if storyboard is not None:
        steps.append(
            Step("storyboard", "storyboard", None, Status.REUSE, sb_key, 0.0, (), sb_inputs, sb_context)
        )  # fmt: skip
    else:
        steps.append(new("storyboard", (), key=sb_key, inputs=sb_inputs, context=sb_context))
        for node in plan.nodes[1:]:
            steps.append(new(node.id, (f"{AFTER_STORYBOARD}, which is new",)))
        return _finish(plan, steps, store, config, storyboard_pending=True)

    # -- keyframes and clips, in the order the engine makes them ------------------------
    scenes = scenes_after_overrides(job, storyboard)
    rendered = scene_prompts(job, storyboard, prompts_for(job))
    guide = storyboard.get("style_guide", {})
    image_provider = step_provider["image"]
    video_provider = step_provider["video"]
    image_model = plan.models["image"]
    video_model = plan.models["video"]
    #: Reference sheets not made yet (their assets' names): what uses them is new.
    unmade: set[str] = set()

    def sheet(asset: Asset) -> ReferenceImage | None:
        key = request_key(image_provider, "image", sheet_request(image_provider, job, asset))
        hit = cache.result(key)
        if hit is None or hit[0] is None:
            unmade.add(asset.name)
            return None
        return ReferenceImage(asset.name, asset.kind, hit[0].read_bytes())

    # A frame's bytes when known, else a description of why not ("scene 0's start frame is new").
    previous_end: tuple[bytes | None, str] = (None, "")
    for i, scene in enumerate(scenes):
        scene_facts = {
            f"scene {j} {name}": _short(scenes[j].get(name, ""))
            for j in (i - 1, i, i + 1)
            if 0 <= j < len(scenes)
            for name in _SCENE_FIELDS
        }
        scene_facts["style guide"] = _short(guide)
        unmade.clear()
        refs = scene_references(job, scene, sheet)
        sheets_new = tuple(f"asset {name}'s reference sheet is new" for name in sorted(unmade))
        frames: dict[str, tuple[bytes | None, str]] = {}
        for kind in ("start", "end"):
            frame = plan.frame(i, kind)
            if frame.source is FrameSource.OVERRIDE:
                assert frame.image is not None
                shown = job.settings["scene_overrides"]
                from vidpipe.media.still import keyframe_png  # loads PyAV: only here

                png = keyframe_png(frame.image, job.aspect_ratio, frame.fit)
                written = next(o for o in shown if o["index"] == i)[f"{kind}_image"]
                path = written["path"] if isinstance(written, dict) else written
                frames[kind] = (png, f"scene {i}'s {kind}_image ({path})")
                continue
            if frame.source is FrameSource.INHERITED:
                frames[kind] = (previous_end[0], previous_end[1] or f"scene {i - 1}'s end frame")
                continue
            prompt = rendered[i].start.text if kind == "start" else rendered[i].end.text
            reference = frames["start"] if kind == "end" else None
            context = {
                f"template {_TEMPLATE_OF[kind]}": plan.templates[_TEMPLATE_OF[kind]],
                **scene_facts,
                **settings_facts,
            }
            if (reference is not None and reference[0] is None) or sheets_new:
                why = (f"{reference[1]} is new",) if reference and reference[0] is None else ()
                steps.append(new(frame.node, (*why, *sheets_new), context=context))
                frames[kind] = (None, f"scene {i}'s {kind} frame")
                continue
            chosen = image_references(image_provider, image_model, refs, reference is not None)
            request = image_request(
                job, image_provider, i, kind, prompt, scene, guide,
                reference[0] if reference else None, chosen.sent,
            )  # fmt: skip
            key = request_key(image_provider, "image", request)
            inputs = _inputs(image_provider, request)
            labels = {"reference": reference[1]} if reference else {}
            hit = cache.result(key)
            if hit is not None and hit[0] is not None:
                steps.append(
                    Step(frame.node, "image", i, Status.REUSE, key, 0.0, (), inputs, context)
                )
                frames[kind] = (hit[0].read_bytes(), f"scene {i}'s {kind} frame")
            else:
                steps.append(
                    new(frame.node, (), key=key, inputs=inputs, context=context, labels=labels)
                )
                frames[kind] = (None, f"scene {i}'s {kind} frame")
        previous_end = frames["end"]
        clip_id = f"scene {i} clip"
        context = {"template motion": plan.templates["motion"], **scene_facts, **settings_facts}
        labels = {"first_frame": frames["start"][1], "last_frame": frames["end"][1]}
        from_assets = job.video_mode(i) == "assets"
        missing = [] if from_assets else [lb for data, lb in frames.values() if data is None]
        if from_assets and sheets_new:
            steps.append(new(clip_id, sheets_new, context=context))
            continue
        if missing:
            # The frames that are known still say something (a replaced start_image).
            known = {
                name: hashlib.sha256(data).hexdigest()
                for name, (data, _label) in (
                    ("first_frame", frames["start"]),
                    ("last_frame", frames["end"]),
                )
                if data is not None
            }
            reasons = tuple(f"{m} is new" for m in missing)
            steps.append(new(clip_id, reasons, inputs=known, context=context, labels=labels))
            continue
        if from_assets:
            sent = video_references(video_provider, video_model, refs).sent
            clip = video_request(job, video_provider, i, rendered[i].motion.text, None, None, sent)
        else:
            start, end = frames["start"][0], frames["end"][0]
            assert start is not None and end is not None
            clip = video_request(job, video_provider, i, rendered[i].motion.text, start, end)
        key = request_key(video_provider, "video", clip)
        inputs = _inputs(video_provider, clip)
        hit = cache.result(key)
        if hit is not None and hit[0] is not None:
            steps.append(Step(clip_id, "video", i, Status.REUSE, key, 0.0, (), inputs, context))
        elif cache.in_flight(key):
            steps.append(Step(clip_id, "video", i, Status.IN_FLIGHT, key, 0.0, (), inputs, context))
        else:
            steps.append(new(clip_id, (), key=key, inputs=inputs, context=context, labels=labels))
    return _finish(plan, steps, store, config, storyboard_pending=False)


def _finish(
    plan: Plan,
    steps: list[Step],
    store: Store | None,
    config: Config,
    *,
    storyboard_pending: bool,
) -> Assessment:
    last = None if store is None else store.newest_project(plan.name)
    recorded = (last.node_inputs or {}) if last is not None else None
    explained = tuple(_explain(s, recorded) if s.status is Status.NEW else s for s in steps)
    explained = _upstream_assets(explained)
    stitch, reason = _stitch(plan, steps, store, config)
    return Assessment(plan, explained, stitch, reason, storyboard_pending)


def up_to_date(
    plan: Plan | JobMemo, project: Project | ProjectRow, config: Config, *, deliver: bool = False
) -> bool:
    """A finished project of this plan whose outputs are intact: final.mp4, manifest.json
    and the contact sheet match their recorded sha256 (and the `output:` copy, if any).
    In bucket mode the bucket's copies are checked (see `outputs_intact`).

    With `deliver`, a missing or changed `output:` copy is copied again from the intact
    final video (on another machine: fetched from the bucket, no stitch). Anything less is
    rebuilt by running the project again: its steps trust what is recorded and intact, so
    that costs no provider call.
    """
    from vidpipe.outputs.manifest import deliver_again, delivered, outputs_intact

    if project.status != "complete" or not project.output_path:
        return False
    if project.plan_digest != plan.digest:
        return False
    if not outputs_intact(config, project):
        return False
    if not plan.output or delivered(config, project, plan.output):
        return True
    captioned = bool((plan.settings.get("finish") or {}).get("captions"))
    return deliver and deliver_again(config, project, plan.output, captioned=captioned)


def _stitch(
    plan: Plan, steps: list[Step], store: Store | None, config: Config
) -> tuple[Status, str]:
    if any(s.status is not Status.REUSE for s in steps):
        return Status.NEW, "after the new generations"
    project = None if store is None else store.newest_project(plan.name, plan.digest)
    if project is None:
        return Status.NEW, "a new project for the changed job (every generation cached)"
    if up_to_date(plan, project, config):
        return Status.REUSE, "final.mp4 matches the job file"
    return Status.NEW, "final.mp4 does not match the job file (no provider call)"


# -- why a generation is new --------------------------------------------------------------

_FRAME_FIELDS = {"first_frame": "start", "last_frame": "end", "reference": "start"}


def _explain(step: Step, recorded: Mapping[str, Any] | None) -> Step:
    if step.reasons:
        # Some inputs do not exist yet (an upstream generation is new); name what is known
        # to have changed among the others.
        old = (recorded or {}).get(step.node)
        known = _changes(step, old, only=step.inputs) if old and step.inputs else []
        return replace(step, reasons=(*known, *step.reasons))
    if recorded is None:
        reasons: tuple[str, ...] = ("no earlier project of this job",)
    elif step.node not in recorded:
        reasons = ("not made by the last project of this job",)
    else:
        reasons = tuple(_changes(step, recorded[step.node])) or (
            "same inputs as the last project, but not in the cache",
        )
    return Step(
        step.node, step.capability, step.scene, step.status, step.key, step.cost_usd,
        reasons, step.inputs, step.context, step.labels,
    )  # fmt: skip


def _changes(
    step: Step, old: Mapping[str, Any], only: Mapping[str, str] | None = None
) -> list[str]:
    scene = f"scene {step.scene}" if step.scene is not None else ""
    old_inputs: Mapping[str, str] = old.get("inputs") or {}
    old_context: Mapping[str, str] = old.get("context") or {}
    names = sorted(only if only is not None else {*step.inputs, *old_inputs})
    changed = [k for k in names if step.inputs.get(k) != old_inputs.get(k)]
    context = [k for k in step.context if k in old_context and step.context[k] != old_context[k]]
    specific = [k for k in context if not k.startswith("setting ")] or context
    out = []
    for name in changed:
        if name == "prompt":
            kind = step.node.split()[-2] if step.capability == "image" else step.capability
            what = _PROMPT_OF.get(kind, "the prompt").format(scene=scene)
            detail = ", ".join(_context_label(k) for k in specific)
            out.append(f"{what} changed" + (f" ({detail})" if detail else ""))
        elif name in _FRAME_FIELDS:
            label = step.labels.get(name) or f"{scene}'s {_FRAME_FIELDS[name]} frame"
            out.append(f"{label} changed")
        elif name.startswith("asset "):
            asset = name.removeprefix("asset ")
            if name not in old_inputs:
                out.append(f"asset {asset} is new in {scene}")
            elif name not in step.inputs:
                out.append(f"asset {asset} is no longer in {scene}")
            else:
                out.append(f"asset {asset}'s image changed")
        elif name == "model":
            out.append(
                f"the {step.capability} model changed ({old_inputs.get(name)} → {step.inputs.get(name)})"
            )
        else:
            out.append(
                f"parameter {name} changed ({old_inputs.get(name)} → {step.inputs.get(name)})"
            )
    return out


def _upstream_assets(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """A generation new because its frame is new says so with that frame's asset reasons
    ("scene 2's end frame is new (asset logo's image changed)")."""
    asset_reasons = {
        _frame_label(s.node) + " is new": [r for r in s.reasons if r.startswith("asset ")]
        for s in steps
        if s.capability == "image" and s.status is Status.NEW
    }
    out = []
    for s in steps:
        reasons = tuple(
            f"{r} ({'; '.join(asset_reasons[r])})" if asset_reasons.get(r) else r for r in s.reasons
        )
        out.append(replace(s, reasons=reasons) if reasons != s.reasons else s)
    return tuple(out)


def _frame_label(node: str) -> str:
    """`scene 2 end frame` → `scene 2's end frame` (how reasons name a frame)."""
    _scene, index, kind, _frame = node.split()
    return f"scene {index}'s {kind} frame"


def _context_label(name: str) -> str:
    if name.startswith("template "):
        return f"the {name.removeprefix('template ')} template"
    if name.startswith("scene "):
        index, _, field_name = name.removeprefix("scene ").partition(" ")
        return f"scene {index}'s {field_name}"
    if name.startswith("setting "):
        return f"job setting {name.removeprefix('setting ')}"
    return f"the {name}"


def recorded_reasons(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Why one project's generations differ from another's, from what both recorded
    (:meth:`Assessment.record`, kept as ``Project.node_inputs``): the reasons `vidpipe plan`
    gives for a new generation, for every generation whose key changed."""
    out: list[str] = []
    for node_id, now in new.items():
        before = old.get(node_id)
        if before is not None and before.get("key") == now.get("key"):
            continue
        capability = (
            "storyboard"
            if node_id == "storyboard"
            else "video"
            if node_id.endswith(" clip")
            else "image"
        )
        scene = int(node_id.split()[1]) if node_id.startswith("scene ") else None
        step = Step(
            node_id, capability, scene, Status.NEW, now.get("key"), 0.0, (),
            now.get("inputs") or {}, now.get("context") or {},
        )  # fmt: skip
        reasons = _changes(step, before) if before else [f"{node_id} is new in this version"]
        out.extend(r for r in reasons if r not in out)
    return out
