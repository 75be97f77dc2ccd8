"""Keep the notebooks that nbmake executes, so tests can read what a student would see.

nbmake runs each notebook in a fresh kernel and keeps the executed copy only in memory.
:func:`keep_executed_notebooks` (called by the root ``conftest.py``) writes each copy to
a folder, and ``tests/test_executed_notebooks.py`` reads them: the cell outputs hold
no TensorFlow C++ log line, and every notebook plays audio.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

# A TensorFlow C++ log line: "2026-11-30 08:42:11.548317: E external/...cc:51] ..." or
# absl's "E0000 00:00:... file.cc:51] ...".
CPP_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d [\d:.]+: )?[IWEF]\d{0,4}[ \d:.]*\S+\.cc:\d+\]", re.M)


def executed_folder() -> Path:
    """Where this pytest session keeps executed notebooks (under the temporary folder,
    so two CI legs with their own ``TMPDIR`` keep theirs apart)."""
    return Path(tempfile.gettempdir()) / "course_kit_executed_notebooks"


def keep_executed_notebooks(folder: Path) -> None:
    """From now on, every notebook nbmake executes is also written to
    ``folder / <notebook name>`` (the folder is emptied first)."""
    import nbformat
    from nbmake.nb_run import NotebookRun

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.ipynb"):
        stale.unlink()
    execute = NotebookRun.execute

    def execute_and_keep(run: NotebookRun):
        result = execute(run)
        nbformat.write(result.nb, str(folder / Path(run.filename).name))
        return result

    NotebookRun.execute = execute_and_keep


# A markdown sentence that tells the student to listen: "Listen to ...", "### Listen",
# "Play a few clips", "... and listen", "Then listen" (not the `listen` callback).
LISTEN_PROMISE = re.compile(
    r"(?:^|[.!?:]\s+|#\s+|\band\s+|\b[Tt]hen\s+)(?:[Ll]isten|Play)\b(?!`)", re.M
)
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def players_shown(output, widget_state: dict) -> int:
    """How many audio players one cell output shows: ``<audio`` elements in its HTML,
    or inside the widgets it displays (their Output widgets' captured outputs, found
    through the ``IPY_MODEL_`` references of the notebook's saved widget state)."""
    data = output.get("data", {})
    count = str(data.get("text/html", "")).count("<audio")
    view = data.get("application/vnd.jupyter.widget-view+json")
    if not view:
        return count
    seen, waiting = set(), [view["model_id"]]
    while waiting:
        model_id = waiting.pop()
        if model_id in seen or model_id not in widget_state:
            continue
        seen.add(model_id)
        state = widget_state[model_id].get("state", {})
        for captured in state.get("outputs", []):
            count += players_shown(captured, widget_state)
        text = str(state)
        waiting.extend(re.findall(r"IPY_MODEL_(\w+)", text))
    return count


def promised_and_shown(notebook) -> list[tuple[int, str, int]]:
    """For each markdown cell of the lesson that tells the student to listen: its index,
    the promise, and how many players the code cells after it (up to the next markdown
    cell) show. The lesson runs from after the opening cell (whose promise the whole
    notebook keeps) to the exercises (which ask the student to write code)."""
    widget_state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    rows = []
    for index, cell in enumerate(notebook.cells[1:], start=1):
        if cell.cell_type == "markdown" and cell.source.startswith("## Exercises"):
            break
        promise = LISTEN_PROMISE.search(cell.source) if cell.cell_type == "markdown" else None
        if not promise:
            continue
        shown = 0
        for following in notebook.cells[index + 1 :]:
            if following.cell_type == "markdown":
                break
            shown += sum(players_shown(output, widget_state) for output in following.outputs)
        rows.append((index, promise.group(0).strip(), shown))
    return rows


def players_in(notebook) -> int:
    """Every audio player that a notebook's executed outputs show."""
    widget_state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return sum(
        players_shown(output, widget_state)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
