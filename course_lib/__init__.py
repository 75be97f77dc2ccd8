"""course_lib: the shared library of the Generative Audio Course Kit.

Modules, one concept each (import them, never ``*``):
``config`` (mode, folders, seeds, strategy), ``audio`` (I/O, mu-law, playback),
``data`` (the TFRecord format and tf.data pipelines), ``plotting``, ``training``
(callbacks), and one module per model family.

Importing the package sets two TensorFlow settings (each unless already set), which
TensorFlow reads when it is first imported or first initialises a GPU; notebooks import
``course_lib`` before anything imports TensorFlow:

- ``TF_FORCE_GPU_ALLOW_GROWTH=true``: TensorFlow takes GPU memory as it needs it instead
  of all of it up front, so a second model or process still fits;
- ``TF_CPP_MIN_LOG_LEVEL=3``: TensorFlow's C++ log lines (``I0000 ...``, and on a machine
  without a GPU ``E0000 ... cuInit``) stay out of the notebooks' output. Errors still
  reach the student as Python exceptions; set it to ``0`` first to see every line.

It imports no TensorFlow itself, so ``import course_lib`` stays light.
"""

import os

os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
