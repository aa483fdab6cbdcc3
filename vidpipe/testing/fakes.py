"""A recording fake provider for orchestrator tests (in the spirit of llm's MockModel).

It answers instantly with tiny real artifacts (PNG keyframes, MP4 clips from the local
renderer's media code), records every call in `history`, and can be told to fail or
filter specific calls. Register it with `vidpipe.providers.register("fake", FakeProvider)`.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from vidpipe.errors import ProviderError
from vidpipe.providers import (
    ImageAnswer,
    ImageRequest,
    Provider,
    StoryboardAnswer,
    StoryboardRequest,
    Usage,
    VideoRequest,
    VideoStatus,
)
from vidpipe.providers.local.planner import plan


@dataclass
class Call:
    capability: str
    request: Any
    operation_id: str | None = None


@dataclass
class Script:
    """What the fake should do; shared by every instance (a batch makes its own)."""

    history: list[Call] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)
    #: capability → callables(request) returning an exception to raise, or None.
    failures: dict[str, list[Callable[[Any], Exception | None]]] = field(default_factory=dict)
    #: operation id → polls left before it completes.
    running: dict[str, int] = field(default_factory=dict)
    polls_until_done: int = 0
    video_state: Callable[[VideoRequest, int], str] | None = None
    #: Rewrites each storyboard answer (to script an invalid one).
    storyboard_edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, capability: str) -> list[Call]:
        return [c for c in self.history if c.capability == capability]

    def reset(self) -> None:
        self.history.clear()
        self.polls.clear()
        self.failures.clear()
        self.running.clear()
        self.polls_until_done = 0
        self.video_state = None
        self.storyboard_edit = None


SCRIPT = Script()


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


class FakeProvider(Provider):
    name: ClassVar[str] = "fake"
    default_models: ClassVar[dict[str, str]] = {
        "storyboard": "fake-text",
        "image": "fake-image",
        "video": "fake-video",
    }
    poll_interval = 0.0
    poll_timeout = 5.0

    def _fail(self, capability: str, request: Any) -> None:
        for rule in SCRIPT.failures.get(capability, []):
            exc = rule(request)
            if exc is not None:
                raise exc

    def storyboard(self, request: StoryboardRequest) -> StoryboardAnswer:
        with SCRIPT.lock:
            SCRIPT.history.append(Call("storyboard", request))
        self._fail("storyboard", request)
        data = plan(
            request.idea,
            scenes=request.scene_count,
            style=request.style,
            clip_duration=request.clip_duration,
            seed=request.seed,
            assets=request.assets,
        )
        if SCRIPT.storyboard_edit is not None:
            data = SCRIPT.storyboard_edit(data)
        return StoryboardAnswer(data=data, usage=Usage(input_tokens=100, output_tokens=200))

    def image(self, request: ImageRequest) -> ImageAnswer:
        with SCRIPT.lock:
            SCRIPT.history.append(Call("image", request))
        self._fail("image", request)
        n = len(SCRIPT.calls("image"))
        seed = sum(request.prompt.encode()) % 200
        return ImageAnswer(png=_png((seed, 40 + n % 100, 120)))

    def submit_video(self, request: VideoRequest) -> str:
        with SCRIPT.lock:
            op = f"fake/operations/{len(SCRIPT.calls('video'))}"
            SCRIPT.history.append(Call("video", request, op))
            SCRIPT.running[op] = SCRIPT.polls_until_done
        self._fail("video", request)
        return op

    def poll_video(self, operation_id: str, request: VideoRequest) -> VideoStatus:
        with SCRIPT.lock:
            SCRIPT.polls.append(operation_id)
            left = SCRIPT.running.get(operation_id, 0)
            if left > 0:
                SCRIPT.running[operation_id] = left - 1
                return VideoStatus(state="running")
        state = (
            SCRIPT.video_state(request, len(SCRIPT.calls("video")))
            if SCRIPT.video_state
            else "complete"
        )
        if state == "failed":
            return VideoStatus(state="failed", reason="fake failure")
        if state == "rai_filtered":
            return VideoStatus(state="rai_filtered", reason="fake filter")
        if state == "running":
            return VideoStatus(state="running")
        from vidpipe.providers.local.animatic import render_clip

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "c.mp4"
            first = request.first_frame or (
                request.references[0].data if request.references else _png((0, 0, 0))
            )
            render_clip(
                first,
                request.last_frame or first,
                out,
                duration=float(request.duration),
                width=64,
                height=36,
                fps=12,
            )
            return VideoStatus(
                state="complete", data=out.read_bytes(), usage=Usage(video_seconds=request.duration)
            )


def fail_with(
    message: str, *, times: int | None = 1, when: Callable[[Any], bool] | None = None
) -> Callable[[Any], Exception | None]:
    """A failure rule: raise ProviderError(message) for matching requests, `times` times."""
    left = [times]

    def rule(request: Any) -> Exception | None:
        if when is not None and not when(request):
            return None
        if left[0] is not None:
            if left[0] <= 0:
                return None
            left[0] -= 1
        return ProviderError(message)

    return rule
