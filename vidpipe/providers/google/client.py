"""Credentials, locations and SDK clients of the google provider.

Vertex AI takes three kinds of credentials, and vidpipe uses them as the service does:

* Application Default Credentials with a project (``GOOGLE_CLOUD_PROJECT`` or
  ``google.project``): every method, at ``/projects/P/locations/L/…``.
* An API key (``GOOGLE_API_KEY``) *with* a project: the same project URLs, the key sent
  as ``x-goog-api-key`` (google-genai ≥ 2.15 builds this; older versions refuse the
  combination).
* An API key alone (express mode): the project-less URL, which serves
  ``generateContent`` only. Veo (``predictLongRunning``) and Imagen (``predict``) answer
  400 there, so a batch that needs them is refused before its first call.

Each request goes to the location the catalog names for its model (Gemini 3 models are
served from ``global``, Veo from a region), or to ``google.locations.{text,image,video}``
when set. The SDK fixes one location per client, so there is one client per location,
made on first use and shared by every job of the batch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidpipe.errors import ConfigError

if TYPE_CHECKING:
    from vidpipe.catalog import Catalog
    from vidpipe.spec.config import GoogleSettings

#: Where a model goes when neither the catalog nor the configuration names a location.
DEFAULT_LOCATION = "us-central1"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The rate-limit kind (and `google.locations` key) of each step.
KINDS = {"storyboard": "text", "image": "image", "video": "video"}
#: The only method an API key without a project reaches.
EXPRESS_API = "generate_content"
_METHODS = {"predict": "predict (Imagen)", "predict_long_running": "predictLongRunning (Veo)"}


@dataclass(frozen=True)
class Credentials:
    """What the environment and vidpipe.yaml provide (the key is never stored elsewhere)."""

    api_key: str | None
    project: str | None
    location: str | None

    @property
    def express(self) -> bool:
        """An API key without a project: only generateContent is served."""
        return bool(self.api_key) and not self.project


def credentials(settings: GoogleSettings) -> Credentials:
    """Credentials from `GOOGLE_API_KEY`, `GOOGLE_CLOUD_PROJECT`/`google.project` and
    `GOOGLE_CLOUD_LOCATION`/`google.location`."""
    return Credentials(
        api_key=os.environ.get("GOOGLE_API_KEY") or None,
        project=settings.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
        location=settings.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or None,
    )


def api_of(catalog: Catalog, step: str, model: str) -> str:
    """The REST method family a model is called through (from the catalog)."""
    info = catalog.get(model)
    if info is not None:
        return info.api
    if step == "video":
        return "predict_long_running"
    return "predict" if model.startswith("imagen-") else "generate_content"


def express_refusal(creds: Credentials, needs: Collection[tuple[str, str]]) -> str | None:
    """Why express mode cannot serve `needs` ((model, api) pairs), or None if it can."""
    if not creds.express:
        return None
    blocked = sorted({(m, a) for m, a in needs if a != EXPRESS_API})
    if not blocked:
        return None
    listed = ", ".join(f"{m} ({_METHODS.get(a, a)})" for m, a in blocked)
    return (
        "GOOGLE_API_KEY without a project is Vertex AI express mode, which serves "
        f"generateContent only; {listed} cannot be called that way. Set GOOGLE_CLOUD_PROJECT "
        "and GOOGLE_CLOUD_LOCATION (or google.project and google.location in vidpipe.yaml) "
        "to use the key with your project"
    )


class Clients:
    """One google-genai client per location, created on first use (thread-safe)."""

    def __init__(self, settings: GoogleSettings):
        self.settings = settings
        self._clients: dict[str | None, Any] = {}
        self._adc: Any = None
        self._lock = threading.Lock()

    def location_for(self, catalog: Catalog, step: str, model: str) -> str:
        """The step's override, else the model's catalog location, else the configured
        location, else us-central1."""
        override = (self.settings.locations or {}).get(KINDS[step])
        if override:
            return override
        info = catalog.get(model)
        if info is not None and info.location:
            return info.location
        return credentials(self.settings).location or DEFAULT_LOCATION

    def adc(self, project: str | None) -> Any:
        """Application Default Credentials, found once (a ConfigError when there are none)."""
        with self._lock:
            if self._adc is None:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError

                try:
                    found, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
                except DefaultCredentialsError as exc:
                    raise ConfigError(
                        f"the google provider has no credentials for project {project}: {exc} "
                        "Run `gcloud auth application-default login`, set "
                        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or set "
                        "GOOGLE_API_KEY to a Vertex AI API key"
                    ) from None
                self._adc = found
            return self._adc

    def get(self, location: str) -> Any:
        """The client for `location` (express mode has one client, with no location)."""
        creds = credentials(self.settings)
        slot = None if creds.express else location
        client = self._clients.get(slot)
        if client is not None:
            return client
        adc = None if creds.api_key else self.adc(creds.project)
        with self._lock:
            if slot not in self._clients:
                self._clients[slot] = self._make(creds, location, adc)
            return self._clients[slot]

    def _make(self, creds: Credentials, location: str, adc: Any) -> Any:
        from google import genai
        from google.genai import types

        options: dict[str, Any] = {"timeout": 120_000}
        if self.settings.base_url:
            options["base_url"] = self.settings.base_url
        http_options = types.HttpOptions(**options)
        if creds.express:
            return genai.Client(vertexai=True, api_key=creds.api_key, http_options=http_options)
        if creds.api_key:
            try:
                return genai.Client(
                    vertexai=True,
                    api_key=creds.api_key,
                    project=creds.project,
                    location=location,
                    http_options=http_options,
                )
            except ValueError as exc:
                # google-genai before 2.15 refuses a key together with a project.
                raise ConfigError(
                    f"this google-genai cannot use an API key with a project ({exc}); "
                    "upgrade it: pip install 'google-genai>=2.15'"
                ) from None
        return genai.Client(
            vertexai=True,
            project=creds.project,
            location=location,
            credentials=adc,
            http_options=http_options,
        )

    def token(self) -> str | None:
        """The current OAuth access token of the ADC credentials (for Cloud Storage)."""
        return getattr(self._adc, "token", None) if self._adc is not None else None
