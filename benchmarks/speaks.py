"""Does a generator learn to say the word it is asked for, within a wall-clock budget?

Trains a conditioned generator of the laptop preset (``COURSE_MODE=laptop``) for
``--minutes`` of wall-clock time on the spoken-digit fixture (offline, CPU;
``course_lib.training.StopAfter``), asks it for ``--clips``
clips spread evenly over ``--words``, and prints one table row per model, measured in
this run: the judge's accuracy on the requested word (next to chance, 1 in 10, and next
to real test clips of those words at the model's rate), how often the requested word is
the likeliest of the words trained (chance: one over their number), FID and IS against
real clips of those words at the same rate, training seconds and steps. Each
percentage comes with its standard error over the clips scored (about ±5 points at
30% of 100 clips).

Models: ``diffusion`` (notebook 03's DiffusionConfig) and ``wavenet`` (notebook 06's
WaveNetConfig), conditioned on the word; ``vae`` (notebook 04's VAEConfig) and
``vq_vae`` (notebook 05's VQConfig with its Naive Bayes prior, as notebook 07 trains it
on the digits), autoencoders trained on all ten words, whose rows give the judge's
accuracy on their reconstructions of the real test clips of ``--words`` (the word must
survive the round trip) and the FID and IS of their prior samples (the VAE's drawn from
the Gaussian mixture fitted to its training clips' codes, as notebooks 04 and 07 draw
them). Each starts from its laptop preset (``DiffusionConfig.laptop()``, ...; its own
``training_minutes`` give way to ``--minutes``) with ``--set field=value`` changes
(passed to every model named), so architectures can be compared at the same budget:

    python benchmarks/speaks.py --minutes 4 --model diffusion --words zero,six
    python benchmarks/speaks.py --minutes 4 --model diffusion --words zero,six \\
        --set denoiser=diffwave --set label_frames=0

The data and the judge live in ``COURSE_DATA_DIR`` (default ``~/course_data``) under
``quick/`` (the laptop preset shares quick mode's fixture and judge); the first run
converts the fixture and trains the quick judge (about two minutes, not counted in the
budget).

Usage: python benchmarks/speaks.py [--minutes 20] [--model diffusion|wavenet|vae|vq_vae]
    [--words zero,one,...] [--clips 100] [--set field=value ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

os.environ.setdefault("COURSE_MODE", "laptop")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from course_lib import comparison, config, data, metrics, training
from course_lib.judge import JudgeConfig, load_or_train_judge
from data_prep import prepare

MODELS = ("diffusion", "wavenet", "vae", "vq_vae")


@dataclasses.dataclass
class Trained:
    """A generator trained within the budget.

    ``generate(asked) -> clips [n, samples]``: clips asked for the words ``asked [n]``
    (a conditioned model), or ``n`` prior samples (an autoencoder, ``conditioned`` False).
    ``reconstruct(clips [k, samples]) -> [k, samples]``: an autoencoder's round trip.
    """

    generate: object
    sample_rate: int
    seconds: float
    steps: int
    conditioned: bool = True
    reconstruct: object = None


def with_changes(cfg, changes: list[str]):
    """``cfg`` with ``field=value`` changes (values read as JSON, else as text)."""
    values = {}
    for change in changes:
        field, _, text = change.partition("=")
        if field not in {f.name for f in dataclasses.fields(cfg)}:
            raise SystemExit(f"--set {change}: {type(cfg).__name__} has no field {field!r}.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        values[field] = tuple(value) if isinstance(value, list) else value
    return cfg.replace(**values)


def with_error(accuracy: metrics.Score) -> str:
    """An accuracy over ``accuracy.samples`` clips as a percentage with its standard
    error, ``sqrt(p (1 - p) / n)``: e.g. ``"38% ± 5"`` for 38 of 100."""
    p = accuracy.value
    return f"{p:.0%} ± {100 * np.sqrt(p * (1 - p) / accuracy.samples):.0f}"


def word_subset(folder, words: list[int], split: str) -> tuple[np.ndarray, np.ndarray]:
    """The clips ``[n, samples]`` and labels ``[n]`` of ``split`` that say one of ``words``."""
    clips, labels = data.read_arrays(folder, split)
    keep = np.isin(labels, words)
    return clips[keep], labels[keep]


def train_diffusion(words: list[int], seconds: float, changes: list[str]) -> Trained:
    import tensorflow as tf

    from course_lib import diffusion

    cfg = with_changes(diffusion.DiffusionConfig.laptop(), changes)
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, cfg.words)
    clips, labels = word_subset(folder, words, "train")
    config.set_seed(0)
    model = diffusion.build_diffusion_model(
        cfg, num_classes=len(data.read_manifest(folder).labels), clip_samples=clips.shape[1]
    )
    batches = (
        tf.data.Dataset.from_tensor_slices((clips[..., None], labels))
        .shuffle(len(clips), seed=0)
        .repeat()
        .batch(cfg.batch_size, drop_remainder=True)
    )
    budget = training.StopAfter(seconds)
    stop = training.StopOnNaN(raise_error=True)
    model.fit(batches, epochs=10**6, steps_per_epoch=50, callbacks=[budget, stop], verbose=0)

    def generate(asked):
        made = model.generate(
            len(asked),
            steps=cfg.ddim_steps,
            sampler=cfg.sampler,
            label=asked,
            guidance=cfg.guidance,
            eta=cfg.eta,
            progress=False,
        )
        return made[..., 0]

    print(f"diffusion: {cfg}, receptive field {cfg.receptive_field} samples")
    return Trained(generate, cfg.sample_rate, budget.elapsed, budget.steps)


def train_wavenet(words: list[int], seconds: float, changes: list[str]) -> Trained:
    import tempfile

    from course_lib.wavenet import WaveNetConfig, generation, logdir

    cfg = with_changes(WaveNetConfig.laptop(), changes)
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    manifest = data.read_manifest(folder)
    # Notebook 06's crops (its words moved to start at cfg.word_onset_seconds), from the
    # clips of the words asked for.
    batches = logdir.training_batches(folder, cfg, with_labels=True, seed=0).unbatch()
    batches = batches.filter(lambda inputs, targets: _says_one_of(inputs[1], words))
    batches = batches.batch(cfg.batch_size, drop_remainder=True)
    with tempfile.TemporaryDirectory() as run_folder:
        wavenet = logdir.restore_or_build(
            cfg, manifest.labels, run_folder, clip_samples=manifest.clip_samples
        )
    budget = training.StopAfter(seconds)
    wavenet.fit(batches, epochs=10**6, steps_per_epoch=50, callbacks=[budget], verbose=0)

    def generate(asked):
        made = generation.generate(
            wavenet,
            manifest.clip_samples,
            num_clips=len(asked),
            labels=asked,
            temperature=cfg.temperature,
            guidance=cfg.guidance,
            progress=False,
        )
        return made.audio

    print(f"wavenet: {cfg}, receptive field {cfg.receptive_field} samples")
    return Trained(generate, cfg.sample_rate, budget.elapsed, budget.steps)


def _says_one_of(label, words: list[int]):
    """True for a crop of one of ``words`` (a tf.data filter)."""
    import tensorflow as tf

    return tf.reduce_any(tf.equal(tf.cast(label, tf.int32), words))


def train_vae(words: list[int], seconds: float, changes: list[str]) -> Trained:
    import tempfile

    from course_lib import course_models
    from course_lib.vae import VAEConfig

    cfg = with_changes(VAEConfig.laptop(), changes).replace(epochs=10**5, training_minutes=0.0)
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    budget = training.StopAfter(seconds)
    with tempfile.TemporaryDirectory() as checkpoints:
        trained = course_models.vae(folder, cfg, checkpoints, callbacks=[budget], verbose=0)
    model = trained.model
    print(f"vae: {cfg}")
    return Trained(
        lambda asked: course_models.sample_vae_sounds(trained, len(asked), seed=1),
        cfg.sample_rate,
        budget.elapsed,
        budget.steps,
        conditioned=False,
        reconstruct=lambda clips: model.reconstruct(clips, cfg.griffin_lim_iterations),
    )


def train_vq_vae(words: list[int], seconds: float, changes: list[str]) -> Trained:
    import tempfile

    from course_lib import course_models
    from course_lib.vq import VQConfig

    # On the digits, as notebook 07 trains it: one-second speech clips, not NSynth notes.
    digits = VQConfig.laptop().replace(dataset="speech", clip_seconds=1.0)
    cfg = with_changes(digits, changes).replace(epochs=10**5, training_minutes=0.0)
    folder = prepare.speech_commands_tfrecords(cfg.sample_rate, "sc09")
    budget = training.StopAfter(seconds)
    with tempfile.TemporaryDirectory() as checkpoints:
        trained = course_models.vq_vae_with_prior(
            folder, cfg, checkpoints, callbacks=[budget], verbose=0
        )
    print(f"vq_vae: {cfg}")
    return Trained(
        lambda asked: course_models.sample_vq_sounds(trained, len(asked), seed=1),
        cfg.sample_rate,
        budget.elapsed,
        budget.steps,
        conditioned=False,
        reconstruct=lambda clips: course_models.reconstruct_vq_sounds(trained, clips),
    )


TRAINERS = {
    "diffusion": train_diffusion,
    "wavenet": train_wavenet,
    "vae": train_vae,
    "vq_vae": train_vq_vae,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per model")
    parser.add_argument("--model", choices=MODELS, action="append", help="default: all")
    parser.add_argument("--words", default="", help="comma-separated (default: all ten digits)")
    parser.add_argument("--clips", type=int, default=100, help="clips scored per model")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="F=V")
    args = parser.parse_args()
    if args.minutes <= 0 or args.clips < 2:
        parser.error("--minutes must be > 0 and --clips at least 2.")

    judge_folder = prepare.speech_commands_tfrecords(16000, "sc09")
    judge = load_or_train_judge(
        judge_folder, JudgeConfig.quick(), config.checkpoint_dir("judge"), verbose=0
    )
    names = list(judge.labels)
    wanted = [word for word in args.words.split(",") if word] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        parser.error(f"unknown words {unknown}; the fixture has {names}.")
    words = [names.index(word) for word in wanted]
    asked = np.array([words[index % len(words)] for index in range(args.clips)])

    header = (
        "| model | requested word (chance 10%) | real clips, same rate | "
        f"between the {len(words)} words (chance {1 / len(words):.0%}) | reconstructions | "
        "FID | IS | training s | steps |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rows = []
    for name in args.model or MODELS:
        trained = TRAINERS[name](words, args.minutes * 60, args.changes)
        folder = prepare.speech_commands_tfrecords(trained.sample_rate, "sc09")
        real_clips, real_labels = word_subset(folder, words, "test")
        train_clips, _ = word_subset(folder, words, "train")
        reference = comparison.reference_from_clips(
            judge, train_clips, real_clips, real_labels, trained.sample_rate
        )
        started = time.perf_counter()
        clips = trained.generate(asked)
        if trained.conditioned:
            row = comparison.score(name, clips, trained.sample_rate, judge, reference, asked)
            requested, among = with_error(row.scores[comparison.WORD_ACCURACY]), "-"
            if len(words) > 1:
                heard = comparison.heard_among(judge, clips, trained.sample_rate, words)
                among = with_error(comparison.word_accuracy(heard, asked))
        else:  # prior samples: no word was asked for
            row = comparison.score(name, clips, trained.sample_rate, judge, reference)
            requested = among = "-"
        rebuilt = "-"
        if trained.reconstruct is not None:
            survived = comparison.reconstruction_accuracy(judge, trained.reconstruct, reference)
            rebuilt = with_error(survived)
        seconds = time.perf_counter() - started
        print(f"{name}: generated and scored {len(clips)} clips in {seconds:.0f} s")
        rows.append(
            f"| {name} | {requested} | {reference.row.word_accuracy:.0%} | {among} | "
            f"{rebuilt} | {row.scores['FID'].value:.1f} | {row.scores['IS'].value:.2f} | "
            f"{trained.seconds:.0f} | {trained.steps} |"
        )
    print(f"\nwords: {', '.join(wanted)}; budget {args.minutes:g} minutes per model")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
