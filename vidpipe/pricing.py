"""Prices per model, in USD, and the cost of a call or a planned job.

Prices live in the model catalog (``vidpipe/models.yaml``), each with the source it was
read from and the date; a model added under ``models:`` in vidpipe.yaml is priced from
there, and ``pricing:`` in vidpipe.yaml overrides any price by model id without waiting
for a release. Filtered and failed generations are not billed, so they cost nothing here
either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vidpipe.catalog import Catalog
from vidpipe.catalog import builtin as builtin_catalog
from vidpipe.providers.base import Usage

#: Fields of a price entry that are not rates.
_NOT_RATES = ("source", "read", "by_resolution")

#: Providers whose calls are free (they run on this machine).
FREE_PROVIDERS = frozenset({"local"})


def catalog_prices(catalog: Catalog | None = None) -> dict[str, dict[str, Any]]:
    """model id → its catalog price entry (rates plus `source`, `read`, `by_resolution`)."""
    catalog = catalog or builtin_catalog()
    return {info.id: dict(info.prices) for info in catalog if info.prices}


@dataclass(frozen=True)
class PriceTable:
    """The catalog's prices with the project's `pricing:` overrides applied."""

    overrides: Mapping[str, Mapping[str, float]]
    catalog: Catalog = field(default_factory=builtin_catalog)

    def price(self, model: str, resolution: str | None = None) -> dict[str, float] | None:
        """The rates of `model` (those for `resolution` where the catalog has them)."""
        info = self.catalog.get(model)
        base = dict(info.prices) if info is not None and info.prices else None
        extra = self.overrides.get(model)
        if base is None and extra is None:
            return None
        rates = {k: float(v) for k, v in (base or {}).items() if k not in _NOT_RATES}
        by_resolution = (base or {}).get("by_resolution") or {}
        if resolution is not None and resolution in by_resolution:
            rates.update({k: float(v) for k, v in by_resolution[resolution].items()})
        rates.update({k: float(v) for k, v in (extra or {}).items()})
        return rates

    def known(self, provider: str, model: str) -> bool:
        return provider in FREE_PROVIDERS or self.price(model) is not None

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        """USD for one successful call."""
        if provider in FREE_PROVIDERS:
            return 0.0
        price = self.price(model, usage.resolution) or {}
        total = usage.images * price.get("per_image", 0.0)
        total += usage.input_tokens / 1e6 * price.get("per_million_input_tokens", 0.0)
        total += usage.output_tokens / 1e6 * price.get("per_million_output_tokens", 0.0)
        per_second = price.get("per_second_audio" if usage.audio else "per_second", 0.0)
        if usage.audio and "per_second_audio" not in price:
            per_second = price.get("per_second", 0.0)
        total += usage.video_seconds * per_second
        if usage.input_tokens or usage.output_tokens or usage.images or usage.video_seconds:
            total += price.get("per_request", 0.0)
        return round(total, 6)


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "images": usage.images,
        "video_seconds": usage.video_seconds,
        "audio": usage.audio,
        "resolution": usage.resolution,
    }


@dataclass(frozen=True)
class Estimate:
    """Planned provider calls of a job and what they would cost."""

    calls: dict[str, int]
    by_step: dict[str, float]
    unpriced: list[str]

    @property
    def cost_usd(self) -> float:
        return round(sum(self.by_step.values()), 6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "cost_usd": self.cost_usd,
            "by_step": dict(self.by_step),
            "unpriced_models": list(self.unpriced),
        }


def estimate_job(job: Any, providers: Mapping[Any, Any], table: PriceTable) -> Estimate:
    """The calls a full run of `job` would make, and their cost, assuming no cache hits.

    `providers` maps each step (storyboard, image, video) to its provider instance.
    """
    images = 0 if (job.override(0) and job.override(0).start_image) else 1
    images += sum(0 if (o := job.override(i)) and o.end_image else 1 for i in range(job.scenes))
    calls = {"storyboard": 1, "image": images, "video": job.scenes}
    by_step: dict[str, float] = {}
    unpriced: list[str] = []
    for step, count in calls.items():
        provider = providers[step]
        model = provider.model(step, job.models.get(step))
        if not table.known(provider.name, model):
            unpriced.append(model)
        if step == "video":
            by_step[step] = sum(
                table.cost(provider.name, model, provider.planned_usage(step, job, model, scene=i))
                for i in range(job.scenes)
            )
        else:
            by_step[step] = count * table.cost(
                provider.name, model, provider.planned_usage(step, job, model)
            )
        by_step[step] = round(by_step[step], 6)
    return Estimate(calls=calls, by_step=by_step, unpriced=unpriced)
