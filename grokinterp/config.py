"""Run configuration: typed dataclasses, validated with ValueError, and presets.

A run is fully described by a ``RunConfig``; it is stored as ``config.json`` in the
run directory and the CLI flags map onto its fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from grokinterp.model import ModelConfig
from grokinterp.tasks import TaskConfig


def check_device(device: str) -> None:
    """Raise ValueError unless ``device`` names a torch device usable here."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r} ({exc}); use e.g. cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this torch has no usable CUDA; use cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported; use cpu or cuda")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} is not available here; use cpu")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer and schedule. Defaults are the paper's (REFERENCE.md §1).

    Args:
        lr: AdamW learning rate after warm-up.
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW betas.
        warmup_steps: linear warm-up length; step s (from 0) uses lr * min((s+1)/w, 1).
        epochs: full-batch optimizer steps; one epoch is one step.
        checkpoint_every: save weights every this many epochs.
        early_checkpoints: extra log-spaced checkpoints below ``checkpoint_every``, so
            the memorization phase is resolved too.
        seed: seed of the weight initialization.
        device: torch device for training.
    """

    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 10
    epochs: int = 40_000
    checkpoint_every: int = 100
    early_checkpoints: int = 10
    seed: int = 999
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a torch device name, got {self.device!r}")
        if self.early_checkpoints < 0:
            raise ValueError(f"early_checkpoints must be >= 0, got {self.early_checkpoints}")


@dataclass(frozen=True)
class RunConfig:
    """Task, model and training settings of one run."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None

    def __post_init__(self) -> None:
        p = self.task.p
        if self.model.d_vocab != p + 1 or self.model.d_vocab_out != p:
            raise ValueError(
                f"model vocabulary ({self.model.d_vocab} in, {self.model.d_vocab_out} out) "
                f"does not fit p = {p}: expected {p + 1} in and {p} out; build the model "
                "config with ModelConfig.for_task(p)"
            )
        if self.model.n_ctx != 3:
            raise ValueError(f"the task has 3 tokens per input, got n_ctx = {self.model.n_ctx}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        """Inverse of ``to_dict``; raises ValueError on unknown or missing fields."""
        try:
            train = dict(data["train"])
            train["betas"] = tuple(train.get("betas", (0.9, 0.98)))
            return cls(
                task=TaskConfig(**data["task"]),
                model=ModelConfig(**data["model"]),
                train=TrainConfig(**train),
                preset=data.get("preset"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed run config: {exc}") from exc

    def replace(self, **fields) -> RunConfig:
        """Copy with flat overrides, e.g. ``replace(p=59, lr=3e-3)``."""
        groups = {"task": self.task, "model": self.model, "train": self.train}
        changes: dict[str, dict] = {name: {} for name in groups}
        preset = self.preset
        for key, value in fields.items():
            if key == "preset":
                preset = value
                continue
            owner = next((g for g, obj in groups.items() if key in _field_names(obj)), None)
            if owner is None:
                raise ValueError(f"unknown config field {key!r}")
            changes[owner][key] = value
        task = dataclasses.replace(self.task, **changes["task"])
        model_changes = changes["model"]
        if task.p != self.task.p:
            model_changes = {"d_vocab": task.p + 1, "d_vocab_out": task.p, **model_changes}
        model = dataclasses.replace(self.model, **model_changes)
        train = dataclasses.replace(self.train, **changes["train"])
        return RunConfig(task=task, model=model, train=train, preset=preset)


def _field_names(obj) -> set[str]:
    return {f.name for f in dataclasses.fields(obj)}


def _nanda2023() -> RunConfig:
    return RunConfig(preset="nanda2023")


def _demo() -> RunConfig:
    # Groks in about two minutes of training on a 2-core CPU: a smaller modulus, half the
    # pairs for training (larger train fractions grok sooner) and a 3x learning rate.
    # Model shape, weight decay and loss are the paper's. Memorizes by epoch ~50 and
    # reaches 0.99 test accuracy near epoch 750 (seeds as in nanda2023).
    return RunConfig(preset="demo").replace(
        p=53, train_frac=0.5, lr=3e-3, epochs=2000, checkpoint_every=50
    )


PRESETS = {"nanda2023": _nanda2023, "demo": _demo}


def preset(name: str) -> RunConfig:
    """A named configuration: ``nanda2023`` (the paper's run) or ``demo`` (fast)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]()
