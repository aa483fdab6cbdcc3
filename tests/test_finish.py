"""Finishing a film (intro, outro, music, loudness, captions) and named outputs.

Loudness is measured here with an independent meter: FFmpeg's own ebur128 filter driven
directly through PyAV, not vidpipe's code path.
"""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import Project, refused
from vidpipe.artifacts import sha256_file

RATE = 48_000
FPS = 24
FRAME = 1 / FPS


# -- media made for the tests ---------------------------------------------------------------


def write_tone(path: Path, seconds: float, freq: float, level: float = 0.3) -> Path:
    """A stereo 16-bit WAV: a tone with a slow swell (music-like level changes)."""
    t = np.arange(round(seconds * RATE)) / RATE
    x = level * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    pcm = (np.stack([x, x * 0.9], axis=1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return path


def write_video(path: Path, seconds: float, size: tuple[int, int], fps: int = 30) -> Path:
    """A small H.264 + AAC video of another size and frame rate than the film's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "stereo"
        n = round(seconds * fps)
        for i in range(n):
            img = Image.new("RGB", size, (20, 40 + 150 * i // n, 200))
            frame = av.VideoFrame.from_image(img)
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        t = np.arange(round(seconds * RATE)) / RATE
        tone = (0.2 * np.sin(2 * np.pi * 880 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = 0
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    return path


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of a file's audio, by FFmpeg's ebur128 filter."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        graph = av.filter.Graph()
        src = graph.add_abuffer(template=stream)
        meter = graph.add("ebur128", "metadata=1:peak=true")
        sink = graph.add("abuffersink")
        src.link_to(meter)
        meter.link_to(sink)
        graph.configure()
        integrated, peak = -70.0, 0.0

        def drain() -> None:
            nonlocal integrated, peak
            while True:
                try:
                    frame = graph.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                meta = frame.metadata
                integrated = float(meta.get("lavfi.r128.I", integrated))
                peak = max(peak, float(meta.get("lavfi.r128.true_peak", 0.0)))

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    return integrated, 20 * math.log10(peak)


def seconds(path: Path) -> float:
    """A video's length: frames counted by decoding, over its frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames / float(stream.average_rate or FPS)


def vtt_starts(path: Path) -> list[float]:
    starts = []
    for line in path.read_text("utf-8").splitlines():
        if "-->" in line:
            clock = line.split("-->")[0].strip()
            h, m, s = clock.split(":")
            starts.append(int(h) * 3600 + int(m) * 60 + float(s))
    return starts


def project_dir(project: Project, job: str) -> Path:
    (folder,) = (project.root / "tmp" / job).iterdir()
    return folder


def manifest(project: Project, job: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (project_dir(project, job) / "output" / "manifest.json").read_text("utf-8")
    )
    return data


BRAND = """\
finish:
  intro: {image: ../brand/intro.png, seconds: 2, fade: 0.5}
  outro: {video: ../brand/outro.mp4}
  music: {file: ../brand/bed.wav, duck_db: 12, fade: 1.0}
  loudness: {target_lufs: -14, true_peak_db: -1}
  captions: {burn: false}
"""


@pytest.fixture
def brand(project: Project) -> Project:
    Image.new("RGB", (400, 400), (200, 30, 30)).save(project.root / "brand-intro.png")
    (project.root / "brand").mkdir()
    (project.root / "brand-intro.png").rename(project.root / "brand" / "intro.png")
    write_video(project.root / "brand" / "outro.mp4", 1.5, (320, 240))
    write_tone(project.root / "brand" / "bed.wav", 3.0, 330)
    return project


# -- the finished film ----------------------------------------------------------------------


def test_intro_outro_music_and_captions_make_the_finished_film(brand: Project) -> None:
    brand.job(
        "promo",
        "prompt: A barista pours latte art at dawn\nscenes: 3\nstitch: {crossfade: 0.25}\n"
        "scene_overrides:\n  - {index: 1, caption: Café crème — 一杯のコーヒー}\n" + BRAND,
    )
    result = brand.cli("run", "-q")
    assert result.exit_code == 0, result.output
    folder = project_dir(brand, "promo") / "output"
    final, stitched = folder / "final.mp4", folder / "stitched.mp4"

    # Duration: the stitch plus a 2 s intro plus the 1.5 s outro, within a frame.
    expected = seconds(stitched) + 2.0 + 1.5
    assert abs(seconds(final) - expected) <= FRAME + 1e-6
    assert abs(seconds(stitched) - (3 - 2 * 0.25)) <= FRAME + 1e-6
    with av.open(str(final)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
        assert video.average_rate == FPS

    integrated, true_peak = ebur128(final)
    assert abs(integrated - (-14)) <= 1.0
    assert true_peak <= -1.0

    # One cue per scene, starting where its clip starts in the final cut: after the intro,
    # each clip starting a crossfade before the previous one ends.
    starts = vtt_starts(folder / "final.vtt")
    assert len(starts) == 3
    for k, start in enumerate(starts):
        assert abs(start - (2.0 + k * (1 - 0.25))) <= FRAME + 1e-6
    vtt = (folder / "final.vtt").read_text("utf-8")
    assert vtt.startswith("WEBVTT\n")
    assert "Café crème — 一杯のコーヒー" in vtt
    srt = (folder / "final.srt").read_text("utf-8")
    assert srt.splitlines()[:2] == ["1", "00:00:02,000 --> 00:00:02,750"]

    data = manifest(brand, "promo")
    assert data["output"]["sha256"] == sha256_file(final)
    finish = data["finish"]
    assert finish["inputs"]["files"]["brand/bed.wav"] == sha256_file(
        brand.root / "brand" / "bed.wav"
    )
    assert finish["inputs"]["stitched"]["sha256"] == sha256_file(stitched)
    assert abs(finish["loudness"]["integrated_lufs"] - integrated) < 0.5
    assert finish["captions"]["vtt"].endswith("output/final.vtt")
    assert [c["index"] for c in finish["captions"]["cues"]] == [0, 1, 2]


def test_changing_only_the_music_refinishes_without_a_provider_call(brand: Project) -> None:
    brand.job("promo", "prompt: A barista pours latte art\nscenes: 2\n" + BRAND)
    assert brand.cli("run", "-q").exit_code == 0
    first = manifest(brand, "promo")["output"]["sha256"]

    write_tone(brand.root / "brand" / "bed.wav", 2.0, 523, level=0.5)
    result = brand.cli("run", "-q", "--report", "report.json")
    assert result.exit_code == 0, result.output
    job = brand.jobs_in_report()["promo"]
    assert job["status"] == "complete"
    assert job["provider_calls"] == 0
    # The project this run finished (ids sort by the second only: two runs within one
    # second cannot be told apart by folder name).
    newest = brand.root / job["output"]
    data = json.loads((newest.parent / "manifest.json").read_text("utf-8"))
    assert data["output"]["sha256"] != first
    assert data["finish"]["inputs"]["files"]["brand/bed.wav"] == sha256_file(
        brand.root / "brand" / "bed.wav"
    )


def test_an_unchanged_finish_is_not_made_again_by_a_restitch(brand: Project) -> None:
    brand.job("promo", "prompt: A barista pours latte art\nscenes: 2\n" + BRAND)
    assert brand.cli("run", "-q").exit_code == 0
    final = project_dir(brand, "promo") / "output" / "final.mp4"
    before = final.stat().st_mtime_ns
    result = brand.cli("stitch", "promo")
    assert result.exit_code == 0, result.output
    assert final.stat().st_mtime_ns == before
    assert manifest(brand, "promo")["output"]["sha256"] == sha256_file(final)


def test_burnt_captions_draw_accented_and_cjk_text_inside_the_title_safe_area(
    project: Project,
) -> None:
    from vidpipe.media.text import unicode_font

    font = unicode_font(24)
    if bytes(font.getmask("漢")) == bytes(font.getmask("\U000f0000")):
        pytest.skip("no font with CJK letters on this machine (fonts-wqy-microhei)")
    project.job(
        "burn",
        "prompt: A tea ceremony\nscenes: 1\nscene_overrides:\n  - {index: 0, caption: Thé vert — 抹茶}\n"
        "finish:\n  captions: {burn: true}\n",
    )
    assert project.cli("run", "-q").exit_code == 0
    folder = project_dir(project, "burn") / "output"

    def frame(path: Path) -> np.ndarray:
        with av.open(str(path)) as container:
            first = next(container.decode(video=0))
            return np.asarray(first.to_image(), dtype=np.int16)

    plain, burnt = frame(folder / "stitched.mp4"), frame(folder / "final.mp4")
    changed = np.abs(burnt - plain).max(axis=2) > 40
    rows, cols = np.nonzero(changed)
    assert rows.size > 200  # text was drawn
    height, width = changed.shape
    assert rows.min() >= 0.1 * height and rows.max() < 0.9 * height
    assert cols.min() >= 0.1 * width and cols.max() < 0.9 * width
    assert rows.min() > height / 2  # at the bottom


def test_a_card_per_aspect_ratio_and_crop(project: Project) -> None:
    (project.root / "brand").mkdir()
    Image.new("RGB", (90, 160), (0, 200, 0)).save(project.root / "brand" / "tall.png")
    Image.new("RGB", (160, 90), (0, 0, 200)).save(project.root / "brand" / "wide.png")
    project.job(
        "cards",
        "prompt: A kite\nscenes: 1\nmatrix:\n  aspect_ratio: ['16:9', '9:16']\nfinish:\n"
        "  intro:\n    '16:9': {image: ../brand/wide.png, seconds: 1}\n"
        "    '9:16': {image: ../brand/tall.png, seconds: 1, fit: crop}\n",
    )
    assert project.cli("run", "-q").exit_code == 0
    for job, colour in (("cards-16-9", 2), ("cards-9-16", 1)):
        with av.open(str(project_dir(project, job) / "output" / "final.mp4")) as container:
            first = np.asarray(next(container.decode(video=0)).to_image(), dtype=np.int16)
        # The variant for the job's shape fills the whole frame.
        assert first[..., colour].min() > 120, job


# -- named outputs and named matrix values ---------------------------------------------------


def test_an_output_template_across_a_matrix_writes_one_file_per_job(project: Project) -> None:
    project.job(
        "promo",
        "prompt: A kite over the dunes\nscenes: 1\n"
        "output: \"deliverables/{{ job.name }}-{{ job.aspect_ratio | replace(':', 'x') }}.mp4\"\n"
        "matrix:\n  aspect_ratio: ['16:9', '9:16', '1:1']\n",
    )
    result = project.cli("run", "-q", "--report", "report.json")
    assert result.exit_code == 0, result.output
    delivered = project.root / "jobs" / "deliverables"
    assert sorted(p.name for p in delivered.iterdir()) == [
        "promo-1-1-1x1.mp4",
        "promo-16-9-16x9.mp4",
        "promo-9-16-9x16.mp4",
    ]
    for name, size in (("promo-16-9", (640, 360)), ("promo-9-16", (360, 640))):
        ratio = name.split("-", 1)[1].replace("-", "x")
        with av.open(str(delivered / f"{name}-{ratio}.mp4")) as container:
            ctx = container.streams.video[0].codec_context
            assert (ctx.width, ctx.height) == size


def test_an_output_template_giving_two_jobs_one_file_is_refused(project: Project) -> None:
    project.job(
        "promo",
        "prompt: A kite\nscenes: 1\noutput: 'deliverables/{{ job.style }}.mp4'\n"
        "matrix:\n  aspect_ratio: ['16:9', '9:16']\n",
    )
    # The clash is found on the rendered names, by the plan's output checks.
    message = (
        "output 'jobs/deliverables/cinematic.mp4' is written by 2 jobs of this batch "
        "(promo-16-9, promo-9-16); give each job its own output"
    )
    refused(
        project.cli("validate"),
        f"jobs/promo.yaml:3:9: {message}",
    )


def test_an_output_template_with_an_unknown_variable_is_located(project: Project) -> None:
    project.job("promo", "prompt: A kite\nscenes: 1\noutput: 'out/{{ vars.product }}.mp4'\n")
    refused(
        project.cli("validate"),
        "jobs/promo.yaml:3:9: output template: 'dict object' has no attribute 'product'; it "
        "can use job.name, job.aspect_ratio, job.matrix.KEY, vars.KEY and the other job fields",
    )


def test_named_matrix_values_name_the_jobs_and_set_their_keys(project: Project) -> None:
    project.job(
        "promo",
        "prompt: 'An ad for {{ vars.product }}'\nscenes: 1\n"
        "output: 'deliverables/{{ job.matrix.product }}-{{ job.aspect_ratio[0] }}.mp4'\n"
        "matrix:\n  product:\n"
        "    oat-latte: {vars: {product: Oat latte}, style: warm documentary}\n"
        "    cold-brew: {vars: {product: Cold brew}}\n"
        "  aspect_ratio: ['16:9', '9:16']\n",
    )
    result = project.cli("validate")
    assert result.exit_code == 0, result.output
    names = [line.split(": ")[1].split(" (")[0] for line in result.output.splitlines()[:-1]]
    assert names == [
        "promo-oat-latte-16-9",
        "promo-oat-latte-9-16",
        "promo-cold-brew-16-9",
        "promo-cold-brew-9-16",
    ]
    oat = project.cli("render", "promo-oat-latte-16-9")
    cold = project.cli("render", "promo-cold-brew-9-16")
    assert oat.exit_code == 0 and cold.exit_code == 0, oat.output + cold.output
    assert "warm documentary" in oat.output
    assert "warm documentary" not in cold.output


def test_a_named_matrix_value_is_checked_where_it_is_written(project: Project) -> None:
    project.job(
        "promo",
        "prompt: hi\nscenes: 1\nmatrix:\n  product:\n    oat: {name: other}\n"
        "    cold: {stlye: noir}\n",
    )
    refused(
        project.cli("validate"),
        "jobs/promo.yaml:5:11: a named matrix value cannot set `name` (the job is named after "
        "the value)",
        "jobs/promo.yaml:6:12: unknown key 'stlye'; did you mean 'style'?",
    )


def test_finish_settings_are_checked(project: Project) -> None:
    (project.root / "jobs" / "a.png").write_bytes(b"")
    Image.new("RGB", (8, 8)).save(project.root / "jobs" / "a.png")
    project.job(
        "bad",
        "prompt: hi\nscenes: 1\nfinish:\n  intro: {image: a.png, video: a.mp4}\n"
        "  outro: {image: a.png, seconds: 1, fade: 0.8}\n  music: {file: bed.wav}\n",
    )
    refused(
        project.cli("validate"),
        "jobs/bad.yaml:4:10: finish.intro needs exactly one of `image` or `video`, not 2",
        "jobs/bad.yaml:5:43: finish.outro.fade of 0.8s is too long for a 1s card: a fade in "
        "and a fade out must fit",
        "jobs/bad.yaml:6:17: music file 'bed.wav' does not exist; paths are relative to the job "
        "file's folder",
    )


def test_finish_under_defaults_merges_with_the_job(brand: Project) -> None:
    brand.write(
        "vidpipe.yaml",
        "defaults:\n  resolution: 360p\n  clip_duration: 1\n  finish:\n"
        "    intro: {image: ../brand/intro.png, seconds: 1}\n    captions: {burn: false}\n"
        "database: sqlite:///vidpipe.db\nartifacts_dir: tmp\n",
    )
    brand.job("promo", "prompt: A kite\nscenes: 1\nfinish:\n  music: {file: ../brand/bed.wav}\n")
    assert brand.cli("run", "-q").exit_code == 0
    finish = manifest(brand, "promo")["finish"]
    assert finish["settings"]["intro"]["image"] == "brand/intro.png"
    assert finish["settings"]["music"]["file"] == "brand/bed.wav"
    assert finish["intro_seconds"] == 1.0
    assert abs(finish["duration"] - 2.0) <= FRAME
