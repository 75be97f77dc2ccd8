"""The files of a WaveNet log directory, named once for the modules that read and write them.

- ``wavenet_config.json``: settings, sample rate and label names
  (:mod:`course_lib.wavenet.logdir`);
- ``model.keras``: the last checkpoint with its optimizer state
  (:mod:`course_lib.wavenet.checkpoints`);
- ``losses.jsonl``: one ``{"step", "loss"}`` line per checkpoint, kept across resumes.
"""

CONFIG_NAME = "wavenet_config.json"
CHECKPOINT_NAME = "model.keras"
LOSS_LOG_NAME = "losses.jsonl"
