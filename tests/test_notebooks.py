"""Every notebook follows the course anatomy, and the README lists exactly the notebooks."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    dirty = [
        i
        for i, cell in enumerate(_cells(path))
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_title_story_and_badge(path):
    first = _cells(path)[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {path.name[:2]} ")
    assert f"blob/main/notebooks/{path.name})" in first.source, "Colab badge for this file"
    assert len(first.source.split()) > 60, "the opening tells the story in a paragraph"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_exercises_and_next_steps(path):
    markdown = "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")
    assert "## Exercises" in markdown and "## What to try next" in markdown


def test_every_notebook_has_the_identical_setup_cell():
    setups = {path.name: _cells(path)[1].source for path in NOTEBOOKS}
    assert len(set(setups.values())) == 1, "setup cells differ: " + ", ".join(setups)
    setup = next(iter(setups.values()))
    assert len(re.findall(r"^REPOSITORY = ", setup, re.MULTILINE)) == 1


def test_readme_table_lists_exactly_the_notebooks_with_badges():
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"\]\(notebooks/([0-9]{2}_[a-z0-9_]+\.ipynb)\)", readme)
    assert listed == [path.name for path in NOTEBOOKS]
    setup = _cells(NOTEBOOKS[0])[1].source
    repository = re.search(r'REPOSITORY = "https://github.com/([^"]+)"', setup).group(1)
    for name in listed:
        assert f"colab.research.google.com/github/{repository}/blob/main/notebooks/{name}" in readme
