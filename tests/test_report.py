"""`vidpipe report --html`: the gallery of a batch, rendered by a real browser.

The page must stand alone (inline CSS, contact sheets as data URIs, nothing fetched from
the network) and show one card per job: a player for each finished job, the error of each
failed one. Headless Chromium loads it from disk; the DOM after load and a screenshot are
checked. The last test is the issue's headline scenario: local and google jobs (google
against the local Vertex emulator) in one batch, one of them failing.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vidpipe.testing.fakes import fail_with
from vidpipe.testing.vertex_emulator import VertexEmulator, idea_storyboard

API_KEY = "AIzaTEST-REPORT-SECRET"

# --------------------------------------------------------------------------------------
# Helpers


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and os.access("/usr/bin/chromium", os.X_OK):
        path = "/usr/bin/chromium"
    if path is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    return path


def browse(page: Path, scratch: Path) -> tuple[str, Image.Image]:
    """Load `page` in headless Chromium: (the DOM after load, a 1280x1600 screenshot)."""
    browser = chromium_path()
    profile = scratch / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    shot = scratch / "gallery.png"
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1280,1600",
            f"--screenshot={shot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as img:
        image = img.convert("RGB")
    return proc.stdout, image


def assert_not_blank(image: Image.Image) -> None:
    assert image.size == (1280, 1600)
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is None or len(colors) > 200, "the screenshot is (nearly) one colour"
    gray = image.convert("L")
    # The header (title, totals) has dark text on its light background ...
    header = gray.crop((0, 0, 1280, 100))
    assert header.getextrema()[0] < 80, "no text in the header"
    # ... and the cards below it hold headings, players and contact sheets.
    cards = gray.crop((0, 120, 1280, 900))
    lo, hi = cards.getextrema()
    assert hi - lo > 150
    histogram = cards.histogram()
    assert max(histogram) < 0.9 * sum(histogram), "the card area is one flat colour"


def cards(dom: str) -> dict[str, str]:
    """job name → the HTML of its card."""
    found = re.findall(r'<article id="job-([^"]+)"(.*?)</article>', dom, flags=re.S)
    return dict(found)


def assert_self_contained(page: Path) -> str:
    text = page.read_text("utf-8")
    assert not re.search(r"https?://", text), "the page refers to the network"
    assert "<link" not in text and "<script" not in text
    assert "<style>" in text
    for src in re.findall(r'<video[^>]*\ssrc="([^"]+)"', text):
        assert not src.startswith(("/", "file:")), src  # relative to the page
        assert (page.parent / src).is_file(), src
    for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', text):
        assert src.startswith("data:image/"), src
    return text


# --------------------------------------------------------------------------------------
# 8. The gallery of a batch


def test_gallery_shows_every_job_with_players_for_the_finished_ones(project, fake, tmp_path):
    project.job("harbour", "prompt: Dawn over a quiet harbour. A boat leaves.\nscenes: 2\n")
    project.job("lantern", "prompt: A lantern in the fog.\nscenes: 1\n")
    project.job("kite", "prompt: A red kite over a hill.\nprovider: fake\nscenes: 1\n")
    message = "clip <b>refused</b> & dropped by the fake"
    fake.failures["video"] = [fail_with(message, times=None)]
    result = project.cli("run", "-q", "--report", "report.json")
    assert result.exit_code == 1, result.output
    jobs = project.jobs_in_report()
    assert {n: j["status"] for n, j in jobs.items()} == {
        "harbour": "complete",
        "lantern": "complete",
        "kite": "failed",
    }
    assert message in jobs["kite"]["error"]

    result = project.cli("report", "--html", "site/gallery/index.html")
    assert result.exit_code == 0, result.output
    page = project.root / "site" / "gallery" / "index.html"
    assert f"wrote {page} (3 jobs)" in result.stdout
    text = assert_self_contained(page)
    assert text.count("data:image/jpeg;base64,") >= 2  # the finished jobs' contact sheets
    assert html.escape(message, quote=False) in text

    dom, image = browse(page, tmp_path)
    assert_not_blank(image)
    shown = cards(dom)
    assert list(shown) == list(jobs) == ["harbour", "kite", "lantern"]  # the batch's order
    for name in ("harbour", "lantern"):
        assert shown[name].count("<video") == 1
        assert f'src="../../{jobs[name]["output"]}"' in shown[name]
        assert "data:image/jpeg;base64," in shown[name]
    assert "<video" not in shown["kite"]
    assert dom.count("<video") == 2
    # The error is shown as text, escaped, not as markup.
    assert html.escape(message, quote=False) in shown["kite"]
    assert "<b>refused</b>" not in dom
    assert 'class="status failed"' in shown["kite"]


def test_report_picks_a_batch_and_refuses_when_there_is_none(project, tmp_path):
    # No batch yet (and not even a database): a clear message, exit 2, nothing created.
    result = project.cli("report", "--html", "index.html")
    assert result.exit_code == 2
    assert "no finished batch" in result.stderr and "vidpipe run" in result.stderr
    assert "Traceback" not in result.output
    assert not (project.root / "index.html").exists()
    assert not (project.root / "vidpipe.db").exists()
    # A dry run records no batch either.
    project.job("harbour", "prompt: A harbour.\nscenes: 1\n")
    project.job("lantern", "prompt: A lantern.\nscenes: 1\n")
    assert project.cli("run", "-q", "--dry-run").exit_code == 0
    assert project.cli("report").exit_code == 2

    assert project.cli("run", "-q", "--report", "first.json").exit_code == 0
    assert project.cli("run", "-q", "--select", "lantern", "--report", "second.json").exit_code == 0
    first, second = project.report("first.json"), project.report("second.json")
    assert first["batch_id"] and second["batch_id"] and first["batch_id"] != second["batch_id"]

    result = project.cli("report", "--html", "last.html")
    assert result.exit_code == 0, result.output
    assert list(cards((project.root / "last.html").read_text())) == ["lantern"]
    assert second["batch_id"] in (project.root / "last.html").read_text()

    result = project.cli("report", "--html", "older.html", "--batch", first["batch_id"])
    assert result.exit_code == 0, result.output
    older = (project.root / "older.html").read_text()
    assert list(cards(older)) == ["harbour", "lantern"] and first["batch_id"] in older
    assert older.count("<video") == 2

    result = project.cli("report", "--html", "none.html", "--batch", "20000101-000000-000000")
    assert result.exit_code == 2
    assert "no batch '20000101-000000-000000'" in result.stderr
    assert not (project.root / "none.html").exists()


# --------------------------------------------------------------------------------------
# 9. The headline scenario: local and google jobs, one google job failing


@pytest.fixture
def emu() -> Iterator[VertexEmulator]:
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.lower().endswith("_proxy"):
                mp.delenv(key, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        with VertexEmulator(polls_until_done=1, storyboard_fn=idea_storyboard) as emulator:
            yield emulator


def google_job(project: Any, name: str) -> str:
    marker = f"{name}-marker"
    project.job(
        name,
        f'prompt: "A paper boat sails down a rainy street, {marker}"\nprovider: google\n'
        'aspect_ratio: "16:9"\nclip_duration: 4\nresolution: 720p\nscenes: 1\n',
    )
    return marker


def test_headline_mixed_batch_with_a_failing_google_job(project, emu, tmp_path):
    project.job("local-harbour", "prompt: Dawn over a quiet harbour. A boat leaves.\nscenes: 2\n")
    google_job(project, "cloud-ok")
    bad = google_job(project, "cloud-bad")
    emu.invalid_storyboard_json(count=None, match=bad)  # every storyboard answer broken
    env = {
        "GOOGLE_API_KEY": API_KEY,
        "GOOGLE_CLOUD_PROJECT": "vidpipe-test",
        "GOOGLE_CLOUD_LOCATION": "us-central1",
        "VIDPIPE_GOOGLE__BASE_URL": emu.url,
        "VIDPIPE_GOOGLE__POLL_INTERVAL": "0.05",
        "VIDPIPE_GOOGLE__RETRY_BASE_DELAY": "0.01",
    }
    result = project.cli(
        "run", "-q", "-j", "3", "--report", "report.json", "--junit", "junit.xml", env=env
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output

    report = project.report()
    jobs = {j["name"]: j for j in report["jobs"]}
    assert {n: j["status"] for n, j in jobs.items()} == {
        "cloud-bad": "failed",
        "cloud-ok": "complete",
        "local-harbour": "complete",
    }
    failed = jobs["cloud-bad"]
    assert failed["error"] and "storyboard" in failed["error"].lower()
    assert failed["output"] is None and failed["cost_usd"] == 0
    # It tried (3 attempts at the storyboard), then gave up before any image or clip.
    attempts = [r for r in emu.calls() if bad in r.prompt]
    assert len(attempts) == 3 and {r.rpc for r in attempts} == {"generateContent"}
    for name in ("cloud-ok", "local-harbour"):
        assert jobs[name]["error"] is None
        assert (project.root / jobs[name]["output"]).is_file()
    assert jobs["cloud-ok"]["cost_usd"] > 0.6  # a 4 s Veo clip with audio, two images
    assert jobs["local-harbour"]["cost_usd"] == 0
    assert report["totals"]["by_status"] == {"failed": 1, "complete": 2}

    suite = ET.parse(project.root / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "0")
    failure = suite.find("testcase[@name='cloud-bad']/failure")
    assert failure is not None and failure.text == failed["error"]
    for name in ("cloud-ok", "local-harbour"):
        case = suite.find(f"testcase[@name='{name}']")
        assert case is not None and case.find("failure") is None

    result = project.cli("report", "--html", "gallery/index.html", env=env)
    assert result.exit_code == 0, result.output
    page = project.root / "gallery" / "index.html"
    assert_self_contained(page)
    dom, image = browse(page, tmp_path)
    assert_not_blank(image)
    shown = cards(dom)
    assert sorted(shown) == ["cloud-bad", "cloud-ok", "local-harbour"]
    assert shown["cloud-ok"].count("<video") == 1 and shown["local-harbour"].count("<video") == 1
    assert "<video" not in shown["cloud-bad"]
    assert html.escape(failed["error"], quote=False) in shown["cloud-bad"]

    # The key is used, never written.
    for path in (project.root / "report.json", project.root / "junit.xml", page):
        assert API_KEY not in path.read_text()
    listing = json.loads(project.cli("list", "--json").stdout)
    assert sorted(p["job"] for p in listing) == ["cloud-bad", "cloud-ok", "local-harbour"]
