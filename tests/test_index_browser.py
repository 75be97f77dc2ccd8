"""outputs/index.html in a real browser: every audio player loads with its WAV's duration.

Drives Debian's headless Chromium through course_tools.browser_check (Selenium with an
explicit ChromeDriver path, nothing downloaded). The browser tests skip, saying why,
when Selenium, Chromium or ChromeDriver is missing (``apt-get install chromium
chromium-driver``; ``.ci/run`` installs them).

By default the page under test is a small results folder built here with
``write_index``. Set ``COURSE_INDEX_DIR`` to a folder written by ``python -m
course_tools.run_course`` (for example ``COURSE_INDEX_DIR=outputs``) to check that one
instead; the screenshot then lands next to it, in ``outputs/index_screenshot.png``.
"""

from __future__ import annotations

import os
import struct
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile

from course_lib import audio
from course_tools import browser_check, run_course

UNAVAILABLE = browser_check.unavailable_reason()
needs_browser = pytest.mark.skipif(
    bool(UNAVAILABLE), reason=f"no browser check here: {UNAVAILABLE}"
)

RATE = 8000
# Two notebooks with two short tones each; the second has a name that must be escaped
# in the page and URL-quoted in its links.
TONES = {
    "01_tones": [("low.wav", 220.0, 0.5), ("high.wav", 880.0, 1.25)],
    "02_more tones & <odd>": [("a b#1.wav", 440.0, 0.75), ("deep/long.wav", 330.0, 2.0)],
}


def _write_run(out: Path, stem: str, tones, error: str = "") -> run_course.NotebookRun:
    wavs = []
    for name, frequency, seconds in tones:
        t = np.arange(round(seconds * RATE)) / RATE
        wavs.append(
            audio.write_wav(out / stem / name, 0.3 * np.sin(2 * np.pi * frequency * t), RATE)
        )
    page = out / f"{stem}.html"
    page.write_text(f"<!doctype html><title>{stem}</title><p>executed copy</p>", encoding="utf-8")
    return run_course.NotebookRun(Path(f"{stem}.ipynb"), page, wavs, 3.0, error)


def build_results(out: Path) -> Path:
    """A results folder like run_course's: HTML copies, WAVs per notebook, index.html."""
    runs = [
        _write_run(out, "01_tones", TONES["01_tones"]),
        _write_run(
            out,
            "02_more tones & <odd>",
            TONES["02_more tones & <odd>"],
            error="RuntimeError: failed on purpose <b>",
        ),
    ]
    return run_course.write_index(runs, out, mode="quick")


@pytest.fixture
def results(tmp_path) -> tuple[Path, bool]:
    """(folder holding index.html, whether this test built it)."""
    chosen = os.environ.get("COURSE_INDEX_DIR")
    if chosen:
        folder = Path(chosen)
        if not (folder / "index.html").is_file():
            pytest.fail(f"COURSE_INDEX_DIR={chosen} holds no index.html; run run_course first")
        return folder, False
    build_results(tmp_path / "outputs")
    return tmp_path / "outputs", True


class _AudioSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "audio":
            self.sources.append(dict(attrs)["src"])


def _audio_sources(index: Path) -> list[str]:
    parser = _AudioSources()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.sources


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@needs_browser
def test_every_audio_player_loads_with_its_wav_duration(results):
    folder, built_here = results
    screenshot = folder / run_course.SCREENSHOT_NAME
    screenshot.unlink(missing_ok=True)
    report = browser_check.check_page(folder, screenshot=screenshot)

    assert report.title == run_course.TITLE
    assert report.url.startswith("http://127.0.0.1:")
    sources = _audio_sources(folder / "index.html")
    assert [state.src for state in report.audio] == sources
    assert report.audio, "the page has no audio players"
    assert report.all_loaded, report.summary()
    for state in report.audio:
        wav = folder / urllib.parse.unquote(state.src)
        expected = soundfile.info(str(wav)).duration
        assert state.ready_state >= 1
        assert abs(state.duration - expected) <= 0.05, (state.src, state.duration, expected)
    if built_here:
        wanted = {
            f"{stem}/{name}": seconds for stem, tones in TONES.items() for name, _, seconds in tones
        }
        got = {urllib.parse.unquote(state.src): state.duration for state in report.audio}
        assert got.keys() == wanted.keys()
        for src, seconds in wanted.items():
            assert got[src] == pytest.approx(seconds, abs=0.05), src

    assert report.screenshot == screenshot
    width, height = _png_size(screenshot)
    assert width >= 1000 and height >= 400


@needs_browser
def test_a_broken_wav_is_reported_not_waited_for(tmp_path):
    out = tmp_path / "outputs"
    good = _write_run(out, "01_tones", TONES["01_tones"][:1])
    broken = out / "01_tones" / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file" * 10)
    good.wavs.append(broken)
    run_course.write_index([good], out)

    report = browser_check.check_page(out, timeout=300)

    states = {state.src: state for state in report.audio}
    assert states["01_tones/low.wav"].loaded
    assert not states["01_tones/broken.wav"].loaded
    assert states["01_tones/broken.wav"].error.startswith("media error")
    assert "not loaded: 01_tones/broken.wav" in report.summary()
    assert report.seconds < 200  # an error settles the wait; the timeout is not needed


@needs_browser
def test_run_course_saves_the_screenshot_next_to_the_index(tmp_path, monkeypatch, capsys):
    notebooks = [tmp_path / "01_tones.ipynb", tmp_path / "02_more.ipynb"]
    for notebook in notebooks:
        notebook.write_text("{}")
    tones = {"01_tones": TONES["01_tones"], "02_more": TONES["02_more tones & <odd>"]}

    def fake_execute(notebook, out, mode="quick", cell_timeout=900, data_dir=None):
        return _write_run(out, notebook.stem, tones[notebook.stem])

    monkeypatch.setattr(run_course, "execute_notebook", fake_execute)
    out = tmp_path / "outputs"

    assert run_course.main([*map(str, notebooks), "--out", str(out)]) == 0

    assert "4 of 4 audio players loaded" in capsys.readouterr().out
    assert _png_size(out / "index_screenshot.png")[0] >= 1000


def test_a_missing_browser_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(browser_check.CHROMEDRIVER_ENV, str(tmp_path / "no-chromedriver"))
    if browser_check.importlib.util.find_spec("selenium") is None:
        expected = "selenium is not installed"
    else:
        expected = "ChromeDriver not found (apt-get install chromium chromium-driver)"
    assert expected in browser_check.unavailable_reason()
    with pytest.raises(browser_check.BrowserUnavailableError, match=expected.split(" (")[0]):
        browser_check.check_page(tmp_path)


def test_serve_folder_serves_files_on_loopback(tmp_path):
    import urllib.request

    (tmp_path / "a b.txt").write_text("hello")
    with browser_check.serve_folder(tmp_path) as base:
        assert base.startswith("http://127.0.0.1:")
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(base + "a%20b.txt", timeout=5) as response:
            assert response.read() == b"hello"
