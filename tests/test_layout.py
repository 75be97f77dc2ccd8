"""The shape of the house: the teaching library imports without the dev tools, never
calls a command line, and no module depends on itself through others."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("course_lib", "data_prep")
DEV_ONLY = ("nbclient", "nbconvert", "selenium")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The kit's modules that ``path`` imports anywhere, inside functions included
    (``from course_lib import audio`` counts as ``course_lib.audio``)."""
    found = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules and name != _module_name(path)}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                return [*stack[stack.index(other) :], other]
            if other not in state and (found := visit(other)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_the_kit_imports_itself_through_others():
    graph = _graph()
    # imports inside functions count: course_models imports the model packages there
    assert {"course_lib.diffusion", "course_lib.vq"} <= graph["course_lib.course_models"]
    # A submodule's own package is left out: Python runs the package's __init__ first
    # anyway, and the eager exports make that __init__ import its submodules by design.
    without_package_inits = {
        name: {other for other in imports if not name.startswith(other + ".")}
        for name, imports in graph.items()
    }
    assert _cycle(without_package_inits) is None, " -> ".join(_cycle(without_package_inits))


def test_no_library_module_imports_a_command_line():
    graph = _graph()
    callers = {
        name: sorted(other for other in imports if other.endswith("__main__"))
        for name, imports in graph.items()
        if name.startswith("course_lib") and not name.endswith("__main__")
    }
    assert not {name: found for name, found in callers.items() if found}


def test_the_library_imports_without_the_dev_only_packages():
    blocker = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEV_ONLY!r}:
            raise ImportError(f"{{name}} is not installed here")
sys.meta_path.insert(0, Block())
import course_lib, course_lib.diffusion, course_lib.wavenet, course_lib.vq, course_lib.vae
import course_lib.inpainting, course_lib.judge, course_lib.comparison, course_lib.training
print(sorted(name for name in sys.modules if name.split(".")[0] in {DEV_ONLY!r}))
"""
    run = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"
