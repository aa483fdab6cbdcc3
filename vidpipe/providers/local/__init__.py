"""The offline `local` provider: storyboards from the prompt (`planner`), Pillow panels
(`panels`) and PyAV animatic clips (`animatic`)."""

from vidpipe.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
