"""A variational autoencoder (Kingma & Welling, 2014) on spectrogram images of audio.

- ``layers``: :class:`Sampling` (the reparameterisation trick) and :func:`kl_divergence`;
- ``model``: :class:`AudioVAE` (the ELBO loss with KL warm-up, generation, reconstruction
  and interpolation as audio), :class:`SpectrogramVAE` (the one the notebook trains),
  :class:`WaveformVAE` (raw samples, for comparison), :func:`build_vae`, :func:`kl_weight`;
- ``latent_prior``: :class:`LatentMixturePrior`, a Gaussian mixture fitted to a trained
  VAE's codes of its training clips (ex-post density estimation), to draw new clips from;
- ``settings``: :class:`VAEConfig` with its full, quick and laptop presets.

Exports: imported here eagerly and listed in ``__all__``, so Keras knows them on import.

Used in: 04_vae_fid.ipynb.
"""

from course_lib.vae.latent_prior import LatentMixturePrior, fit_to_training_clips
from course_lib.vae.layers import Sampling, kl_divergence
from course_lib.vae.model import AudioVAE, SpectrogramVAE, WaveformVAE, build_vae, kl_weight
from course_lib.vae.settings import VAEConfig

__all__ = [
    "AudioVAE",
    "LatentMixturePrior",
    "Sampling",
    "SpectrogramVAE",
    "VAEConfig",
    "WaveformVAE",
    "build_vae",
    "fit_to_training_clips",
    "kl_divergence",
    "kl_weight",
]
