"""The naive "seed" design, for comparison: one job at a time, one clip at a time.

``python bench/seed_runner.py --url URL --ideas JSON --out DIR`` runs three-scene jobs
against a Vertex endpoint with the google-genai SDK directly. Per job: ask for the
storyboard; then per scene: make the keyframes (scene 0's start frame from text, every
end frame as an edit of its start frame, each later start frame = the previous end
frame), submit the clip, poll it every ``--poll`` seconds until done, save it, next
scene. Finally the clips are joined with ``ffmpeg -f concat -c copy`` (cheap: what is
compared is the orchestration). No cache, no retries, no database. The job ideas are the
same as bench/fig_batch.py gives vidpipe. Prints each film's path and the job's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from google import genai
from google.genai import types

SCENES = 3
STORYBOARD = "gemini-3.8-flash"
IMAGE = "gemini-3.1-flash-image"
VIDEO = "veo-3.1-fast-generate-001"


def image(client: genai.Client, prompt: str, aspect: str, reference: bytes | None) -> bytes:
    contents: list[object] = [prompt]
    if reference is not None:
        contents.insert(0, types.Part.from_bytes(data=reference, mime_type="image/png"))
    response = client.models.generate_content(
        model=IMAGE,
        contents=contents,
        config=types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio=aspect)
        ),
    )
    for part in response.candidates[0].content.parts:
        if part.inline_data is not None and not part.thought:
            return part.inline_data.data
    raise RuntimeError("no image in the answer")


def clip(client: genai.Client, prompt: str, first: bytes, last: bytes, poll: float) -> bytes:
    operation = client.models.generate_videos(
        model=VIDEO,
        source=types.GenerateVideosSource(
            prompt=prompt, image=types.Image(image_bytes=first, mime_type="image/png")
        ),
        config=types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=4,
            aspect_ratio="16:9",
            resolution="720p",
            last_frame=types.Image(image_bytes=last, mime_type="image/png"),
        ),
    )
    while not operation.done:
        time.sleep(poll)
        operation = client.operations.get(operation)
    return operation.response.generated_videos[0].video.video_bytes


def job(clients: dict[str, genai.Client], idea: str, out: Path, poll: float, ffmpeg: str) -> Path:
    # The Gemini 3 models are served from `global`, Veo from its region.
    client, video = clients["global"], clients["us-central1"]
    answer = client.models.generate_content(
        model=STORYBOARD,
        contents=f"Plan a short video as a storyboard.\nIDEA\n{idea}\nScenes: {SCENES}",
        config=types.GenerateContentConfig(response_mime_type="application/json"),
    )
    scenes = json.loads(answer.text)["scenes"]
    out.mkdir(parents=True, exist_ok=True)
    start: bytes | None = None
    clips = []
    for i, scene in enumerate(scenes):
        if start is None:
            start = image(client, scene["start_frame_prompt"], "16:9", None)
        end = image(client, scene["end_frame_prompt"], "16:9", start)
        path = out / f"scene_{i:02d}.mp4"
        path.write_bytes(clip(video, scene["video_motion_prompt"], start, end, poll))
        clips.append(path)
        start = end
    listing = out / "clips.txt"
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in clips))
    final = out / "final.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(final),
        ],
        check=True,
    )
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ideas", required=True, help="JSON list of job ideas")
    parser.add_argument("--poll", type=float, default=0.3)
    parser.add_argument("--ffmpeg", default="ffmpeg")
    args = parser.parse_args()
    clients = {
        location: genai.Client(
            vertexai=True,
            api_key=os.environ.get("GOOGLE_API_KEY", "bench-key"),
            project=os.environ.get("GOOGLE_CLOUD_PROJECT", "bench-project"),
            location=location,
            http_options=types.HttpOptions(base_url=args.url),
        )
        for location in ("global", "us-central1")
    }
    for k, idea in enumerate(json.loads(args.ideas)):
        start = time.perf_counter()
        film = job(clients, idea, args.out / f"job-{k:02d}", args.poll, args.ffmpeg)
        print(film, time.perf_counter() - start, flush=True)  # the film, the job's seconds
    return 0


if __name__ == "__main__":
    sys.exit(main())
