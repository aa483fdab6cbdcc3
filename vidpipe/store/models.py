"""The tables vidpipe keeps: projects, scenes, keyframes, clips, runs, batches (and the
items of a submitted batch's queue), generations and the call log.

Paths are stored relative to `artifacts_dir` so a database can move between machines that
mount the artifacts at different places.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
)

from vidpipe.store.ids import SCHEMA_VERSION as SCHEMA_VERSION
from vidpipe.store.ids import new_id as new_id
from vidpipe.store.ids import owner_gone as owner_gone
from vidpipe.store.ids import runner_id as runner_id
from vidpipe.store.ids import utcnow as utcnow


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Meta(Base):
    __tablename__ = "vidpipe_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class BatchRecord(Base):
    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    runner: Mapped[str] = mapped_column(String(200), default="")
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ItemState(StrEnum):
    """A queued job: ``queued`` → ``claimed`` (a worker holds its lease) → ``done`` or
    ``failed``; a claim whose lease lapses, or that its worker gives back, is claimable."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class BatchState(StrEnum):
    """A batch: ``running`` from `vidpipe run` (or a submitted batch's first claim) until
    ``complete`` or ``failed``; a submitted batch is ``queued`` until a worker claims a job."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class BatchItem(Base):
    """One job of a submitted batch (`vidpipe submit`): queued until a worker claims it.

    A claim is a lease (`worker`, `lease_expires_at`) renewed with the worker's project
    leases; one that lapses (a dead worker's) may be claimed again, `attempts` counting the
    claims. `outcome` is the job's entry of the batch report, wherever the job ran.
    """

    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    job_name: Mapped[str] = mapped_column(String(64))
    #: The job file, relative to the project root (posix): each worker reads its own copy.
    source: Mapped[str] = mapped_column(Text)
    #: The digest of the plan submitted: a worker whose copy compiles to another one refuses.
    plan_digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=ItemState.QUEUED, index=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    queued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_name: Mapped[str] = mapped_column(String(64), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    #: The digest of the plan the project was made from (its identity among a job's projects).
    plan_digest: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: The resolved settings the plan was made from (a record; nothing reads settings here).
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: What determined each generation (see vidpipe.plan.assess): why a later plan differs.
    node_inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    providers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    storyboard: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    storyboard_prompt: Mapped[str | None] = mapped_column(Text)
    output_path: Mapped[str | None] = mapped_column(Text)
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    output_duration: Mapped[float | None] = mapped_column(Float)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    sheet_sha256: Mapped[str | None] = mapped_column(String(64))
    cost_estimate_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cost_actual_usd: Mapped[float] = mapped_column(Float, default=0.0)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    stopped_after: Mapped[str | None] = mapped_column(String(20))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scenes: Mapped[list[Scene]] = relationship(
        back_populates="project", order_by="Scene.index", cascade="all, delete-orphan"
    )


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("project_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(30), default="pending")
    description: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prompts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duration: Mapped[int] = mapped_column(Integer, default=4)
    error_message: Mapped[str | None] = mapped_column(Text)
    project: Mapped[Project] = relationship(back_populates="scenes")
    keyframes: Mapped[list[Keyframe]] = relationship(
        back_populates="scene", cascade="all, delete-orphan", order_by="Keyframe.kind.desc()"
    )
    clip: Mapped[VideoClip | None] = relationship(
        back_populates="scene", cascade="all, delete-orphan", uselist=False
    )


class Keyframe(Base):
    __tablename__ = "keyframes"
    __table_args__ = (UniqueConstraint("scene_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # start | end
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))  # generated | cached | inherited | override
    generation_key: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    #: Asset reference images sent with the request: {sent: [{asset, path, sha256}], dropped, warning}.
    reference_images: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    scene: Mapped[Scene] = relationship(back_populates="keyframes")


class VideoClip(Base):
    __tablename__ = "video_clips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scene_id: Mapped[int] = mapped_column(
        ForeignKey("scenes.id", ondelete="CASCADE"), unique=True, index=True
    )
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    generation_key: Mapped[str] = mapped_column(String(64))
    operation_id: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    duration: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(20), default="generated")
    error_message: Mapped[str | None] = mapped_column(Text)
    #: Asset reference images the clip was made from (`video: {references: assets}`).
    reference_images: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    scene: Mapped[Scene] = relationship(back_populates="clip")


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"))
    runner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    provider_calls: Mapped[int] = mapped_column(Integer, default=0)
    cached_calls: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    error_message: Mapped[str | None] = mapped_column(Text)


class Generation(Base):
    """One provider call, keyed by the hash of everything that determines its result."""

    __tablename__ = "generations"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    capability: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    #: running (claimed: being made, see lease) | submitted | complete
    status: Mapped[str] = mapped_column(String(20))
    operation_id: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(Text)
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    project_id: Mapped[str | None] = mapped_column(String(40))
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class CallRecord(Base):
    """One generation a project used in one run: made (and paid for) or taken from the cache.

    The generations table is the cache, one row per key, overwritten by ``--force``; this is
    the ledger that `vidpipe costs` and `vidpipe batches` add up, one row per use.
    """

    __tablename__ = "call_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)
    project_id: Mapped[str] = mapped_column(String(40), index=True)
    job_name: Mapped[str] = mapped_column(String(64))
    capability: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64))
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float | None] = mapped_column(Float)
