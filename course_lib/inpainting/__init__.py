"""Inpainting VQ-VAE code maps with Naive Bayes: a "blur" effect on audio.

- ``algorithm``: :class:`CodeNaiveBayes` (``p(code | neighbouring codes)`` by Naive Bayes,
  Gibbs resampling of a box of a code map), :func:`most_frequent_code_accuracy` (the
  baseline), :func:`neighbour_offsets`, :func:`region_slices`; plain numpy;
- ``effect``: :func:`inpaint_audio` (a clip through the VQ-VAE, a box resampled, back to
  audio), :func:`code_region`, :class:`InpaintingResult`; the effect on disk
  (:func:`save_effect`, :func:`load_effect`, :func:`read_effect_settings`, :class:`Effect`)
  and :func:`inpaint_file` (a sound file in, a WAV file out);
- ``panel``: :class:`InpaintingPanel`, sliders and a button around :func:`inpaint_audio`;
- ``python -m course_lib.inpainting --input in.wav --output out.wav --time A:B --freq C:D``:
  the command line, which calls :func:`inpaint_file`.

Exports: imported here eagerly and listed in ``__all__``, as in every model package.
(These modules import TensorFlow only inside their functions, so the command line rejects
a bad argument before TensorFlow starts.)

Used in: 05_vq_vae_inpainting.ipynb.
"""

from course_lib.inpainting.algorithm import (
    CodeNaiveBayes,
    most_frequent_code_accuracy,
    neighbour_offsets,
    region_slices,
)
from course_lib.inpainting.effect import (
    Effect,
    InpaintingResult,
    code_region,
    inpaint_audio,
    inpaint_file,
    load_effect,
    read_effect_settings,
    save_effect,
)
from course_lib.inpainting.panel import InpaintingPanel

__all__ = [
    "CodeNaiveBayes",
    "Effect",
    "InpaintingPanel",
    "InpaintingResult",
    "code_region",
    "inpaint_audio",
    "inpaint_file",
    "load_effect",
    "most_frequent_code_accuracy",
    "neighbour_offsets",
    "read_effect_settings",
    "region_slices",
    "save_effect",
]
