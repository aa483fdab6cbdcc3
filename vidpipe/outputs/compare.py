"""Two versions of a job side by side: what changed between its previous project and this one.

:func:`recorded_changes` reads only what the two projects recorded, so it works for any
two projects in the database, whatever the job file says today. Projects made from a
compiled plan record what determined each generation; the plan's own reasons
(:func:`vidpipe.plan.assess.recorded_reasons`) then say what changed. For projects
recorded before that, the settings, models, storyboard, scene prompts and override
images are compared instead (:func:`settings_changes`).
"""

from __future__ import annotations

from typing import Any

from vidpipe.store import Project, Scene

#: Job keys whose changes show up scene by scene (in the prompts, fields and images).
_SCENE_LEVEL = {"scene_overrides"}
_PROMPTS = {"start": "start frame prompt", "end": "end frame prompt", "motion": "motion prompt"}


def _short(value: Any) -> str | None:
    """A value short enough to show as `old → new`, else None."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 and "\n" not in text else None


def _changed(label: str, old: Any, new: Any) -> str:
    a, b = _short(old), _short(new)
    if old is None:
        return f"{label} set" + (f" to {b}" if b is not None else "")
    if new is None:
        return f"{label} removed"
    if a is not None and b is not None:
        return f"{label}: {a} → {b}"
    return f"{label} changed"


def _mapping_changes(prefix: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(_changed(f"{prefix}{key}", old.get(key), new.get(key)))
    return out


def recorded_changes(
    old: Project, new: Project, old_scenes: list[Scene], new_scenes: list[Scene]
) -> list[str]:
    """Why `new` is a different version of the job than `old`, in short sentences."""
    if old.node_inputs and new.node_inputs:
        from vidpipe.plan.assess import recorded_reasons

        reasons = recorded_reasons(old.node_inputs, new.node_inputs)
        if reasons:
            return reasons
    return settings_changes(old, new, old_scenes, new_scenes)


def settings_changes(
    old: Project, new: Project, old_scenes: list[Scene], new_scenes: list[Scene]
) -> list[str]:
    """What changed between two projects' recorded settings, models, storyboards and scenes."""
    reasons: list[str] = []
    old_job, new_job = dict(old.settings or {}), dict(new.settings or {})
    for key in sorted(set(old_job) | set(new_job)):
        if key in _SCENE_LEVEL or old_job.get(key) == new_job.get(key):
            continue
        if key == "vars":
            reasons += _mapping_changes("vars.", old_job.get(key) or {}, new_job.get(key) or {})
        else:
            reasons.append(_changed(key, old_job.get(key), new_job.get(key)))
    reasons += _mapping_changes("provider for ", old.providers or {}, new.providers or {})
    reasons += _mapping_changes("model for ", old.models or {}, new.models or {})
    if old.storyboard_prompt != new.storyboard_prompt:
        reasons.append("storyboard prompt changed")
    elif old.storyboard != new.storyboard:
        reasons.append("storyboard answer changed (same prompt)")
    before = {s.index: s for s in old_scenes}
    for scene in new_scenes:
        was = before.pop(scene.index, None)
        if was is None:
            reasons.append(f"scene {scene.index} added")
            continue
        reasons += _scene_changes(was, scene)
    reasons += [f"scene {index} removed" for index in sorted(before)]
    if not reasons:
        reasons.append(
            "same recorded inputs: made again (--force), or templates changed"
            if old.plan_digest == new.plan_digest
            else "templates or vidpipe's version changed"
        )
    return reasons


def _scene_changes(old: Scene, new: Scene) -> list[str]:
    out = []
    label = f"scene {new.index}"
    if old.description != new.description:
        out.append(f"{label}: description changed")
    if old.duration != new.duration:
        out.append(f"{label}: duration {old.duration}s → {new.duration}s")
    prompts_old, prompts_new = old.prompts or {}, new.prompts or {}
    for kind, name in _PROMPTS.items():
        if prompts_old.get(kind) != prompts_new.get(kind):
            out.append(f"{label}: {name} changed")
    frames_old = {k.kind: k for k in old.keyframes}
    for frame in new.keyframes:
        was = frames_old.get(frame.kind)
        if frame.source == "override" and (was is None or was.sha256 != frame.sha256):
            out.append(f"{label}: {frame.kind} image (override) changed")
    return out
