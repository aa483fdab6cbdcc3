"""What the emulated service refuses, and the sizes it answers with.

The model facts come from vidpipe's model catalog (``vidpipe/models.yaml``), the same
file vidpipe's pre-flight reads: the emulator is as strict as the catalog says the
service is, and a test that vidpipe refuses a job first proves the pre-flight agrees with
it. Models the catalog does not know are served without model-specific checks.

Refusals (each answered in Google's error shape):

* express mode (an API key, no ``projects/…/locations/…`` in the path) calling
  ``predict``, ``predictLongRunning``, ``fetchPredictOperation`` or an operation GET:
  400 "Invalid resource field value in the request." (java-genai#570 shows it for
  ``predictLongRunning``; the express REST reference lists only generateContent,
  countTokens and streamGenerateContent);
* a retired model id: 404, as the service answers after retirement;
* a ``global``-only model asked for at a region, or a regional one at ``global``: 404;
* Veo: an aspect ratio, duration or resolution the model does not take; ``lastFrame`` on
  a model without frame interpolation; ``generateAudio`` on a model without the
  parameter (Veo 2); ``referenceImages`` together with ``image``, ``lastFrame`` or
  ``video``, more of them than the model takes, without a prompt, or with a duration
  other than the model's reference duration; an inline image over the model's limit;
* Gemini image models: more input images than the model takes, an inline image over the
  limit, an ``imageSize`` or aspect ratio the model does not offer.
"""

from __future__ import annotations

from typing import Any

from vidpipe.catalog import Catalog, ModelInfo
from vidpipe.testing.vertex_emulator.payloads import _b64decode, _HttpError

EXPRESS_REFUSED = ("predict", "predictLongRunning", "fetchPredictOperation", "getOperation")
EXPRESS_MESSAGE = "Invalid resource field value in the request."
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

#: Gemini image output at 1K per aspect ratio (Google's table for gemini-2.5-flash-image,
#: as copied by docs.gptproto.com, read 2026-11-29); 2K and 4K double and quadruple it.
IMAGE_SIZES_1K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
_SCALE = {"1K": 1, "2K": 2, "4K": 4}


def check_request(catalog: Catalog, rec: Any) -> None:
    """Raise the service's refusal for `rec` (a RecordedRequest), if it has one."""
    if rec.project is None and rec.rpc in EXPRESS_REFUSED and not _is_project_operation(rec):
        raise _HttpError(400, EXPRESS_MESSAGE)
    info = catalog.get(rec.model or "")
    if info is None:
        return
    where = f"projects/{rec.project}/locations/{rec.location}/" if rec.project else ""
    missing = (
        f"Publisher Model `{where}publishers/google/models/{info.id}` was not found or your "
        "project does not have access to it. Please ensure you are using a valid model version."
    )
    if info.status == "retired":
        raise _HttpError(404, missing)
    served_globally = info.location == "global"
    if rec.location and info.location and served_globally != (rec.location == "global"):
        raise _HttpError(404, missing)


def _is_project_operation(rec: Any) -> bool:
    # A GET of a full operation name carries its project in the name, not in the prefix.
    return rec.rpc == "getOperation" and str(rec.operation_name or "").startswith("projects/")


def check_veo(info: ModelInfo | None, inst: dict[str, Any], params: dict[str, Any]) -> None:
    """Refuse a predictLongRunning body the model cannot take."""
    if info is None:
        return
    model = info.id
    aspect = params.get("aspectRatio", "16:9")
    if info.aspect_ratios and aspect not in info.aspect_ratios:
        raise _HttpError(
            400,
            f"Unsupported aspect ratio: {aspect}. Supported: {', '.join(info.aspect_ratios)}.",
        )
    duration = params.get("durationSeconds")
    if duration is not None and info.durations and duration not in info.durations:
        raise _HttpError(
            400, f"Unsupported duration {duration}s for {model}; supported: {info.durations}."
        )
    resolution = params.get("resolution")
    if resolution is not None and info.resolutions and resolution not in info.resolutions:
        raise _HttpError(400, f"Unsupported resolution {resolution} for {model}.")
    if inst.get("lastFrame") and not info.last_frame:
        raise _HttpError(400, "Frame interpolation is not allowlisted for this model.")
    if "generateAudio" in params and not info.audio_param:
        raise _HttpError(400, f"generateAudio is not supported by {model}.")
    references = inst.get("referenceImages")
    if references:
        if any(inst.get(k) for k in ("image", "lastFrame", "video")):
            raise _HttpError(
                400, "referenceImages cannot be combined with image, lastFrame or video."
            )
        if len(references) > info.reference_images:
            raise _HttpError(
                400, f"{model} takes at most {info.reference_images} reference images."
            )
        if not inst.get("prompt"):
            raise _HttpError(400, "A prompt is required with referenceImages.")
        wanted = info.reference_duration
        if wanted is not None and duration is not None and duration != wanted:
            raise _HttpError(400, f"Reference images need durationSeconds {wanted}.")
    images = [inst.get(k) for k in ("image", "lastFrame")]
    images += [r.get("image") for r in references or [] if isinstance(r, dict)]
    for image in images:
        if isinstance(image, dict) and image.get("bytesBase64Encoded"):
            _check_inline(info, _b64decode(image["bytesBase64Encoded"]))


def check_image(info: ModelInfo | None, body: dict[str, Any], images: list[bytes]) -> None:
    """Refuse a Gemini image request the model cannot take."""
    if info is None:
        return
    if info.max_input_images is not None and len(images) > info.max_input_images:
        raise _HttpError(
            400, f"{info.id} takes at most {info.max_input_images} images per request."
        )
    for data in images:
        _check_inline(info, data)
    image_config = (body.get("generationConfig") or {}).get("imageConfig") or {}
    size = image_config.get("imageSize")
    if size is not None and size not in info.image_sizes:
        offered = ", ".join(info.image_sizes) or "none"
        raise _HttpError(400, f"imageSize {size} is not supported by {info.id} ({offered}).")
    aspect = image_config.get("aspectRatio")
    if aspect is not None and info.aspect_ratios and aspect not in info.aspect_ratios:
        raise _HttpError(400, f"Unsupported aspect ratio {aspect} for {info.id}.")


def _check_inline(info: ModelInfo, data: bytes) -> None:
    if info.max_inline_mb is not None and len(data) > info.max_inline_mb * 1_000_000:
        raise _HttpError(
            400,
            f"Inline data is {len(data) / 1e6:.1f} MB; the limit for {info.id} is "
            f"{info.max_inline_mb:g} MB.",
        )


def output_size(aspect: str | None, image_size: str | None) -> tuple[int, int] | None:
    """Pixel size of a Gemini image answer, or None for an aspect ratio not in the table."""
    base = IMAGE_SIZES_1K.get(aspect or "1:1")
    if base is None:
        return None
    scale = _SCALE.get(image_size or "1K", 1)
    return base[0] * scale, base[1] * scale
