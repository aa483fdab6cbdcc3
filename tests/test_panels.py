"""Tests for vidpipe.panels: storyboard keyframes, derived end frames, contact sheets."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from vidpipe.media import text
from vidpipe.outputs.contact_sheet import SheetRow, contact_sheet
from vidpipe.providers.local import panels, scenery
from vidpipe.providers.local.palette import parse_palette
from vidpipe.providers.local.panels import derive_end_frame, draw_keyframe

PALETTE = ["deep teal #0f4c5c", "amber", "storm grey", "bone white #e8e2d0"]
PROMPT = "a lighthouse on a cliff at dusk, storm rolling in"
SMALL = (640, 360)


def _open(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return im.convert("RGB")


def _mad(a: bytes | Image.Image, b: bytes | Image.Image) -> float:
    """Mean absolute pixel difference, averaged over the RGB channels."""
    ia = a if isinstance(a, Image.Image) else _open(a)
    ib = b if isinstance(b, Image.Image) else _open(b)
    return sum(ImageStat.Stat(ImageChops.difference(ia, ib)).mean) / 3


@cache
def _key(
    prompt: str = PROMPT,
    *,
    caption: str = "The lighthouse keeps watch.",
    framing: str = "wide establishing shot",
    size: tuple[int, int] = SMALL,
    seed: int = 7,
    palette: tuple[str, ...] = tuple(PALETTE),
) -> bytes:
    return draw_keyframe(
        prompt=prompt, caption=caption, palette=palette, framing=framing, size=size, seed=seed
    )


def _end(start: bytes, prompt: str = "rain lashes the lighthouse", **kw: object) -> bytes:
    args: dict[str, object] = {
        "caption": "The storm arrives.",
        "palette": PALETTE,
        "framing": "medium shot",
        "size": SMALL,
        "seed": 7,
    }
    args.update(kw)
    return derive_end_frame(start, prompt=prompt, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- keyframes


def test_keyframe_is_deterministic() -> None:
    first = draw_keyframe(
        prompt=PROMPT, caption="c", palette=PALETTE, framing="wide", size=SMALL, seed=3
    )
    second = draw_keyframe(
        prompt=PROMPT, caption="c", palette=PALETTE, framing="wide", size=SMALL, seed=3
    )
    assert first == second


@pytest.mark.parametrize(
    "size",
    [(1280, 720), (720, 1280), (1080, 1080), (426, 240), (1920, 1080)],
    ids=["16:9", "9:16", "1:1", "smallest", "1080p"],
)
def test_keyframe_size(size: tuple[int, int]) -> None:
    assert _open(_key(size=size)).size == size


def test_different_seeds_give_visibly_different_panels() -> None:
    assert _mad(_key(seed=1), _key(seed=2)) > 8


def test_framing_changes_the_composition() -> None:
    assert _mad(_key(framing="wide establishing shot"), _key(framing="close-up")) > 8


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("wide establishing shot", "wide"),
        ("Medium shot, eye level", "medium"),
        ("extreme close-up on the eyes", "close"),
        ("aerial drone shot", "aerial"),
        ("bird's-eye view", "aerial"),
        ("low angle, looking up", "low"),
        ("over the shoulder of the pilot", "ots"),
        ("two shots of coffee", "medium"),  # "ots" must not match inside a word
        ("handheld, shaky", "medium"),  # unknown means medium
    ],
)
def test_framing_keywords(text: str, key: str) -> None:
    assert scenery._framing(text).key == key


def test_caption_is_drawn_in_the_bar_only() -> None:
    a = _open(_key(caption="The lighthouse keeps watch."))
    b = _open(
        _key(caption="A completely different caption, long enough to wrap onto a second line.")
    )
    bar = panels._bar_layout(SMALL).height
    w, h = SMALL
    picture = (0, 0, w, h - bar)
    caption_bar = (0, h - bar, w, h)
    assert _mad(a.crop(picture), b.crop(picture)) == 0
    assert _mad(a.crop(caption_bar), b.crop(caption_bar)) > 1


def test_unknown_words_still_give_a_subject() -> None:
    plain = _key("")
    thing = _key("an ancient artifact glowing softly")
    assert _open(plain).size == _open(thing).size == SMALL
    assert _mad(plain, thing) > 0


def test_dutch_angle_tilts_the_picture() -> None:
    assert _mad(_key(framing="medium shot"), _key(framing="dutch angle medium shot")) > 5


def test_too_small_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="too small"):
        draw_keyframe(prompt="x", caption="x", palette=[], framing="", size=(10, 10), seed=0)


def test_wraps_and_truncates_long_captions() -> None:
    font, lines = text.fit_text("word " * 200, 300, 2, 20)
    assert len(lines) == 2
    assert lines[-1].endswith("...")
    assert all(font.getlength(line) <= 300 for line in lines)


# --------------------------------------------------------------------------- palette


def test_palette_hex_wins_over_names_in_an_entry() -> None:
    assert parse_palette(["deep teal #0f4c5c"]) == [(0x0F, 0x4C, 0x5C)]


def test_palette_short_hex_and_order() -> None:
    assert parse_palette(["#fff", "accent #FF8800 warm"]) == [(255, 255, 255), (255, 136, 0)]


def test_palette_css_and_extra_names() -> None:
    assert parse_palette(["navy", "amber glow", "sky blue"]) == [
        (0, 0, 128),
        (255, 191, 0),
        (135, 206, 235),
    ]


def test_palette_modifiers_shift_colours() -> None:
    (dark,) = parse_palette(["dark red"])
    (pale,) = parse_palette(["pale red"])
    assert sum(dark) < 255 < sum(pale)


def test_palette_removes_duplicates() -> None:
    assert parse_palette(["navy", "navy blue", "#000080"]) == [(0, 0, 128), (0, 0, 255)]


@pytest.mark.parametrize("palette", [[], ["moody and cinematic"], ["", "???"]])
def test_palette_fallback_is_derived_from_the_text(palette: list[str]) -> None:
    colours = parse_palette(palette)
    assert len(colours) >= 3
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours)
    assert colours == parse_palette(palette)


def test_palette_fallback_differs_between_texts() -> None:
    assert parse_palette(["moody"]) != parse_palette(["cheerful"])


def test_palette_changes_the_panel() -> None:
    assert _mad(_key(palette=("navy", "coral")), _key(palette=("forest green", "gold"))) > 10


# --------------------------------------------------------------------------- end frames


def test_end_frame_is_deterministic_and_sized() -> None:
    start = _key()
    assert _end(start) == _end(start)
    assert _open(_end(start, size=(426, 240))).size == (426, 240)


def test_end_frame_is_derived_from_its_start() -> None:
    start = _key()
    end = _end(start, "the beam sweeps across the sea as rain falls", framing="medium shot")
    other = _key("a woman walks her dog through a city park at noon", seed=99)
    same_prompt_other_seed = _key(seed=8)
    assert _mad(end, start) > 2  # it did change...
    assert _mad(end, start) < 0.6 * _mad(end, other)  # ...but is the same scene
    assert _mad(end, start) < _mad(end, same_prompt_other_seed)


def test_end_frame_redraws_the_caption() -> None:
    start = _key()
    a, b = _open(_end(start, caption="one")), _open(_end(start, caption="two"))
    bar = panels._bar_layout(SMALL).height
    w, h = SMALL
    assert _mad(a.crop((0, 0, w, h - bar)), b.crop((0, 0, w, h - bar))) == 0
    assert _mad(a.crop((0, h - bar, w, h)), b.crop((0, h - bar, w, h))) > 0.1


def test_end_frame_follows_its_prompt() -> None:
    start = _key()
    quiet = _end(start, "the lighthouse stands")
    stormy = _end(start, "lightning and rain over the lighthouse")
    assert _mad(quiet, stormy) > 2


def test_end_frame_cover_fits_another_size() -> None:
    start = _key(size=(1280, 720))
    end = _open(_end(start, size=(360, 640)))
    assert end.size == (360, 640)


def test_end_frame_from_a_foreign_png() -> None:
    # No panel metadata: the deriver has to guess where the bar and subject are.
    foreign = Image.new("RGB", (500, 300), (40, 60, 90))
    foreign.paste((200, 180, 60), (200, 80, 300, 260))
    buf = io.BytesIO()
    foreign.save(buf, "PNG")
    end = _end(buf.getvalue(), "a figure under the moon", size=SMALL)
    assert _open(end).size == SMALL
    assert end == _end(buf.getvalue(), "a figure under the moon", size=SMALL)


def test_end_frames_chain_from_scene_to_scene() -> None:
    frame = _key()
    frames = [frame]
    for i, prompt in enumerate(["rain falls", "night comes, the beam sweeps", "a boat heads away"]):
        frame = _end(frame, prompt, seed=i, caption=f"scene {i}")
        frames.append(frame)
    assert all(_open(f).size == SMALL for f in frames)
    assert len(set(frames)) == len(frames)
    assert _mad(frames[1], frames[2]) < _mad(frames[1], _key("a robot in a city", seed=3))


# --------------------------------------------------------------------------- contact sheet


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("panels")
    files = []
    for i, (prompt, size) in enumerate(
        [(PROMPT, (426, 240)), ("a robot in a city", (240, 426)), ("a car", (300, 300))]
    ):
        start = _key(prompt, size=size, seed=i)
        pair = (root / f"s{i}_start.png", root / f"s{i}_end.png")
        pair[0].write_bytes(start)
        pair[1].write_bytes(_end(start, "rain", size=size, seed=i))
        files.append(pair)
    return files


def _rows(files: list[tuple[Path, Path]], n: int) -> list[SheetRow]:
    return [SheetRow(i + 1, f"Scene {i + 1} caption", *files[i % len(files)]) for i in range(n)]


def test_contact_sheet_grows_with_rows(scene_files: list[tuple[Path, Path]]) -> None:
    one = _open(contact_sheet(_rows(scene_files, 1), title="Demo"))
    three = _open(contact_sheet(_rows(scene_files, 3), title="Demo"))
    assert one.width == three.width
    assert three.height > one.height * 2


def test_contact_sheet_is_deterministic(scene_files: list[tuple[Path, Path]]) -> None:
    rows = _rows(scene_files, 2)
    assert contact_sheet(rows, title="Demo") == contact_sheet(rows, title="Demo")


def test_contact_sheet_thumb_width_sets_the_width(scene_files: list[tuple[Path, Path]]) -> None:
    narrow = _open(contact_sheet(_rows(scene_files, 1), title="Demo", thumb_width=160))
    wide = _open(contact_sheet(_rows(scene_files, 1), title="Demo", thumb_width=320))
    assert narrow.width < wide.width


def test_contact_sheet_handles_missing_images_and_notes(
    scene_files: list[tuple[Path, Path]], tmp_path: Path
) -> None:
    start, end = scene_files[0]
    rows = [
        SheetRow(1, "complete", start, end),
        SheetRow(2, "no end frame", start, None, note="gap: rai_filtered"),
        SheetRow(3, "nothing at all", None, tmp_path / "does-not-exist.png"),
    ]
    sheet = _open(contact_sheet(rows, title="Gaps"))
    without_note = _open(
        contact_sheet([*rows[:1], SheetRow(2, "no end frame", start, None), rows[2]], title="Gaps")
    )
    assert sheet.size[0] == without_note.size[0]
    assert sheet.tobytes() != without_note.tobytes()


def test_contact_sheet_with_no_rows_and_long_text(scene_files: list[tuple[Path, Path]]) -> None:
    empty = _open(contact_sheet([], title=""))
    assert empty.width > 0 < empty.height
    start, end = scene_files[0]
    long = SheetRow(1, "word " * 300, start, end, note="note " * 50)
    assert _open(contact_sheet([long], title="T " * 100)).height > empty.height
