"""Run every notebook top to bottom and publish the results: ``python -m course_tools.run_course``.

For each notebook it writes ``OUT/<notebook>.html`` and ``OUT/<notebook>.ipynb`` (the
executed copy) and collects the WAV files the notebook wrote into ``OUT/<notebook>/``
(each notebook gets ``COURSE_OUTPUT_DIR`` pointing there). ``OUT/index.html`` links
everything, with an audio player per WAV, so the course's results can be browsed in a
browser. ``OUT/runs.json`` records each notebook as it finishes: its time, its error, and
the peak memory of its kernel (Linux's ``VmHWM``, read after every cell).

``--mode rehearsal`` is the full-size rehearsal: every notebook with the full presets'
shapes and tiny counts, on tiny fixtures, on the CPU (``course_lib.config``). The test
run starts it in the background (``conftest.py``) and ``tests/test_rehearsal.py`` reads
its ``runs.json``.

When Chromium, ChromeDriver and Selenium are installed (``apt-get install chromium
chromium-driver``), it then opens ``OUT/index.html`` headless, checks that every audio
player loads, and saves ``OUT/index_screenshot.png``; without them it prints a note and
skips that step (``--no-screenshot`` skips it always).

Usage::

    python -m course_tools.run_course [--out outputs] [--mode quick|laptop|full|rehearsal]
                                    [--data-dir FOLDER] [--screenshot | --no-screenshot]
                                    [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from course_tools import browser_check

NOTEBOOK_FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
TITLE = "Generative Audio Course Kit: results"
SCREENSHOT_NAME = "index_screenshot.png"
RUNS_NAME = "runs.json"
MODES = ("quick", "laptop", "full", "rehearsal")  # course_lib.config.MODES, without importing it


@dataclasses.dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    notebook: Path
    html: Path
    wavs: list[Path]
    seconds: float
    error: str = ""
    peak_mb: float | None = None  # the kernel's peak resident memory (None: not on Linux)

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> dict:
        """The record of ``runs.json``: paths as text."""
        return {
            "notebook": self.notebook.name,
            "html": str(self.html),
            "wavs": [str(wav) for wav in self.wavs],
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "peak_mb": None if self.peak_mb is None else round(self.peak_mb, 1),
        }


def read_runs(out: Path) -> dict[str, dict]:
    """Notebook name -> its record in ``out/runs.json`` (empty before the first ends)."""
    try:
        return json.loads((Path(out) / RUNS_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _record_run(run: NotebookRun, out: Path) -> None:
    """Add ``run`` to ``out/runs.json``, written whole and renamed into place."""
    runs = read_runs(out)
    runs[run.notebook.name] = run.to_json()
    partial = Path(out) / f".{RUNS_NAME}.partial"
    partial.write_text(json.dumps(runs, indent=1))
    partial.replace(Path(out) / RUNS_NAME)


def _peak_memory_mb(pid: int | None) -> float | None:
    """The peak resident memory of process ``pid`` in MB (``VmHWM``), or None."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (OSError, TypeError):
        return None
    kilobytes = next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), None)
    return None if kilobytes is None else kilobytes / 1024


def _kernel_pid(client) -> int | None:
    provisioner = getattr(client.km, "provisioner", None)
    process = getattr(provisioner, "process", None)
    return getattr(provisioner, "pid", None) or getattr(process, "pid", None)


def _last_line(text: str, limit: int = 300) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def execute_notebook(
    notebook: Path,
    out: Path,
    mode: str = "quick",
    cell_timeout: int = 900,
    data_dir: Path | None = None,
) -> NotebookRun:
    """Execute ``notebook`` in a fresh kernel and write its executed copy (HTML and
    ``.ipynb``) and WAVs under ``out``.

    A failing cell, a cell timeout or a dead kernel does not stop the run: the HTML
    shows what ran, and :attr:`NotebookRun.error` says what went wrong.

    Args:
        notebook: the ``.ipynb`` file.
        out: the results folder.
        mode: ``COURSE_MODE`` of the kernel.
        cell_timeout: seconds one cell may take.
        data_dir: ``COURSE_DATA_DIR`` of the kernel (default: the course's own).
    """
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    from course_tools.kernel_messages import poll_kernel_replies_in_slices

    poll_kernel_replies_in_slices()
    wav_folder = out / notebook.stem
    wav_folder.mkdir(parents=True, exist_ok=True)
    environment = {"COURSE_MODE": mode, "COURSE_OUTPUT_DIR": str(wav_folder.resolve())}
    if data_dir is not None:
        environment["COURSE_DATA_DIR"] = str(Path(data_dir).resolve())
    previous = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    document = nbformat.read(notebook, as_version=4)
    peaks: list[float] = []

    def after_cell(**_):  # VmHWM only grows: the last reading is the kernel's peak so far
        peak = _peak_memory_mb(_kernel_pid(client))
        if peak is not None:
            peaks.append(peak)

    client = nbclient.NotebookClient(
        document,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
        on_cell_executed=after_cell,
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as failure:
        error = _last_line(str(failure)) or "a cell raised an error"
    except Exception as failure:  # a timeout, a dead kernel, a kernel that never started
        error = f"{type(failure).__name__}: {_last_line(str(failure))}".rstrip(": ")
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - start
    nbformat.write(document, str(out / notebook.name))
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(document)
    html_path = out / f"{notebook.stem}.html"
    html_path.write_text(body, encoding="utf-8")
    wavs = sorted(wav_folder.rglob("*.wav"))
    return NotebookRun(notebook, html_path, wavs, seconds, error, max(peaks, default=None))


def _href(path: Path, out: Path) -> str:
    """A relative, URL-quoted and HTML-escaped link from ``out/index.html`` to ``path``."""
    relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(out))).as_posix()
    return html.escape(urllib.parse.quote(relative), quote=True)


def _wav_facts(wav: Path) -> str:
    """``"1.25 s, 16000 Hz"`` for a readable sound file, else why it cannot be read."""
    try:
        import soundfile

        info = soundfile.info(str(wav))
    except Exception as error:  # any unreadable file is reported, not fatal
        return f"unreadable: {_last_line(str(error), 80) or type(error).__name__}"
    return f"{info.frames / info.samplerate:.2f} s, {info.samplerate} Hz"


def _section_id(stem: str, taken: set[str]) -> str:
    base = "nb-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "notebook")
    ident, number = base, 2
    while ident in taken:
        ident, number = f"{base}-{number}", number + 1
    taken.add(ident)
    return ident


def _player(wav: Path, run: NotebookRun, out: Path) -> str:
    folder = out / run.notebook.stem
    try:
        caption = Path(wav).relative_to(folder).as_posix()
    except ValueError:
        caption = Path(os.path.relpath(wav, out)).as_posix()
    return (
        f'<figure><figcaption><span class="name">{html.escape(caption)}</span> '
        f'<span class="facts">{html.escape(_wav_facts(wav))}</span></figcaption>'
        f'<audio controls preload="metadata" src="{_href(wav, out)}"></audio></figure>'
    )


def _section(run: NotebookRun, out: Path, ident: str) -> str:
    name = html.escape(run.notebook.stem)
    state = "ok" if run.ok else "failed"
    status = f'<span class="status {state}">{"ran" if run.ok else "failed"}</span>'
    count = f"{len(run.wavs)} audio file{'' if len(run.wavs) == 1 else 's'}"
    if Path(run.html).is_file():
        link = f'<a href="{_href(run.html, out)}">executed notebook (HTML)</a>'
    else:
        link = "no HTML copy was written"
    error = "" if run.ok else f'<pre class="error">{html.escape(run.error)}</pre>'
    players = "\n".join(_player(wav, run, out) for wav in run.wavs)
    grid = (
        f'<div class="grid">\n{players}\n</div>'
        if players
        else '<p class="none">No audio written.</p>'
    )
    return (
        f'<section id="{ident}" class="notebook {state}">\n'
        f"<h2>{name}</h2>\n"
        f'<p class="meta">{status} in {run.seconds:.0f} s &middot; {count} &middot; {link}</p>\n'
        f"{error}{grid}\n</section>"
    )


_STYLE = """
:root{color-scheme:light;--ok:#1a7f37;--bad:#cf222e;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
padding:1.5em 2em 3em;max-width:1200px;color:#1f2328;background:#f6f8fa;line-height:1.4}
h1{margin:0 0 .2em;font-size:1.7em}
.summary{color:var(--muted);margin:.2em 0 1em}
nav ol{display:flex;flex-wrap:wrap;gap:.4em 1.2em;padding:0;margin:0 0 1.5em;list-style:none}
nav a{text-decoration:none}
section.notebook{background:#fff;border:1px solid var(--line);border-left:6px solid var(--ok);
border-radius:8px;padding:.8em 1.2em 1.2em;margin:0 0 1.2em}
section.notebook.failed{border-left-color:var(--bad)}
h2{margin:.2em 0;font-size:1.25em;font-family:ui-monospace,Menlo,Consolas,monospace}
.meta{margin:.2em 0 .8em;color:var(--muted)}
.status{display:inline-block;padding:0 .55em;border-radius:1em;color:#fff;font-weight:600;
font-size:.85em}
.status.ok{background:var(--ok)}.status.failed{background:var(--bad)}
pre.error{background:#ffebe9;border:1px solid #ffcecb;color:#82071e;padding:.6em .8em;
border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;margin:0 0 .8em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.8em}
figure{margin:0;padding:.5em .6em;border:1px solid var(--line);border-radius:6px;background:#fafbfc}
figcaption{font-size:.85em;margin-bottom:.3em;overflow-wrap:anywhere}
figcaption .facts{color:var(--muted);white-space:nowrap}
audio{width:100%;height:36px}
.none{color:var(--muted);font-style:italic}
footer{color:var(--muted);font-size:.85em;margin-top:2em}
"""


def write_index(runs: Sequence[NotebookRun], out: Path, mode: str | None = None) -> Path:
    """Write ``out/index.html``: one section per notebook, a link and an audio player per WAV.

    Each section gives the notebook's status (ran, or failed with its error), a link
    to its executed HTML copy, and a captioned ``<audio>`` player per WAV file. All
    links are relative, so the folder can be moved, zipped or served as it is.
    """
    out = Path(out)
    taken: set[str] = set()
    idents = [_section_id(run.notebook.stem, taken) for run in runs]
    ran = sum(run.ok for run in runs)
    wav_count = sum(len(run.wavs) for run in runs)
    summary = f"{ran} of {len(runs)} notebooks ran &middot; {wav_count} audio files"
    if mode:
        summary += f" &middot; {html.escape(mode)} mode"
    summary += f" &middot; written {time.strftime('%Y-%m-%d %H:%M')}"
    contents = "\n".join(
        f'<li><a href="#{ident}">{html.escape(run.notebook.stem)}</a> '
        f'<span class="status {"ok" if run.ok else "failed"}">{"ran" if run.ok else "failed"}'
        "</span></li>"
        for run, ident in zip(runs, idents, strict=True)
    )
    sections = "\n".join(_section(run, out, ident) for run, ident in zip(runs, idents, strict=True))
    sections = sections or '<p class="none">No notebooks were run.</p>'
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{TITLE}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<header>\n<h1>{TITLE}</h1>\n<p class="summary">{summary}</p>\n'
        f'<nav aria-label="notebooks"><ol>\n{contents}\n</ol></nav>\n</header>\n'
        f"<main>\n{sections}\n</main>\n"
        "<footer>Made by <code>python -m course_tools.run_course</code>. Each notebook's "
        "audio is in the folder of the same name.</footer>\n</body>\n</html>\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def screenshot_index(out: Path, required: bool = False) -> bool:
    """Check ``out/index.html`` in headless Chromium and save ``out/index_screenshot.png``.

    Prints what happened. Returns False when every audio player did not load, or when
    ``required`` and the browser is missing or failed; a missing browser otherwise
    only prints a note.
    """
    reason = browser_check.unavailable_reason()
    if reason:
        print(f"note: no screenshot of {out / 'index.html'}: {reason}")
        return not required
    try:
        report = browser_check.check_page(out, screenshot=out / SCREENSHOT_NAME)
    except Exception as error:  # the notebooks ran: report a browser failure, don't crash
        print(
            f"note: browser check of {out / 'index.html'} failed: {type(error).__name__}: "
            f"{_last_line(str(error), 200)}"
        )
        return not required
    print(f"{report.summary()}; screenshot -> {report.screenshot}")
    return report.all_loaded


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_tools.run_course",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to run (default: all in notebooks/)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    parser.add_argument("--mode", choices=MODES, default="quick")
    parser.add_argument(
        "--data-dir", type=Path, help="the kernels' COURSE_DATA_DIR (default: the course's)"
    )
    parser.add_argument(
        "--screenshot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"check OUT/index.html in headless Chromium and save OUT/{SCREENSHOT_NAME} "
        "(default: when Chromium, ChromeDriver and selenium are installed)",
    )
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(NOTEBOOK_FOLDER.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(path) for path in notebooks if not Path(path).is_file()]
    if missing or not notebooks:
        print(f"error: no such notebook: {', '.join(missing) or NOTEBOOK_FOLDER}", file=sys.stderr)
        return 2
    if args.out.resolve() == NOTEBOOK_FOLDER:
        print("error: --out must not be the notebooks folder itself", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RUNS_NAME).unlink(missing_ok=True)  # runs.json holds this run only
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} ({args.mode} mode) ...", flush=True)
        run = execute_notebook(
            Path(notebook).resolve(), args.out, mode=args.mode, data_dir=args.data_dir
        )
        runs.append(run)
        _record_run(run, args.out)
        state = "ok" if run.ok else f"FAILED ({run.error})"
        peak = "" if run.peak_mb is None else f", kernel peak {run.peak_mb:.0f} MB"
        print(f"  {state} in {run.seconds:.0f} s{peak}, {len(run.wavs)} WAV files -> {run.html}")
    index = write_index(runs, args.out, mode=args.mode)
    failed = [run.notebook.name for run in runs if not run.ok]
    print(f"{len(runs) - len(failed)} of {len(runs)} notebooks ran; results in {index}")
    browser_ok = True
    if args.screenshot is not False:
        browser_ok = screenshot_index(args.out, required=bool(args.screenshot))
    return 1 if failed or not browser_ok else 0


if __name__ == "__main__":
    sys.exit(main())
