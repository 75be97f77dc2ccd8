"""Package names that import their module on first use (PEP 562 ``__getattr__``).

A package lists ``name -> submodule`` and gets the three module attributes back:

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"WaveNet": "model", ...})

so ``from course_lib.wavenet import WaveNetConfig`` loads only ``settings`` (no
TensorFlow), and a command line can check its arguments before Keras is imported.

Used in: ``course_lib.diffusion``, ``course_lib.vq`` and ``course_lib.wavenet``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, module_of: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        module_of: each exported name -> the submodule (relative to ``package``) that
            defines it.
    """
    exported = sorted(module_of)

    def __getattr__(name: str) -> object:  # noqa: N807 (the module attribute hook)
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{module_of[name]}")
        return getattr(module, name)

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*vars(sys.modules[package]), *exported})

    return __getattr__, __dir__, exported
