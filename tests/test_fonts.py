"""Captions in any language: the text font covers accented Latin and CJK."""

from __future__ import annotations

from PIL import ImageFont

from vidpipe.media.text import missing_glyphs, unicode_font


def test_unicode_font_draws_accents_and_cjk_without_boxes():
    font = unicode_font(24)
    assert missing_glyphs(font, "café 東京 Ñandú Łódź") == []


def test_missing_glyphs_finds_what_a_latin_font_lacks():
    # Pillow's built-in font (what captions used) draws `café` as `caf☐`: the check sees it.
    assert missing_glyphs(ImageFont.load_default(size=24), "café 東京") == ["é", "東", "京"]


def test_a_known_font_file_is_found_without_running_fontconfig(monkeypatch):
    # fc-list is a process spawn in every job process that draws text; the font files
    # vidpipe knows (.ci/run installs one) are tried first, fontconfig only after them.
    import subprocess

    from vidpipe.media import text

    spawned: list[object] = []

    def spawn(args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        spawned.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(subprocess, "run", spawn)
    text.unicode_font_path.cache_clear()
    try:
        assert text.unicode_font_path() in text._CANDIDATES
    finally:
        text.unicode_font_path.cache_clear()
    assert spawned == []
