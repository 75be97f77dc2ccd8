"""What a student sees: the notebooks as this pytest session executed them, in quick mode
(nbmake; kept by ``course_tools.executed_notebooks``) and in the full-size rehearsal (kept
by ``course_tools.background_jobs``). ``python -m pytest`` runs both before these
tests."""

from pathlib import Path

import nbformat
import pytest

from course_tools import background_jobs
from course_tools.executed_notebooks import (
    CPP_LOG_LINE,
    WIDGET_STATE,
    executed_folder,
    players_in,
    promised_and_shown,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUNS = [
    pytest.param(mode, path, id=f"{mode}-{path.name}")
    for mode in ("quick", "rehearsal")
    for path in NOTEBOOKS
]


def _executed(mode: str, name: str):
    folder = executed_folder() if mode == "quick" else background_jobs.results_folder()
    path = folder / name
    if not path.is_file():
        pytest.skip(
            f"{name} was not executed in {mode} mode in this session (run `python -m pytest`)"
        )
    return nbformat.read(path, as_version=4)


def _texts(output) -> list[str]:
    """Everything an output shows as text: a stream, an error, or a display's data."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    return [str(value) for value in output.get("data", {}).values()]


@pytest.mark.parametrize(("mode", "path"), RUNS)
def test_executed_outputs_hold_no_tensorflow_log_line(mode, path):
    notebook = _executed(mode, path.name)
    found = [
        (index, match.group(0))
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        for text in _texts(output)
        for match in CPP_LOG_LINE.finditer(text)
    ]
    assert not found, f"TensorFlow log lines in cell outputs: {found[:5]}"
    assert any(cell.get("outputs") for cell in notebook.cells), "nothing was executed"


@pytest.mark.parametrize(("mode", "path"), RUNS)
def test_every_notebook_plays_the_audio_its_markdown_promises(mode, path):
    notebook = _executed(mode, path.name)
    assert players_in(notebook) >= 1, "no audio player in the whole notebook"
    rows = promised_and_shown(notebook)
    broken = [(index, promise) for index, promise, shown in rows if not shown]
    assert not broken, f"markdown cells that promise audio, with no player after them: {broken}"


def _widget_notebook(markdown: str) -> nbformat.NotebookNode:
    """A promise, then a cell showing a grid whose Output widget holds one player."""
    player = {"output_type": "display_data", "data": {"text/html": "<audio controls></audio>"}}
    state = {
        "grid": {"model_name": "GridBoxModel", "state": {"children": ["IPY_MODEL_box"]}},
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_out"]}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [player]}},
        "lone": {"model_name": "OutputModel", "state": {"outputs": [player]}},
    }
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "grid"}}
    shows = nbformat.v4.new_code_cell("grid")
    shows.outputs = [nbformat.v4.new_output("display_data", data=view)]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# 99 Opening: listen to this"),
        nbformat.v4.new_markdown_cell(markdown),
        shows,
        nbformat.v4.new_markdown_cell("## Exercises\n\nListen to your own."),
        nbformat.v4.new_code_cell("nothing"),
    ]
    notebook.metadata["widgets"] = {WIDGET_STATE: {"state": state}}
    return notebook


def test_players_are_found_inside_displayed_widgets_and_promises_are_matched():
    notebook = _widget_notebook("### Listen to its mistakes")
    assert players_in(notebook) == 1  # the unreferenced "lone" Output is not shown
    assert promised_and_shown(notebook) == [(1, "# Listen", 1)]
    assert promised_and_shown(_widget_notebook("The `listen` callback plays clips.")) == []
    silent = _widget_notebook("Train, then listen.")
    silent.cells[2].outputs = []
    assert promised_and_shown(silent) == [(1, "then listen", 0)]


def test_the_log_line_pattern_finds_lines_in_an_output():
    output = nbformat.v4.new_output(
        "stream", name="stderr", text="E0000 00:00:1764000000.1 123 cuda_executor.cc:1228] no GPU\n"
    )
    assert any(CPP_LOG_LINE.search(text) for text in _texts(output))
