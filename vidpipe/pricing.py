"""Prices per model, in USD, and the cost of a call or a planned job.

Published prices change. Each entry names its source and the date it was read; override
any of them under `pricing:` in vidpipe.yaml (by model id) without waiting for a release.
Filtered and failed generations are not billed, so they cost nothing here either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vidpipe.providers.base import Usage

_VERTEX = "Vertex AI generative AI pricing page"

#: model id → price fields. Unknown models of a paid provider cost 0 and are flagged by
#: `vidpipe estimate` as unpriced.
PRICES: dict[str, dict[str, float]] = {
    # Veo: USD per second of generated video, with and without an audio track.
    # Source: _VERTEX, Veo section, read 2025-10-20.
    "veo-3.1-generate-001": {"per_second": 0.20, "per_second_audio": 0.40},
    "veo-3.1-generate-preview": {"per_second": 0.20, "per_second_audio": 0.40},
    "veo-3.1-fast-generate-001": {"per_second": 0.10, "per_second_audio": 0.15},
    "veo-3.1-fast-generate-preview": {"per_second": 0.10, "per_second_audio": 0.15},
    "veo-3.0-generate-001": {"per_second": 0.20, "per_second_audio": 0.40},
    "veo-3.0-fast-generate-001": {"per_second": 0.10, "per_second_audio": 0.15},
    "veo-2.0-generate-001": {"per_second": 0.50, "per_second_audio": 0.50},
    # Images: USD per generated image.
    # Source: _VERTEX, Gemini 2.5 Flash Image (1,290 output tokens at $30/M) and Imagen 4,
    # read 2025-10-20.
    "gemini-2.5-flash-image": {"per_image": 0.039},
    "gemini-2.5-flash-image-preview": {"per_image": 0.039},
    "imagen-4.0-generate-001": {"per_image": 0.04},
    "imagen-4.0-fast-generate-001": {"per_image": 0.02},
    "imagen-4.0-ultra-generate-001": {"per_image": 0.06},
    "imagen-3.0-generate-002": {"per_image": 0.04},
    # Text: USD per million tokens (prompts up to 200k tokens).
    # Source: _VERTEX, Gemini 2.5 section, read 2025-10-20.
    "gemini-2.5-flash": {"per_million_input_tokens": 0.30, "per_million_output_tokens": 2.50},
    "gemini-2.5-flash-lite": {"per_million_input_tokens": 0.10, "per_million_output_tokens": 0.40},
    "gemini-2.5-pro": {"per_million_input_tokens": 1.25, "per_million_output_tokens": 10.00},
}

#: Providers whose calls are free (they run on this machine).
FREE_PROVIDERS = frozenset({"local"})


@dataclass(frozen=True)
class PriceTable:
    """The built-in prices with the project's overrides applied."""

    overrides: Mapping[str, Mapping[str, float]]

    def price(self, model: str) -> dict[str, float] | None:
        base = PRICES.get(model)
        extra = self.overrides.get(model)
        if base is None and extra is None:
            return None
        return {**(base or {}), **(extra or {})}

    def known(self, provider: str, model: str) -> bool:
        return provider in FREE_PROVIDERS or self.price(model) is not None

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        """USD for one successful call."""
        if provider in FREE_PROVIDERS:
            return 0.0
        price = self.price(model) or {}
        total = usage.images * price.get("per_image", 0.0)
        total += usage.input_tokens / 1e6 * price.get("per_million_input_tokens", 0.0)
        total += usage.output_tokens / 1e6 * price.get("per_million_output_tokens", 0.0)
        per_second = price.get("per_second_audio" if usage.audio else "per_second", 0.0)
        if usage.audio and "per_second_audio" not in price:
            per_second = price.get("per_second", 0.0)
        total += usage.video_seconds * per_second
        return round(total, 6)


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "images": usage.images,
        "video_seconds": usage.video_seconds,
        "audio": usage.audio,
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
