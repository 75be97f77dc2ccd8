"""Imports the stack and every module of the kit, then prints the stack's versions.

Run by ``.ci/setup`` with Python allowed to write bytecode (``PYTHONDONTWRITEBYTECODE``
unset): each module imported here is compiled once, into its ``__pycache__`` folder,
where every later process reads it, even with ``PYTHONDONTWRITEBYTECODE`` set (the
variable stops writing, not reading). Compiling every installed module instead (the
installers' option) took about 75 CPU-s per stack in CI's runs, against 26 CPU-s here on
Colab's stack (37 CPU-s on a fresh environment, 11 once compiled): this imports 4,703 of
the 14,686 modules installed. A
module that fails to import fails the setup here, with its traceback.

Usage: ``python .ci/import-kit.py STACK`` (STACK names the stack in the printed line).
"""

import importlib
import pkgutil
import sys
from pathlib import Path

# course_tools is not installed: it is imported from the repository, as pytest does.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The stack (its first four name it in the printed line), what the kit imports only where
# it is used, and the tools that run the tests and the notebooks.
STACK_MODULES = (
    "tensorflow",
    "keras",
    "librosa",
    "ipywidgets",
    "matplotlib.pyplot",
    "codecarbon",
    "espeakng_loader",
    "sklearn.datasets",
    "soundfile",
    "soxr",
    "tqdm.auto",
    "IPython",
    "ipykernel.kernelapp",
    "jupyter_client",
    "nbclient",
    "nbconvert",
    "nbmake.nb_run",
    "pytest",
    "selenium.webdriver",
)
KIT_PACKAGES = ("course_lib", "data_prep", "course_tools")

for name in STACK_MODULES:
    importlib.import_module(name)
for package_name in KIT_PACKAGES:
    package = importlib.import_module(package_name)
    for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
        if not module.name.endswith(".__main__"):  # a command line: runs when imported
            importlib.import_module(module.name)

versions = {name: sys.modules[name].__version__ for name in STACK_MODULES[:4]}
print(
    f"{sys.argv[1]} stack: Python {sys.version.split()[0]}, TensorFlow {versions['tensorflow']}, "
    f"Keras {versions['keras']}, librosa {versions['librosa']}, "
    f"ipywidgets {versions['ipywidgets']}"
)
