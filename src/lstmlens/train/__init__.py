"""Training: the engine, checkpoints and the progress reporter.

>>> from lstmlens.train import TrainConfig, Trainer
>>> result = Trainer(model, task, TrainConfig(epochs=10), run_dir="runs/x").fit()
"""

from .checkpoint import load_model, save_json_atomic, save_model
from .config import TrainConfig, TrainResult, seed_everything
from .reporter import NullReporter, Reporter
from .trainer import Trainer

__all__ = [
    "NullReporter",
    "Reporter",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "load_model",
    "save_json_atomic",
    "save_model",
    "seed_everything",
]
