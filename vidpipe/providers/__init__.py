"""Providers, registered by name and by the entry-point group ``vidpipe.providers``.

The pipeline asks this registry for a provider by name and never imports a provider
module itself, so `google-genai` loads only when a job uses `google`.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from vidpipe.providers.base import (
    CAPABILITIES,
    Capability,
    ImageAnswer,
    ImageRequest,
    Provider,
    ReferenceImage,
    StoryboardAnswer,
    StoryboardRequest,
    Usage,
    VideoRequest,
    VideoStatus,
)

if TYPE_CHECKING:
    from vidpipe.spec.config import Config

__all__ = [
    "CAPABILITIES",
    "Capability",
    "ImageAnswer",
    "ImageRequest",
    "Provider",
    "ReferenceImage",
    "StoryboardAnswer",
    "StoryboardRequest",
    "Usage",
    "VideoRequest",
    "VideoStatus",
    "available",
    "create",
    "register",
]

ENTRY_POINT_GROUP = "vidpipe.providers"

_BUILTIN = {
    "local": "vidpipe.providers.local:LocalProvider",
    "google": "vidpipe.providers.google:GoogleProvider",
}
_registered: dict[str, type[Provider] | str] = {}


def register(name: str, provider: type[Provider] | str) -> None:
    """Register a provider class (or a "module:Class" string) under `name`."""
    _registered[name] = provider


@cache
def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Every provider name a job may use."""
    return sorted({*_BUILTIN, *_entry_points(), *_registered})


def provider_class(name: str) -> type[Provider]:
    """The provider class registered as `name` (imported on first use)."""
    target = _registered.get(name) or _entry_points().get(name) or _BUILTIN.get(name)
    if target is None:
        raise KeyError(name)
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            raise TypeError(f"{target} is not a vidpipe Provider subclass")
        return cls
    return target


def create(name: str, config: Config) -> Provider:
    """A new provider instance. One instance serves every job of a batch (shared limits)."""
    return provider_class(name)(config)
