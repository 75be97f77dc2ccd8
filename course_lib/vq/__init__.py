"""A VQ-VAE (van den Oord et al. 2017) with Jukebox's codebook fixes (Dhariwal et al. 2020).

- ``quantizer``: :class:`VectorQuantizer` (nearest codeword, straight-through gradient,
  codebook and commitment losses, EMA codebook, restarts, data initialisation),
  :func:`perplexity`, :func:`kmeans_plus_plus`;
- ``model``: :class:`VQVAE` (conv encoder, quantizer, conv decoder on images in [0, 1]:
  digits or spectrograms), :func:`build_vq_vae`, :func:`spectrogram_dataset` (a split
  streamed as batches of images), :func:`spectrogram_images`;
- ``settings``: :class:`VQConfig` with its full and quick presets.

Exports: imported here eagerly and listed in ``__all__``, so Keras knows them on import.

Used in: 05_vq_vae_inpainting.ipynb.
"""

from course_lib.vq.model import VQVAE, build_vq_vae, spectrogram_dataset, spectrogram_images
from course_lib.vq.quantizer import VectorQuantizer, kmeans_plus_plus, perplexity
from course_lib.vq.settings import VQConfig

__all__ = [
    "VQVAE",
    "VQConfig",
    "VectorQuantizer",
    "build_vq_vae",
    "kmeans_plus_plus",
    "perplexity",
    "spectrogram_dataset",
    "spectrogram_images",
]
