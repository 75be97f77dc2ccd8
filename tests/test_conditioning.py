"""Conditioning works: a diffusion model of the laptop preset, trained briefly with a
fixed seed on two well-separated words of the spoken-digit fixture, makes clips that the
quick judge tells apart well above chance (issue 14's learning test, L7).

Its U-Net reads patches of 4 samples (``unet_patch``), which halves a step's time on a
CPU (the laptop preset itself keeps every sample: on all ten words, 20 minutes of the
patched U-Net reached 18% on the word asked for, against 35% unpatched). It trains for
600 steps on one thread and samples with the laptop preset's DDPM and guidance 6, on
100 of its 200 steps (the respaced schedule). Measured on a slow machine (AVX2, no
AVX-512), 120 clips told apart by a quick judge: 79%, 75% and 82% ("zero" 63%, 60% and
68%; "six" 90 to 97%) with model seeds 0, 1 and 2. 1,000 steps did a little better (79%,
80% and 86%), for two thirds more training time; 1,500 steps and 200 sampling steps no
better (78% with seed 0, and 73 to 85% over seeds, thread counts and 2,000 steps); DDIM's
50 steps did worse (61 to 64%, "zero" 25 to 32%). So the test asks for 65% in all and
40% for each word: chance is 50%, and a
model of noise passes 65% of 120 clips less than once in a thousand runs; one that says a
single word (or makes noise the judge hears as "six") for every clip fails the second
floor.

The training and sampling (about 150 s on one core) run in the background of the test
session, like the rehearsals: ``python tests/test_conditioning.py --all FOLDER``, started
by the root ``conftest.py`` once this test is collected
(``course_tools.background_jobs.CONDITIONING``), with a data folder of its own (its
fixture clips converted there, so it never writes where the session's tests write). It
saves the clips it made and a record; the test, run near the end of the session, reads
them and asks the session's quick judge, trained by then, which word each clip says.
Run alone: ``python -m pytest -s tests/test_conditioning.py`` (it then waits for the job).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from course_tools import background_jobs

WORDS = ("zero", "six")  # a voiced word and one of fricatives: well apart
STEPS = 600  # about 90 s on one thread of a slow machine, tracing included
SAMPLING_STEPS = 100  # DDPM on the respaced schedule: half the laptop preset's 200
PATCHED = dict(unet_patch=4, unet_channels=(16, 32, 32, 64, 64), unet_strides=(4, 4, 4, 4))
CLIPS_PER_WORD = 60
CLIPS_FILE = "clips.npy"


def train_and_sample(folder: Path) -> dict:
    """The background job: train the patched laptop model on the two words for ``STEPS``
    steps (fixed seed), sample ``CLIPS_PER_WORD`` clips of each as the laptop preset
    samples, save them to ``folder / CLIPS_FILE`` (``[120, samples]``) and return the
    record: the dataset's labels and rate, the words asked for, the first and last loss."""
    os.environ["COURSE_DATA_DIR"] = str(folder / "data")  # fixtures of its own
    os.environ.setdefault("COURSE_MODE", "quick")
    import tensorflow as tf

    # One thread: the run is the same on every machine of a kind (two threads round the
    # sums differently, and the model changes with them), and it shares the cores better.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from course_lib import config, data
    from course_lib.diffusion import DiffusionConfig, build_diffusion_model
    from data_prep import prepare

    started = time.perf_counter()
    cfg = DiffusionConfig.laptop().replace(**PATCHED)
    dataset = prepare.speech_commands_tfrecords(cfg.sample_rate, cfg.words)
    labels = data.read_manifest(dataset).labels
    words = [labels.index(word) for word in WORDS]
    clips, clip_labels = data.read_arrays(dataset, "train")
    keep = np.isin(clip_labels, words)
    batches = (
        tf.data.Dataset.from_tensor_slices((clips[keep][..., None], clip_labels[keep]))
        .shuffle(int(keep.sum()), seed=0)
        .repeat()
        .batch(cfg.batch_size, drop_remainder=True)
    )
    config.set_seed(0)
    model = build_diffusion_model(cfg, num_classes=len(labels), clip_samples=clips.shape[1])
    history = model.fit(batches, epochs=STEPS // 100, steps_per_epoch=100, verbose=0)
    asked = np.tile(words, CLIPS_PER_WORD)  # [120]: zero, six, zero, six, ...
    made = model.generate(
        len(asked),
        steps=SAMPLING_STEPS,
        sampler=cfg.sampler,
        label=asked,
        guidance=cfg.guidance,
        seed=1,
        progress=False,
    )[..., 0]
    np.save(folder / CLIPS_FILE, made)
    return {
        "labels": list(labels),
        "sample_rate": cfg.sample_rate,
        "asked": asked.tolist(),
        "losses": [float(history.history["loss"][0]), float(history.history["loss"][-1])],
        "seconds": time.perf_counter() - started,
    }


@pytest.fixture(scope="session")
def conditioning_run(request) -> pytest.Config:
    """The session's config, once :func:`train_and_sample` runs in the background."""
    background_jobs.session_job(request.config, background_jobs.CONDITIONING)
    return request.config


@pytest.mark.slow
def test_a_diffusion_model_says_the_word_it_is_asked_for(conditioning_run, quick_judge):
    from course_lib import comparison

    record = background_jobs.wait_for_result(conditioning_run, background_jobs.CONDITIONING)
    first_loss, last_loss = record["losses"]
    assert last_loss < first_loss
    judge = quick_judge
    assert judge.labels == record["labels"]
    words = [judge.labels.index(word) for word in WORDS]
    asked = np.asarray(record["asked"])
    made = np.load(background_jobs.CONDITIONING.results_folder() / CLIPS_FILE)
    assert made.shape[0] == len(asked) and np.isfinite(made).all()
    heard = comparison.heard_among(judge, made, record["sample_rate"], words)
    per_word = {name: np.mean(heard[asked == w] == w) for name, w in zip(WORDS, words, strict=True)}
    print(
        f"two words told apart: {np.mean(heard == asked):.0%}, per word {per_word} "
        f"(trained and sampled in {record['seconds']:.0f} s)"
    )
    # Chance is 50%. Each word must be heard often too: a model that makes one word for
    # every clip (or noise the judge hears as "six") fails, whatever its total.
    assert np.mean(heard == asked) >= 0.65 and min(per_word.values()) >= 0.4, per_word


if __name__ == "__main__":  # python tests/test_conditioning.py --all FOLDER: the background job
    background_jobs.run_one_record_job(train_and_sample)
