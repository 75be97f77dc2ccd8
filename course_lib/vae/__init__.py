"""A variational autoencoder (Kingma & Welling, 2014) on spectrogram images of audio.

- ``layers``: :class:`Sampling` (the reparameterisation trick) and :func:`kl_divergence`;
- ``model``: :class:`SpectrogramVAE` (encoder, decoder, ELBO loss with KL warm-up,
  generation, reconstruction and interpolation as audio), :func:`kl_weight`;
- ``settings``: :class:`VAEConfig` with its full and quick presets.

Used in: 04_vae_fid.ipynb.
"""

from course_lib.vae.layers import Sampling, kl_divergence
from course_lib.vae.model import SpectrogramVAE, build_vae, kl_weight
from course_lib.vae.settings import VAEConfig

__all__ = ["Sampling", "SpectrogramVAE", "VAEConfig", "build_vae", "kl_divergence", "kl_weight"]
