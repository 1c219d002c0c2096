"""grokinterp: train grokking runs and watch the Fourier circuit form.

Main entry points:

- ``train(config, out)`` / ``resume(run_dir)``: full-batch training with checkpoints.
- ``load_run(path)``: open a run directory (``.config``, ``.epochs``,
  ``.state_dict(epoch)``, ``.model(epoch)``).
- ``progress_measures(run)``: Nanda et al. 2023 progress measures as a DataFrame.
"""

from grokinterp.config import RunConfig, TrainConfig, preset
from grokinterp.model import GrokTransformer, ModelConfig
from grokinterp.runs import Run, load_run
from grokinterp.tasks import TaskConfig
from grokinterp.training import resume, train

__version__ = "0.1.0"

__all__ = [
    "GrokTransformer",
    "ModelConfig",
    "Run",
    "RunConfig",
    "TaskConfig",
    "TrainConfig",
    "load_run",
    "preset",
    "resume",
    "train",
]
