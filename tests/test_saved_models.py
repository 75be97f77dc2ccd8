"""Saved models open right after ``import course_lib.<package>``, with no other import.

For each model package one fresh Python saves a tiny model and what it computes; another
fresh Python imports only ``course_lib.<package>``, loads the model with
``keras.saving.load_model`` (the inpainting effect with ``load_effect``) and computes the
same. And each package exposes every name of its ``__all__``, imported eagerly.
"""

import importlib
import subprocess
import sys
import types

import numpy as np
import pytest

MODEL_PACKAGES = ("diffusion", "vae", "vq", "wavenet")
PACKAGES = (*MODEL_PACKAGES, "inpainting")

# Per package: code that builds a tiny model as ``model`` (run in the saving process only),
# and an expression of ``model`` run in both processes.
BUILD = {
    "diffusion": (
        "from course_lib.diffusion import DiffusionConfig, build_diffusion_model\n"
        "cfg = DiffusionConfig.quick().replace(residual_channels=4, residual_layers=2,"
        " dilation_cycle=2, label_dim=4)\n"
        "model = build_diffusion_model(cfg, num_classes=2, clip_samples=64)\n"
    ),
    "vae": (
        "from course_lib.vae import VAEConfig, build_vae\n"
        "cfg = VAEConfig.quick().replace(widths=(4, 4), latent_dim=2)\n"
        "model = build_vae(cfg.sample_rate, cfg)\n"
    ),
    "vq": (
        "from course_lib.vq import VQVAE\n"
        "model = VQVAE((16, 16), widths=(4, 4), code_dim=4, codebook_size=8)\n"
    ),
    "wavenet": (
        "from course_lib.wavenet import WaveNet\n"
        "model = WaveNet((1, 2), residual_channels=4, dilation_channels=4, skip_channels=4)\n"
    ),
}
PROBE = {
    "diffusion": "model.generate(2, steps=2, label=[0, 1], seed=0, progress=False)",
    "vae": "model.encode(rng.uniform(-0.3, 0.3, (2, model.clip_samples)))[0]",
    "vq": "model.encode_codes(rng.uniform(0, 1, (2, 16, 16)))",
    "wavenet": "model(rng.integers(0, 256, (2, 30)))",
    "inpainting": (  # the effect's codes and its Naive Bayes predictions of them
        "[codes := model.vq_model.encode_codes(rng.uniform(0, 1, (2, 16, 16))),"
        " model.naive_bayes.predict(codes)]"
    ),
}
SAVE_EFFECT = (
    "from course_lib.inpainting import CodeNaiveBayes, save_effect\n"
    "from course_lib.vq import VQVAE, VQConfig\n"
    "vq_vae = VQVAE((16, 16), widths=(4, 4), code_dim=4, codebook_size=8)\n"
    "bayes = CodeNaiveBayes(8).fit(vq_vae.encode_codes(rng.uniform(0, 1, (3, 16, 16))))\n"
    "save_effect(folder / 'inpainting', vq_vae, bayes, VQConfig.quick().spec)\n"
    "from course_lib.inpainting import load_effect\n"
    "model = load_effect(folder / 'inpainting')\n"  # the probe runs on the loaded effect
)


def _python(code: str, *arguments) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _probe(package: str) -> str:
    return f"rng = np.random.default_rng(0)\nnp.save(out, np.asarray({PROBE[package]}))\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One fresh Python saves a tiny model of every package and its probe's output."""
    folder = tmp_path_factory.mktemp("saved")
    code = "import sys\nfrom pathlib import Path\nimport numpy as np\nfolder = Path(sys.argv[1])\n"
    for package in MODEL_PACKAGES:
        code += "rng = np.random.default_rng(0)\n" + BUILD[package]
        code += f"model.save(folder / '{package}.keras')\n"
        code += f"out = folder / '{package}.npy'\n" + _probe(package)
    code += "rng = np.random.default_rng(0)\n" + SAVE_EFFECT
    code += "out = folder / 'inpainting.npy'\n" + _probe("inpainting")
    done = _python(code, folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.parametrize(
    "package",
    # The same loading path for one more package is marked slow (the newest releases'
    # leg of CI runs the diffusion model's, the richest config).
    [p if p == "diffusion" else pytest.param(p, marks=pytest.mark.slow) for p in PACKAGES],
)
def test_a_saved_model_loads_after_importing_its_package_alone(package, saved):
    if package == "inpainting":
        load = "model = course_lib.inpainting.load_effect(folder / 'inpainting')\n"
        kind = "type(model.vq_model)"
    else:
        load = f"model = keras.saving.load_model(folder / '{package}.keras')\n"
        kind = "type(model)"
    code = (
        f"import sys\nfrom pathlib import Path\nimport course_lib.{package}\n"
        "import keras\nimport numpy as np\nfolder = Path(sys.argv[1])\n"
        f"{load}out = folder / '{package}.reloaded.npy'\n{_probe(package)}"
        f"print({kind}.__module__)\n"
    )
    done = _python(code, saved)
    assert done.returncode == 0, done.stderr
    expected_module = "course_lib.vq" if package == "inpainting" else f"course_lib.{package}"
    assert done.stdout.strip().startswith(expected_module + "."), done.stdout
    reloaded = np.load(saved / f"{package}.reloaded.npy")
    np.testing.assert_allclose(reloaded, np.load(saved / f"{package}.npy"), atol=1e-5)


def test_without_its_package_a_saved_model_does_not_load(saved):
    """The control: the test above would pass for nothing if Keras knew the classes anyway."""
    code = "import sys, keras; keras.saving.load_model(sys.argv[1])"
    done = _python(code, saved / "vq.keras")
    assert done.returncode != 0
    assert "VQVAE" in done.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_exposes_every_name_of_its_all(package):
    module = importlib.import_module(f"course_lib.{package}")
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        value = getattr(module, name)  # imported eagerly: no AttributeError, no hook
        assert not isinstance(value, types.ModuleType), name
        if hasattr(value, "__module__") and callable(value):
            assert value.__module__.startswith(f"course_lib.{package}."), (name, value)
    assert not hasattr(module, "__getattr__")  # no lazy names


def test_importing_a_submodule_registers_nothing_the_package_did_not():
    """Every Keras class of a package is registered by importing the package itself."""
    code = (
        "import importlib, pkgutil, keras\n"
        f"packages = [importlib.import_module('course_lib.' + name) for name in {PACKAGES!r}]\n"
        "before = set(keras.saving.get_custom_objects())\n"
        "for package in packages:\n"
        "    for info in pkgutil.iter_modules(package.__path__):\n"
        "        if info.name != '__main__':\n"
        "            importlib.import_module(package.__name__ + '.' + info.name)\n"
        "print(sorted(set(keras.saving.get_custom_objects()) - before))\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
