"""Clip operations: submit a video generation, poll it, resubmit it, record what it gave.

Video models answer with long-running operations. A project submits each clip as soon as
both its frames exist and polls every open operation together, so remote generation
overlaps with keyframing. An operation is recorded (in the generation cache and on the
clip row) before it is first polled: a crashed or interrupted run resumes polling it
instead of paying for a second submission.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vidpipe.artifacts import Layout, copy_atomic, write_atomic
from vidpipe.engine.calls import Calls, Stop
from vidpipe.engine.runtime import Runtime
from vidpipe.engine.states import ClipState, FrameSource, SceneState
from vidpipe.errors import ProviderError, VidpipeError
from vidpipe.plan.model import Plan
from vidpipe.plan.requests import request_key, video_references, video_request
from vidpipe.providers import Provider, ReferenceImage, VideoRequest, VideoStatus
from vidpipe.store import utcnow


@dataclass
class _Op:
    """An open operation of one scene's clip."""

    index: int
    key: str
    request: VideoRequest
    operation_id: str
    submitted: float
    next_poll: float
    attempts: int
    polled: int = 0
    #: Another job's operation, polled here too: that job made (and pays for) the clip.
    shared: bool = False


class ClipOperations:
    """The clips of one project in one run: submitted, polled and finished here."""

    def __init__(self, runtime: Runtime, plan: Plan, project_id: str, layout: Layout, calls: Calls):
        self.rt = runtime
        self.job = job = plan.job
        self.project_id = project_id
        self.layout = layout
        self.calls = calls
        self.provider: Provider = runtime.provider_for(job, "video")
        self.ops: dict[int, _Op] = {}
        #: scene index → final clip state (complete, or a gap, or failed)
        self.done: dict[int, ClipState] = {}
        #: scene index → the asset references its clip request carries (reference mode)
        self.sent: dict[int, dict[str, object] | None] = {}

    def pending(self, index: int) -> bool:
        """Whether scene `index`'s clip is finished or under way in this run."""
        return index in self.done or index in self.ops

    def request(
        self,
        index: int,
        prompt: str,
        start: tuple[Path, str],
        end: tuple[Path, str],
        refs: Sequence[ReferenceImage] = (),
    ) -> VideoRequest:
        """Scene `index`'s clip request: from its frames, or in reference mode its assets'."""
        model = self.provider.model("video", self.job.models.get("video"))
        self.sent[index] = None
        if self.job.video_mode(index) != "assets":
            first, last = start[0].read_bytes(), end[0].read_bytes()
            return video_request(self.job, self.provider, index, prompt, first, last)
        # Reference images replace both frames: the model takes one or the other.
        if not refs:
            raise VidpipeError(
                f"scene {index} makes its clip from asset references (video: {{references: "
                "assets}), but the scene shows no asset; list its assets in the storyboard "
                "or scene_overrides, or use references: frames"
            )
        chosen = video_references(self.provider, model, refs)
        limit = self.provider.max_reference_images(model)
        self.sent[index] = chosen.record(f"scene {index} clip", model, limit)
        return video_request(self.job, self.provider, index, prompt, None, None, chosen.sent)

    def submit(
        self,
        index: int,
        prompt: str,
        start: tuple[Path, str],
        end: tuple[Path, str],
        refs: Sequence[ReferenceImage] = (),
    ) -> None:
        """Start scene `index`'s clip, unless it is recorded, cached or already under way."""
        store = self.rt.store
        request = self.request(index, prompt, start, end, refs)
        key = request_key(self.provider, "video", request)
        clip = store.clip(self.project_id, index)
        if clip is not None and clip.generation_key == key:
            if clip.status == ClipState.COMPLETE and self.rt.config.objects.restore(
                self.layout.load(clip.path or ""), clip.sha256
            ):
                self.done[index] = ClipState.COMPLETE
                return
            late = clip.status == ClipState.TIMED_OUT and clip.operation_id
            if clip.status in (ClipState.RAI_FILTERED, ClipState.TIMED_OUT) and not late:
                self.done[index] = ClipState(clip.status)
                return
        now = time.monotonic()
        # Poll an operation already under way: ours from a crashed run, one that timed out
        # in an earlier run (it kept running, and is billed when it finishes: its clip is
        # worth having), or another job's.
        if (
            clip is not None
            and clip.generation_key == key
            and clip.status in (ClipState.SUBMITTED, ClipState.POLLING, ClipState.TIMED_OUT)
            and clip.operation_id
        ):
            self.ops[index] = _Op(
                index, key, request, clip.operation_id, now, now, clip.attempts or 1
            )
            return
        self._start(index, key, request, attempts=1)

    def _start(self, index: int, key: str, request: VideoRequest, attempts: int) -> None:
        """Make clip `key`: from the cache, by polling another job's operation for the same
        clip, or by submitting it on this project's own claim (single flight)."""
        store = self.rt.store
        target = self.layout.clip(index)
        now = time.monotonic()
        while True:
            hit = self.calls.obtain(
                f"scene {index} clip",
                key,
                capability="video",
                provider=self.provider,
                model=request.model,
            )
            if hit is not None and hit.path is not None:
                sha = copy_atomic(hit.path, target)
                self._complete(
                    index, key, target, sha, source=FrameSource.CACHED, operation_id=None
                )
                return
            # Another job's operation for the same clip: poll it rather than pay again.
            pending = self.rt.cache.pending(key)
            if pending is not None and pending.operation_id:
                self.ops[index] = _Op(
                    index, key, request, pending.operation_id, now, now, attempts, shared=True
                )
                store.put_clip(
                    self.project_id,
                    index,
                    status=ClipState.POLLING,
                    generation_key=key,
                    operation_id=pending.operation_id,
                    attempts=attempts,
                    submitted_at=utcnow(),
                )
                return
            # Submit only on our own claim. The operation `obtain` saw pending may have
            # finished since: then the next look is a cache hit, not a second payment.
            row = store.generation(key)
            if row is not None and row.status == "running" and row.owner == self.calls.owner:
                break
        self._submit(index, key, request, attempts=attempts)

    def _submit(self, index: int, key: str, request: VideoRequest, attempts: int) -> None:
        try:
            self.calls.calling(f"scene {index} clip (attempt {attempts})", request.model)
            operation_id = self.provider.submit_video(request)
        except BaseException:
            self.calls.release(key)
            raise
        # Recorded before the first poll: a crash from here on resumes polling, never resubmits.
        self.calls.submitted(
            key, provider=self.provider, model=request.model, operation_id=operation_id
        )
        with self.rt.store.atomic():  # the clip row and its scene: one commit
            self._submitted(index, key, operation_id, attempts)
        now = time.monotonic()
        self.ops[index] = _Op(
            index, key, request, operation_id, now, now + self.provider.poll_interval, attempts
        )

    def _submitted(self, index: int, key: str, operation_id: str, attempts: int) -> None:
        self.rt.store.put_clip(
            self.project_id,
            index,
            status=ClipState.SUBMITTED,
            generation_key=key,
            operation_id=operation_id,
            attempts=attempts,
            polls=0,
            reference_images=self.sent.get(index),
            path=None,
            sha256=None,
            error_message=None,
            submitted_at=utcnow(),
            source=FrameSource.GENERATED,
        )
        self.rt.store.update_scene(self.project_id, index, status=SceneState.VIDEO_GENERATING)

    def poll_due(self) -> None:
        """Poll every open operation whose next poll is due."""
        now = time.monotonic()
        for _index, op in sorted(self.ops.items()):
            if op.next_poll > now:
                continue
            self.calls.check_stop()
            self.calls.check_lease()
            status = self.provider.poll_video(op.operation_id, op.request)
            op.polled += 1
            self._handle(op, status)
            now = time.monotonic()

    def wait(self, progress: Callable[[int], None]) -> None:
        """Poll until every open operation has finished; `progress` gets the count done."""
        while self.ops:
            progress(len(self.done))
            self.poll_due()
            if self.ops:
                wait = max(0.0, min(op.next_poll for op in self.ops.values()) - time.monotonic())
                if self.calls.stop.wait(min(wait, self.provider.poll_interval or wait)):
                    raise Stop()

    def check_outcome(self) -> None:
        """Fail the project if a clip failed or none was made; gaps alone do not fail it."""
        failed = sorted(i for i, state in self.done.items() if state == ClipState.FAILED)
        if failed:
            reasons = {s.index: s.error_message for s in self.rt.store.scenes(self.project_id)}
            detail = "; ".join(f"scene {i}: {reasons.get(i)}" for i in failed)
            raise ProviderError(f"{len(failed)} clip(s) failed: {detail}")
        if not any(state == ClipState.COMPLETE for state in self.done.values()):
            raise ProviderError("no clip was generated (every clip was filtered or timed out)")

    def _handle(self, op: _Op, status: VideoStatus) -> None:
        provider, index = self.provider, op.index
        if status.state == "running":
            if op.polled == 1:
                self.rt.store.put_clip(self.project_id, index, status=ClipState.POLLING)
            if time.monotonic() - op.submitted > provider.poll_timeout:
                # The operation stays recorded (clip row and pending generation): it keeps
                # running on the service, so the next run or `vidpipe resume` polls it
                # again instead of paying for another.
                del self.ops[index]
                self._final(
                    index,
                    ClipState.TIMED_OUT,
                    f"no result after {provider.poll_timeout:.0f} s; operation "
                    f"{op.operation_id} is recorded and the next run or `vidpipe resume` "
                    "polls it again",
                )
            else:
                op.next_poll = time.monotonic() + provider.poll_interval
            return
        del self.ops[index]
        if status.state == "complete" and (status.data or status.uri):
            target = self.layout.clip(index)
            if status.data:
                sha = write_atomic(target, status.data)
            else:
                # The service wrote the clip into the artifacts bucket: fetched once, kept
                # as an object by a copy inside the bucket (see ObjectStore.adopt).
                assert status.uri is not None
                sha = self.rt.config.objects.adopt(status.uri, target)
            # The job that submitted a shared operation records it as made and paid for:
            # here it is a reuse, or the ledger would show one clip paid for twice.
            record = self.calls.shared if op.shared else self.calls.record
            record(
                op.key,
                capability="video",
                provider=provider,
                model=op.request.model,
                usage=status.usage,
                path=target,
                sha256=sha,
                operation_id=op.operation_id,
                started=op.submitted,
            )
            self._complete(
                index,
                op.key,
                target,
                sha,
                source=FrameSource.CACHED if op.shared else FrameSource.GENERATED,
                operation_id=op.operation_id,
            )
            return
        self.calls.forget(op.key)  # failures and filtered clips are never cached
        if status.state == "rai_filtered":
            self._final(
                index,
                ClipState.RAI_FILTERED,
                status.reason or "filtered by the provider's safety filter",
            )
        elif status.retry and op.attempts <= provider.resubmits:
            # Through the claim again: of the jobs polling this operation, one submits it
            # again and the others poll that one (a failed operation is not billed; two
            # new ones would be).
            self._start(index, op.key, op.request, attempts=op.attempts + 1)
        elif not status.retry:
            # A deterministic refusal: the same request would be refused again.
            self._final(index, ClipState.FAILED, status.reason or "the service refused the clip")
        else:
            reason = status.reason or "the operation failed"
            self._final(index, ClipState.FAILED, f"{reason} (after {op.attempts} attempts)")

    def _complete(
        self,
        index: int,
        key: str,
        path: Path,
        sha: str,
        *,
        source: FrameSource,
        operation_id: str | None,
    ) -> None:
        from vidpipe.media import probe

        info = probe(path)
        with self.rt.store.atomic():
            self._record_complete(index, key, path, sha, info.duration, source, operation_id)
        self.done[index] = ClipState.COMPLETE

    def _record_complete(
        self,
        index: int,
        key: str,
        path: Path,
        sha: str,
        duration: float,
        source: FrameSource,
        operation_id: str | None,
    ) -> None:
        self.rt.store.put_clip(
            self.project_id,
            index,
            status=ClipState.COMPLETE,
            generation_key=key,
            path=self.layout.stored(path),
            sha256=sha,
            duration=duration,
            source=source,
            error_message=None,
            reference_images=self.sent.get(index),
            completed_at=utcnow(),
            **({"operation_id": operation_id} if operation_id else {}),
        )
        self.rt.store.update_scene(self.project_id, index, status=SceneState.VIDEO_DONE)

    def _final(self, index: int, state: ClipState, reason: str) -> None:
        with self.rt.store.atomic():
            self.rt.store.put_clip(
                self.project_id, index, status=state, error_message=reason, completed_at=utcnow()
            )
            self.rt.store.update_scene(
                self.project_id,
                index,
                status=SceneState.FAILED if state == ClipState.FAILED else SceneState.VIDEO_DONE,
                error_message=reason,
            )
        self.done[index] = state
