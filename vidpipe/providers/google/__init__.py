"""The `google` provider: Vertex AI through the official google-genai SDK."""

from vidpipe.providers.google.provider import GoogleProvider

__all__ = ["GoogleProvider"]
