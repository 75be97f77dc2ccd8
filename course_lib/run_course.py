"""Run every notebook top to bottom and publish the results: ``python -m course_lib.run_course``.

For each notebook it writes ``OUT/<notebook>.html`` (the executed copy) and collects
the WAV files the notebook wrote into ``OUT/<notebook>/`` (each notebook gets
``COURSE_OUTPUT_DIR`` pointing there). ``OUT/index.html`` links everything, with an
audio player per WAV, so the course's results can be browsed in a browser.

Usage::

    python -m course_lib.run_course [--out outputs] [--mode quick|full] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

NOTEBOOK_FOLDER = Path(__file__).resolve().parent.parent / "notebooks"


@dataclasses.dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    notebook: Path
    html: Path
    wavs: list[Path]
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def execute_notebook(
    notebook: Path, out: Path, mode: str = "quick", cell_timeout: int = 900
) -> NotebookRun:
    """Execute ``notebook`` in a fresh kernel and write its HTML copy and WAVs under ``out``.

    A failing cell does not stop the run: the HTML shows the error, and
    :attr:`NotebookRun.error` says which cell failed.
    """
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    from course_lib.kernel_messages import poll_kernel_replies_in_slices

    poll_kernel_replies_in_slices()
    wav_folder = out / notebook.stem
    wav_folder.mkdir(parents=True, exist_ok=True)
    environment = {"COURSE_MODE": mode, "COURSE_OUTPUT_DIR": str(wav_folder.resolve())}
    previous = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    document = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(
        document,
        timeout=cell_timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1][:300]
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter(embed_images=True).from_notebook_node(document)
    html_path = out / f"{notebook.stem}.html"
    html_path.write_text(body, encoding="utf-8")
    wavs = sorted(wav_folder.rglob("*.wav"))
    return NotebookRun(notebook, html_path, wavs, seconds, error)


def write_index(runs: Sequence[NotebookRun], out: Path) -> Path:
    """Write ``out/index.html``: one section per notebook, a link and an audio player per WAV."""
    sections = []
    for run in runs:
        status = "ran" if run.ok else f"FAILED: {html.escape(run.error)}"
        players = (
            "\n".join(
                f"<figure><figcaption>{html.escape(wav.relative_to(out).as_posix())}</figcaption>"
                f'<audio controls preload="metadata" '
                f'src="{html.escape(wav.relative_to(out).as_posix())}"></audio></figure>'
                for wav in run.wavs
            )
            or "<p>No audio written.</p>"
        )
        sections.append(
            f'<section><h2><a href="{html.escape(run.html.name)}">'
            f"{html.escape(run.notebook.stem)}</a></h2>"
            f"<p>{status} in {run.seconds:.0f} s, {len(run.wavs)} WAV files</p>"
            f'<div class="grid">{players}</div></section>'
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Generative Audio Course Kit: results</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1200px}"
        ".grid{display:flex;flex-wrap:wrap;gap:1em}"
        "figure{margin:0}figcaption{font-size:0.8em;color:#444}"
        "</style></head><body><h1>Generative Audio Course Kit: results</h1>"
        + "\n".join(sections)
        + "</body></html>"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.run_course",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to run (default: all in notebooks/)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    parser.add_argument("--mode", choices=("quick", "full"), default="quick")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(NOTEBOOK_FOLDER.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(path) for path in notebooks if not Path(path).is_file()]
    if missing or not notebooks:
        print(f"error: no such notebook: {', '.join(missing) or NOTEBOOK_FOLDER}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for notebook in notebooks:
        print(f"running {notebook.name} ({args.mode} mode) ...", flush=True)
        run = execute_notebook(Path(notebook).resolve(), args.out, mode=args.mode)
        runs.append(run)
        state = "ok" if run.ok else f"FAILED ({run.error})"
        print(f"  {state} in {run.seconds:.0f} s, {len(run.wavs)} WAV files -> {run.html}")
    index = write_index(runs, args.out)
    failed = [run.notebook.name for run in runs if not run.ok]
    print(f"{len(runs) - len(failed)} of {len(runs)} notebooks ran; results in {index}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
