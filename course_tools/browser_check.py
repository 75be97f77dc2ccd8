"""Open a results page in headless Chromium: check its audio players and screenshot it.

``python -m course_tools.run_course`` uses it to save ``outputs/index_screenshot.png``
next to ``outputs/index.html``; ``tests/test_index_browser.py`` uses it to check that
every ``<audio>`` element on the page loads and reports its duration.

It drives Debian's Chromium and ChromeDriver (``apt-get install chromium
chromium-driver``) through Selenium, which is imported only when a check runs, so the
kit works without either. Nothing is downloaded: the driver's path is always given, so
Selenium Manager never runs. The page is served over HTTP on 127.0.0.1 only, for the
length of the check.

Example::

    from course_tools import browser_check

    report = browser_check.check_page("outputs", screenshot="outputs/index_screenshot.png")
    print(report.summary())
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import http.server
import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

CHROMIUM_ENV = "COURSE_CHROMIUM"
CHROMEDRIVER_ENV = "COURSE_CHROMEDRIVER"
INSTALL_HINT = "apt-get install chromium chromium-driver"
PAGE_WIDTH = 1280
MAX_SCREENSHOT_HEIGHT = 16_000

# Headless, no sandbox (CI runs as root), and none of Chromium's background traffic:
# on a machine without internet those connections only fail and slow the start.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    f"--window-size={PAGE_WIDTH},900",
)

# One entry per <audio> element: its src attribute, readyState, duration (a string when
# not finite, which JSON cannot carry) and media error, if any.
_AUDIO_STATES_JS = """
return Array.from(document.querySelectorAll('audio')).map(function (a) {
  var d = a.duration;
  return {
    src: a.getAttribute('src') || (a.querySelector('source') || {}).src || '',
    readyState: a.readyState,
    duration: isFinite(d) ? d : String(d),
    error: a.error ? ('media error ' + a.error.code + ' ' + (a.error.message || '')) : ''
  };
});
"""


class BrowserUnavailableError(RuntimeError):
    """Selenium, Chromium or ChromeDriver is missing; the message says which and how to fix."""


class BrowserCheckError(RuntimeError):
    """The browser started but the page could not be checked (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Browser:
    """Where Chromium and its driver are."""

    chromium: Path
    chromedriver: Path


@dataclasses.dataclass(frozen=True)
class AudioState:
    """What the browser reports for one ``<audio>`` element."""

    src: str
    ready_state: int
    duration: float | None
    error: str = ""

    @property
    def loaded(self) -> bool:
        """Metadata loaded (readyState >= 1) with a finite, positive duration, no error."""
        return (
            not self.error
            and self.ready_state >= 1
            and self.duration is not None
            and math.isfinite(self.duration)
            and self.duration > 0
        )


@dataclasses.dataclass(frozen=True)
class PageReport:
    """The outcome of :func:`check_page`."""

    url: str
    title: str
    audio: list[AudioState]
    screenshot: Path | None
    seconds: float

    @property
    def failures(self) -> list[AudioState]:
        return [state for state in self.audio if not state.loaded]

    @property
    def all_loaded(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        loaded = len(self.audio) - len(self.failures)
        text = f"{loaded} of {len(self.audio)} audio players loaded in Chromium"
        for state in self.failures[:5]:
            reason = state.error or f"readyState {state.ready_state}, duration {state.duration}"
            text += f"\n  not loaded: {state.src} ({reason})"
        return text


def _locate(env: str, names: tuple[str, ...], fallback: str) -> Path | None:
    if os.environ.get(env):
        candidate = Path(os.environ[env]).expanduser()
        return candidate if candidate.is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    return Path(fallback) if Path(fallback).is_file() else None


def find_browser() -> Browser:
    """Find Selenium, Chromium and ChromeDriver, or raise :class:`BrowserUnavailableError`.

    ``COURSE_CHROMIUM`` and ``COURSE_CHROMEDRIVER`` override the paths; otherwise
    ``chromium`` and ``chromedriver`` are looked up on ``PATH`` and in ``/usr/bin``.
    """
    if importlib.util.find_spec("selenium") is None:
        raise BrowserUnavailableError("selenium is not installed (pip install selenium)")
    chromium = _locate(CHROMIUM_ENV, ("chromium", "chromium-browser"), "/usr/bin/chromium")
    chromedriver = _locate(CHROMEDRIVER_ENV, ("chromedriver",), "/usr/bin/chromedriver")
    missing = [
        name
        for name, path in (("Chromium", chromium), ("ChromeDriver", chromedriver))
        if path is None
    ]
    if missing:
        raise BrowserUnavailableError(f"{' and '.join(missing)} not found ({INSTALL_HINT})")
    return Browser(chromium, chromedriver)


def unavailable_reason() -> str:
    """Why no browser check can run here, or ``""`` when it can."""
    try:
        find_browser()
    except BrowserUnavailableError as reason:
        return str(reason)
    return ""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        """Serve without a log line per request."""


@contextlib.contextmanager
def serve_folder(folder: str | Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) and yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(Path(folder).resolve()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="serve_folder", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def chromium_driver(browser: Browser | None = None) -> Iterator:
    """A headless Chromium WebDriver with a throwaway profile, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = browser or find_browser()
    with tempfile.TemporaryDirectory(prefix="course_chromium_") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(browser.chromium)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.ignore_local_proxy_environment_variables()
        # An explicit driver path: Selenium Manager (which downloads drivers) is skipped.
        service = Service(executable_path=str(browser.chromedriver), log_output=subprocess.DEVNULL)
        driver = webdriver.Chrome(service=service, options=options)
        try:
            yield driver
        finally:
            driver.quit()


def _audio_states(driver) -> list[AudioState]:
    states = []
    for entry in driver.execute_script(_AUDIO_STATES_JS):
        duration = entry["duration"]
        states.append(
            AudioState(
                src=entry["src"],
                ready_state=int(entry["readyState"]),
                duration=float(duration) if isinstance(duration, int | float) else None,
                error=entry["error"],
            )
        )
    return states


def save_full_page_screenshot(driver, path: str | Path) -> Path:
    """Save a PNG of the whole page (not only the window), at most 16,000 px tall."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {
        "x": 0,
        "y": 0,
        "width": max(1, math.ceil(size["width"])),
        "height": max(1, min(math.ceil(size["height"]), MAX_SCREENSHOT_HEIGHT)),
        "scale": 1,
    }
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(base64.b64decode(shot["data"]))
    partial.replace(path)
    return path


def check_page(
    folder: str | Path,
    page: str = "index.html",
    screenshot: str | Path | None = None,
    timeout: float = 60.0,
) -> PageReport:
    """Open ``folder/page`` in headless Chromium and wait for its audio players.

    The folder is served on 127.0.0.1 for the check. Waits until every ``<audio>``
    element has loaded its metadata (readyState >= 1 and a finite duration > 0) or
    failed, or until ``timeout`` seconds passed, then saves ``screenshot`` (the whole
    page) if given.

    Raises:
        BrowserUnavailableError: Selenium, Chromium or ChromeDriver is missing.
        BrowserCheckError: the page is missing or did not load.
    """
    browser = find_browser()
    folder = Path(folder)
    if not (folder / page).is_file():
        raise BrowserCheckError(f"no page to check: {folder / page}")
    start = time.perf_counter()
    with serve_folder(folder) as base, chromium_driver(browser) as driver:
        url = base + urllib.parse.quote(page)
        driver.set_page_load_timeout(timeout)
        driver.get(url)
        deadline = time.monotonic() + timeout
        while True:
            states = _audio_states(driver)
            settled = all(state.loaded or state.error for state in states)
            ready = driver.execute_script("return document.readyState") == "complete"
            if (settled and ready) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        title = driver.title
        shot = save_full_page_screenshot(driver, screenshot) if screenshot else None
    return PageReport(url, title, states, shot, time.perf_counter() - start)
