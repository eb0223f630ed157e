"""labkit.train: the training loop and its parts, one file per idea.

Read in this order: config.py (TrainConfig), schedule.py (warmup + cosine),
optim.py (AdamW groups), run.py (device and checks, once per run), loop.py
(``train``), checkpoint.py (save / resume) with state.py (optimizer and RNG
state), runlog.py (run.json, metrics.jsonl), files.py (atomic writes, reads
that name the file), runfolder.py (the folder ``labkit train`` makes, with
the run's tokenizer and tokens), ddp.py (torchrun), plots.py (live and
compared loss curves; the only file that imports plotly).
"""

from labkit.train.config import TrainConfig
from labkit.train.files import FileFormatError
from labkit.train.loop import TrainResult, evaluate, train
from labkit.train.optim import make_optimizer, param_groups
from labkit.train.run import pick_device
from labkit.train.runlog import read_run
from labkit.train.schedule import lr_at, schedule

__all__ = [
    "FileFormatError",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "lr_at",
    "make_optimizer",
    "param_groups",
    "pick_device",
    "read_run",
    "schedule",
    "train",
]
