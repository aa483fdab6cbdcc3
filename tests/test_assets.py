"""Assets: declared once, named per scene, sent with every keyframe request that shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.conftest import Project, refused
from vidpipe.artifacts import sha256_file
from vidpipe.media.text import missing_glyphs, unicode_font
from vidpipe.store.ids import SCHEMA_VERSION
from vidpipe.testing.fakes import Script


def product_png(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A product shot with a pattern a panel would never draw by itself."""
    img = Image.new("RGB", (120, 200), colour)
    d = ImageDraw.Draw(img)
    d.rectangle((20, 60, 100, 140), fill=(250, 240, 20))
    d.line((0, 0, 120, 200), fill=(0, 0, 0), width=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def logo_png(path: Path, colour: tuple[int, int, int]) -> Path:
    img = Image.new("RGB", (100, 100), colour)
    ImageDraw.Draw(img).ellipse((10, 10, 90, 90), fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def manifest(project: Project, job: str) -> dict[str, Any]:
    found = sorted((project.root / "tmp" / job).glob("*/output/manifest.json"))
    data: dict[str, Any] = json.loads(found[-1].read_text())
    return data


def panel_meta(path: Path) -> dict[str, Any]:
    with Image.open(path) as img:
        meta: dict[str, Any] = json.loads(img.info["vidpipe-panel"])
    return meta


PRODUCT_JOB = """\
prompt: A barista pours coffee. A woman drinks on the terrace. The sign glows at dusk.
scenes: 3
assets:
  cup: {kind: product, description: our red cup, images: [../assets/cup.png]}
scene_overrides:
  - {index: 0, assets: [cup]}
  - {index: 1, assets: []}
  - {index: 2, assets: [cup]}
"""


def test_a_product_goes_with_every_keyframe_request_of_the_scenes_that_show_it(
    project: Project, fake: Script
) -> None:
    cup = product_png(project.root / "assets" / "cup.png").read_bytes()
    project.job("spot", PRODUCT_JOB)
    result = project.cli("run", "--provider", "fake")
    assert result.exit_code == 0, result.output
    by_scene: dict[int, list[bool]] = {}
    for call in fake.calls("image"):
        request = call.request
        index = request.hints["index"]
        by_scene.setdefault(index, []).append(any(r.data == cup for r in request.references))
    # Scene 0 draws both frames; scenes 1 and 2 start on the previous end frame.
    assert by_scene == {0: [True, True], 1: [False], 2: [True]}
    scenes = manifest(project, "spot")["scenes"]
    assert [s["assets"] for s in scenes] == [["cup"], [], ["cup"]]
    sent = scenes[2]["keyframes"]["end"]["references"]
    assert sent == [
        {
            "asset": "cup",
            "path": "assets/cup.png",
            "sha256": sha256_file(project.root / "assets/cup.png"),
        }
    ]
    assert "references" not in scenes[1]["keyframes"]["end"]
    status = json.loads(project.cli("status", "spot", "--json").output)
    assert status["scenes"][0]["keyframes"]["start"]["references"][0]["asset"] == "cup"


def test_local_panels_show_the_product_where_the_scene_uses_it(project: Project) -> None:
    product_png(project.root / "assets" / "cup.png")
    project.job("spot", PRODUCT_JOB)
    assert project.cli("run").exit_code == 0
    frames = sorted((project.root / "tmp" / "spot").glob("*/keyframes"))[-1]
    with Image.open(project.root / "assets" / "cup.png") as opened:
        asset = opened.convert("RGB")
    for name in ("scene_00_start.png", "scene_00_end.png", "scene_02_end.png"):
        placed = [a for a in panel_meta(frames / name)["assets"] if a["asset"] == "cup"]
        assert len(placed) == 1, name
        x0, y0, x1, y1 = placed[0]["box"]
        with Image.open(frames / name) as panel:
            region = panel.convert("RGB").crop((x0, y0, x1, y1))
        expected = asset.resize(region.size, Image.Resampling.LANCZOS)
        diff = sum(
            abs(a - b)
            for pa, pb in zip(
                region.get_flattened_data(), expected.get_flattened_data(), strict=True
            )
            for a, b in zip(pa, pb, strict=True)
        ) / (3 * region.width * region.height)
        assert region.height >= 60, name  # big enough to see at 360p
        assert diff < 3, (name, diff)
    assert (
        "assets" not in panel_meta(frames / "scene_01_end.png")
        or not panel_meta(frames / "scene_01_end.png")["assets"]
    )


LOGO_JOB = """\
prompt: {prompt}
scenes: 3
scene_overrides:
  - {{index: 2, assets: [brand]}}
"""


def test_replacing_a_logo_regenerates_only_the_last_end_frame_and_clip_of_each_job(
    project: Project, fake: Script
) -> None:
    logo = logo_png(project.root / "assets" / "brand.png", (20, 60, 200))
    project.write("assets/brand.yaml", "kind: logo\nimages: [brand.png]\n")
    project.job("one", LOGO_JOB.format(prompt="A lighthouse at night. A boat. Dawn."))
    project.job("two", LOGO_JOB.format(prompt="A city street. A taxi. Rain stops."))
    first = project.cli("run", "--provider", "fake", "--report", "r1.json")
    assert first.exit_code == 0, first.output
    fake.reset()
    logo_png(logo, (200, 60, 20))
    again = project.cli("run", "--provider", "fake", "--report", "r2.json")
    assert again.exit_code == 0, again.output
    new_logo = logo.read_bytes()
    images = fake.calls("image")
    videos = fake.calls("video")
    assert sorted((c.request.hints["index"], c.request.role) for c in images) == [
        (2, "end"),
        (2, "end"),
    ]
    assert all(c.request.references[0].data == new_logo for c in images)
    assert len(videos) == 2
    assert fake.calls("storyboard") == []
    jobs = project.jobs_in_report("r2.json")
    assert {n: (j["provider_calls"], j["cached_calls"]) for n, j in jobs.items()} == {
        "one": (2, 6),
        "two": (2, 6),
    }


def test_plan_names_the_asset_whose_image_was_replaced(project: Project, fake: Script) -> None:
    logo = logo_png(project.root / "assets" / "brand.png", (20, 60, 200))
    project.write("assets/brand.yaml", "kind: logo\nimages: [brand.png]\n")
    project.job("one", LOGO_JOB.format(prompt="A lighthouse at night. A boat. Dawn."))
    assert project.cli("run", "--provider", "fake").exit_code == 0

    def plan() -> dict[str, Any]:
        result = project.cli("plan", "--json", "--provider", "fake")
        assert result.exit_code == 0, result.output
        job: dict[str, Any] = json.loads(result.stdout)["jobs"][0]
        return job

    assert {g["status"] for g in plan()["generations"]} == {"reuse"}
    logo_png(logo, (200, 60, 20))
    replaced = plan()
    new = {g["node"]: g["reasons"] for g in replaced["generations"] if g["status"] == "new"}
    assert new == {
        "scene 2 end frame": ["asset brand's image changed"],
        "scene 2 clip": ["scene 2's end frame is new (asset brand's image changed)"],
    }
    # The plan's keys are the run's: running makes exactly those two.
    fake.reset()
    assert project.cli("run", "--provider", "fake").exit_code == 0
    assert [(c.request.hints["index"], c.request.role) for c in fake.calls("image")] == [(2, "end")]
    assert len(fake.calls("video")) == 1
    assert {g["status"] for g in plan()["generations"]} == {"reuse"}


def test_a_description_only_asset_gets_one_reference_sheet_for_every_job(
    project: Project, fake: Script
) -> None:
    project.write(
        "vidpipe.yaml",
        "defaults:\n  clip_duration: 1\n  resolution: 360p\n  assets:\n"
        "    mara: {kind: character, description: a woman in a green coat}\n",
    )
    text = "prompt: {p}\nscenes: 2\nscene_overrides:\n  - {{index: 0, assets: [mara]}}\n  - {{index: 1, assets: [mara]}}\n"
    project.job("one", text.format(p="Mara walks to the pier."))
    assert project.cli("run", "jobs/one.yaml", "--provider", "fake").exit_code == 0
    sheets = [c for c in fake.calls("image") if c.request.role == "sheet"]
    assert len(sheets) == 1
    assert "a woman in a green coat" in sheets[0].request.prompt
    fake.reset()
    project.job("two", text.format(p="Mara reads in a café."))
    result = project.cli("run", "jobs/two.yaml", "--provider", "fake", "--report", "r.json")
    assert result.exit_code == 0, result.output
    assert [c for c in fake.calls("image") if c.request.role == "sheet"] == []
    sheet = manifest(project, "two")["scenes"][0]["keyframes"]["start"]["references"][0]
    assert sheet["asset"] == "mara" and sheet["path"].endswith("/assets/mara.png")
    # Every frame request of the second job carries the first job's sheet.
    sheet_bytes = next((project.root / "tmp" / "one").glob("*/assets/mara.png")).read_bytes()
    assert all(c.request.references[0].data == sheet_bytes for c in fake.calls("image"))
    # The plan finds the sheet in the cache, so it predicts the keys the run used.
    plan = project.cli("plan", "jobs/one.yaml", "--json", "--provider", "fake")
    assert plan.exit_code == 0, plan.output
    steps = json.loads(plan.stdout)["jobs"][0]["generations"]
    assert {g["status"] for g in steps} == {"reuse"}


def test_the_local_character_is_the_same_figure_in_every_scene(project: Project) -> None:
    project.job(
        "walk",
        "prompt: Mara walks. Mara stops. Mara waves.\nscenes: 3\n"
        "assets:\n  mara: {kind: character, description: a woman in a crimson coat}\n",
    )
    assert project.cli("run").exit_code == 0
    frames = sorted((project.root / "tmp" / "walk").glob("*/keyframes"))[-1]
    sheet = next((project.root / "tmp" / "walk").glob("*/assets/mara.png"))
    with Image.open(sheet) as opened:
        figure = opened.convert("RGBA")
    colours = set()
    for name in ("scene_00_end.png", "scene_01_end.png", "scene_02_end.png"):
        (placed,) = [a for a in panel_meta(frames / name)["assets"] if a["asset"] == "mara"]
        x0, y0, x1, y1 = placed["box"]
        with Image.open(frames / name) as panel:
            region = panel.convert("RGB").crop((x0, y0, x1, y1))
        # The torso's centre is the figure's main colour in every scene.
        colours.add(region.getpixel((region.width // 2, round(region.height * 0.45))))
    assert len(colours) == 1
    (colour,) = colours
    torso = figure.getpixel((figure.width // 2, round(figure.height * 0.45)))
    assert max(abs(a - b) for a, b in zip(colour, torso[:3], strict=True)) < 8
    assert colour[0] > 120 and colour[1] < 80  # crimson, as described


def test_captions_in_any_language_render_without_boxes(project: Project) -> None:
    project.job("cafe", "prompt: Un café à Paris. 東京の夜。\nscenes: 2\n")
    assert project.cli("run", "--until", "keyframes").exit_code == 0
    assert missing_glyphs(unicode_font(20), "Un café à Paris. 東京の夜。") == []
    frames = sorted((project.root / "tmp" / "cafe").glob("*/keyframes"))[-1]
    with Image.open(frames / "scene_00_start.png") as panel:
        bar = panel.convert("L").crop((0, round(panel.height * 0.85), panel.width, panel.height))
    # A drawn caption, not an empty bar: bright text pixels on the dark bar.
    assert sum(1 for v in bar.get_flattened_data() if v > 200) > 100


def test_a_storyboard_naming_an_undeclared_asset_is_asked_again_then_fails(
    project: Project, fake: Script
) -> None:
    def invent(data: dict[str, Any]) -> dict[str, Any]:
        data["scenes"][1]["assets"] = ["ghost"]
        return data

    fake.storyboard_edit = invent
    project.job(
        "a",
        "prompt: A cup on a table.\nscenes: 2\nassets:\n  cup: {kind: product, description: a cup}\n",
    )
    result = project.cli("run", "--provider", "fake", "--report", "r.json")
    assert result.exit_code == 1
    assert len(fake.calls("storyboard")) == 3
    assert project.jobs_in_report("r.json")["a"]["error"] == (
        "the storyboard model gave no valid storyboard in 3 attempts: scene 1 names asset "
        "'ghost', which the job does not declare (declared assets: cup)"
    )


def test_asset_declarations_are_checked_with_their_location(project: Project) -> None:
    project.write("assets/bad.yaml", "kind: prop\n")
    project.write("assets/empty.yaml", "kind: logo\n")
    project.job(
        "a",
        "prompt: x\nassets:\n  Cup: {kind: product, images: [missing.png]}\n"
        "scene_overrides:\n  - {index: 0, assets: [nobody]}\n",
    )
    refused(
        project.cli("validate"),
        "assets/bad.yaml:1:7: kind must be one of character, product, location, logo, style (got 'prop')",
        "assets/empty.yaml:1:1: asset 'empty' needs a description or images (a description alone gets one generated reference sheet)",
        "jobs/a.yaml:3:3: asset name 'Cup' is not a valid name: use 1-64 lowercase letters, digits, '_' or '-', starting with a letter or digit",
        "jobs/a.yaml:3:33: image 'missing.png' does not exist; image paths are relative to the job file's folder (jobs/)",
        "jobs/a.yaml:5:25: unknown asset 'nobody'; declared assets: none (declare them under `assets:`)",
    )


def test_video_references_send_asset_images_instead_of_frames(
    project: Project, fake: Script
) -> None:
    product_png(project.root / "assets" / "cup.png")
    project.job(
        "ref",
        "prompt: A morning. A table.\nscenes: 2\nclip_duration: 2\nvideo: {references: assets}\n"
        "assets:\n  cup: {kind: product, images: [../assets/cup.png]}\n",
    )
    result = project.cli("run", "--provider", "fake")
    assert result.exit_code == 0, result.output
    cup = (project.root / "assets/cup.png").read_bytes()
    for call in fake.calls("video"):
        assert call.request.first_frame is None and call.request.last_frame is None
        assert [r.data for r in call.request.references] == [cup]
    clip = manifest(project, "ref")["scenes"][0]["clip"]
    assert clip["references"][0]["asset"] == "cup"


def test_a_schema_4_database_is_migrated_and_records_references(project: Project) -> None:
    import sqlite3

    project.job("a", "prompt: A boat.\nscenes: 1\n")
    assert project.cli("run").exit_code == 0
    # Turn it back into the schema before assets (4): no reference_images columns (nor
    # the work queue of schema 6).
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        conn.execute("DROP TABLE batch_items")
        conn.execute("ALTER TABLE keyframes DROP COLUMN reference_images")
        conn.execute("ALTER TABLE video_clips DROP COLUMN reference_images")
        conn.execute("UPDATE vidpipe_meta SET value = '4' WHERE key = 'schema_version'")
    status = project.cli("status", "a", "--json")
    assert status.exit_code == 0, status.output
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        version = conn.execute(
            "SELECT value FROM vidpipe_meta WHERE key = 'schema_version'"
        ).fetchone()
        columns = [r[1] for r in conn.execute("PRAGMA table_info(keyframes)")]
    assert version == (str(SCHEMA_VERSION),) and "reference_images" in columns
    # The migrated database records what a job with assets sends.
    product_png(project.root / "assets" / "cup.png")
    project.job("b", PRODUCT_JOB)
    result = project.cli("run", "jobs/b.yaml")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(project.root / "vidpipe.db") as conn:
        rows = [
            json.loads(r[0] or "null")
            for r in conn.execute("SELECT reference_images FROM keyframes")
        ]
        sent = [row for row in rows if row]
    assert sent and all(s["sent"][0]["asset"] == "cup" for s in sent)
