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


# A code cell builds or trains a model when it calls one of these (the judge included).
MODEL_CELL = re.compile(
    r"\bbuild_\w+\(|\.fit\(|\bresumable_fit\(|\bload_or_train_judge\(|\bcourse_models\.\w+\("
    r"|\bwavenet_command\("
)
PREPARE = "accelerator.prepare(allow_cpu=TRAIN_ON_CPU)"


def _first_model_cell(path):
    return next(
        (
            index
            for index, cell in enumerate(_cells(path))
            if cell.cell_type == "code" and MODEL_CELL.search(cell.source)
        ),
        None,
    )


MODEL_NOTEBOOKS = [path for path in NOTEBOOKS if _first_model_cell(path) is not None]


def test_every_training_notebook_is_found():
    assert {path.name[:2] for path in MODEL_NOTEBOOKS} >= {"02", "03", "04", "05", "06", "07"}


@pytest.mark.parametrize("path", MODEL_NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_checks_for_a_gpu_before_its_first_model(path):
    cells = _cells(path)
    calls = [
        index
        for index, cell in enumerate(cells)
        if cell.cell_type == "code" and "accelerator.prepare(" in cell.source
    ]
    assert len(calls) == 1, f"{path.name}: call {PREPARE} once, not in cells {calls}"
    call = calls[0]
    assert PREPARE in cells[call].source
    first = _first_model_cell(path)
    assert call < first, f"{path.name}: {PREPARE} in cell {call}, after model cell {first}"
    assert cells[call - 1].cell_type == "markdown", "a sentence tells the student what it does"
    assert re.search(r"\baccelerator\b", cells[2].source), "the import cell imports accelerator"
    settings = [
        index
        for index, cell in enumerate(cells[:call])
        if cell.cell_type == "code" and re.search(r"^TRAIN_ON_CPU = False  # ", cell.source, re.M)
    ]
    assert settings, f"{path.name}: the settings cell sets TRAIN_ON_CPU = False, with a comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_no_python_process_outside_the_setup_cell(path):
    """A second Python process would start a second TensorFlow on the notebook's GPU, and
    hide its errors: call the library instead (the setup cell alone runs pip)."""
    starts_a_process = re.compile(r"\bsubprocess\b|\bsys\.executable\b|^\s*!\s*python", re.M)
    offending = [
        index
        for index, cell in enumerate(_cells(path))
        if index != 1 and cell.cell_type == "code" and starts_a_process.search(cell.source)
    ]
    assert not offending, f"{path.name}: cells {offending} start a process"


# The notebooks whose training is shown, the training folder of each (the one notebook 07
# restores through course_models), and what makes its visible `fit` resumable.
SHOWN_TRAINING = {
    "03": ("DIFFUSION_FOLDER", "training.resumable_callbacks("),
    "04": ("VAE_FOLDER", "training.resumable_callbacks("),
    "06": ("WAVENET_FOLDER", "checkpoints.training_callbacks("),
}


@pytest.mark.parametrize("number", sorted(SHOWN_TRAINING))
def test_training_is_shown_with_a_resumable_fit_in_the_folder_notebook_07_restores(number):
    from course_lib import course_models

    path = next(path for path in NOTEBOOKS if path.name.startswith(number))
    code = [cell.source for cell in _cells(path) if cell.cell_type == "code"]
    folder_constant, resumable = SHOWN_TRAINING[number]
    fits = [source for source in code if ".fit(" in source and resumable in source]
    assert fits, f"{path.name}: no code cell calls .fit( with {resumable}...)"
    assert "training.log_energy(" in fits[0], f"{path.name}: the training's energy is logged"
    folder = f'config.checkpoint_dir("{getattr(course_models, folder_constant)}") / cfg.tag()'
    assert any(folder in source for source in code), f"{path.name}: trains in {folder}"


MODULE_MAP = "## The library behind this notebook"


def _imported_units(path) -> set[str]:
    """The library modules and packages a notebook's code imports, as repository paths
    (``course_lib/audio.py``, ``course_lib/wavenet/``, ``data_prep/prepare.py``)."""
    import ast

    units = set()
    for cell in _cells(path):
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            parts = node.module.split(".")
            if parts[0] not in ("course_lib", "data_prep"):
                continue
            names = [parts[1]] if len(parts) > 1 else [alias.name for alias in node.names]
            for name in names:
                unit = ROOT / parts[0] / name
                units.add(f"{parts[0]}/{name}/" if unit.is_dir() else f"{parts[0]}/{name}.py")
    return units


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_a_map_of_exactly_the_modules_it_imports(path):
    last = _cells(path)[-1]
    assert last.cell_type == "markdown" and last.source.startswith(MODULE_MAP)
    mapped = re.findall(r"^\| `([^`]+)` \|", last.source, re.MULTILINE)
    assert len(mapped) == len(set(mapped)), "a module listed twice"
    assert set(mapped) == _imported_units(path)
    for unit in mapped:
        assert (ROOT / unit).exists(), unit


def test_readme_layout_maps_every_notebook_to_its_modules_and_names_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    for path in NOTEBOOKS:
        row = re.search(rf"^\| {path.name[:2]} \| (.+) \|$", layout, re.MULTILINE)
        assert row, f"no layout row for {path.name}"
        assert set(re.findall(r"`([^`]+)`", row.group(1))) == _imported_units(path)
    tree = layout[: layout.index("```", layout.index("```") + 3)]
    library = ROOT / "course_lib"
    modules = sorted(
        entry.name + ("/" if entry.is_dir() else "")
        for entry in library.iterdir()
        if (entry.suffix == ".py" and entry.name != "__init__.py")
        or (entry.is_dir() and (entry / "__init__.py").is_file())
    )
    missing = [module for module in modules if module not in tree]
    assert not missing, f"README layout leaves out {missing}"
