"""course_lib: the shared library of the Generative Audio Course Kit.

Modules, one concept each (import them, never ``*``):
``config`` (mode, folders, seeds, strategy), ``audio`` (I/O, mu-law, playback),
``data`` (the TFRecord format and tf.data pipelines), ``plotting``, ``training``
(callbacks), and one module per model family.
"""

__version__ = "0.1.0"
