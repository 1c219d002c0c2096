"""Run directories: the on-disk format of a training run, and ``load_run``.

A run directory holds, in formats that load without executing code:

    config.json                  format marker, resolved RunConfig, library versions
    split.json                   the exact train and test pair indices
    metrics.csv                  epoch, train_loss, train_acc, test_loss, test_acc
    checkpoints/epoch_NNNNNN.safetensors   float32 weights under HookedTransformer names
    resume.safetensors           weights + AdamW state of the last checkpoint (for --resume)
    analysis/                    written by ``grokinterp analyze``

Every file is written to a temporary name in the same folder, flushed to disk and
renamed over the target, so a killed process leaves only whole files.

Known gap: nothing stops two processes from training into the same directory at once
(no lock file); the result is only right because training is deterministic. A lock
taken by ``train``/``resume`` would close it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import load_file, save

from grokinterp.config import RunConfig
from grokinterp.errors import CheckpointError, NotARunError, RunNotFoundError
from grokinterp.model import GrokTransformer
from grokinterp.tasks import Split, grid_labels, grid_tokens

log = logging.getLogger(__name__)

FORMAT = "grokinterp-run"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
METRICS_FILE = "metrics.csv"
RESUME_FILE = "resume.safetensors"
CKPT_DIR = "checkpoints"
CKPT_RE = re.compile(r"^epoch_(\d+)\.safetensors$")
METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write a file so that readers see either the old one or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:06d}.safetensors"


def save_checkpoint(run_dir: Path, epoch: int, state: dict[str, torch.Tensor]) -> Path:
    path = Path(run_dir) / CKPT_DIR / checkpoint_name(epoch)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    atomic_write_bytes(path, save(tensors, metadata={"epoch": str(epoch)}))
    return path


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("grokinterp", "torch", "transformer-lens", "numpy", "safetensors"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_run_header(out: Path, config: RunConfig) -> Split:
    """Write split.json and config.json of a new run into ``out``; return the split.

    config.json goes last: its format marker is what makes ``out`` a run.
    """
    from datetime import datetime, timezone

    from grokinterp.tasks import make_split

    split = make_split(config.task)
    atomic_write_text(
        out / SPLIT_FILE, json.dumps({"train": split.train.tolist(), "test": split.test.tolist()})
    )
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(out / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return split


class Run:
    """A run directory opened for reading.

    Attributes:
        path: the directory.
        config: its RunConfig.
        epochs: sorted epochs that have a checkpoint.

    Example:
        >>> run = load_run("checkpoints/demo")
        >>> logits, cache = run.model(run.epochs[-1]).run_with_cache(run.tokens[:8])
    """

    def __init__(self, path: Path, config: RunConfig, meta: dict):
        self.path = path
        self.config = config
        self.meta = meta

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, p={self.p}, {len(self.epochs)} checkpoints)"

    @property
    def p(self) -> int:
        return self.config.task.p

    @property
    def epochs(self) -> list[int]:
        folder = self.path / CKPT_DIR
        if not folder.is_dir():
            return []
        found = (CKPT_RE.match(name) for name in os.listdir(folder))
        return sorted(int(m.group(1)) for m in found if m)

    def checkpoint_path(self, epoch: int) -> Path:
        return self.path / CKPT_DIR / checkpoint_name(epoch)

    def state_dict(self, epoch: int, device: str = "cpu") -> dict[str, torch.Tensor]:
        """Weights at ``epoch`` under HookedTransformer's names and shapes.

        Raises:
            CheckpointError: if the checkpoint is missing, truncated or does not fit
                the run's model config.
        """
        path = self.checkpoint_path(epoch)
        if not path.is_file():
            raise CheckpointError(
                f"{self.path} has no checkpoint for epoch {epoch}; saved epochs are "
                f"{_epoch_range(self.epochs)}"
            )
        try:
            state = load_file(path, device=device)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {path} is unreadable ({exc}); restore it from a copy, or "
                "delete it to analyse the run without that epoch"
            ) from None
        self._check_shapes(path, state)
        return state

    @cached_property
    def _expected_shapes(self) -> dict[str, tuple[int, ...]]:
        model = GrokTransformer(self.config.model)
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    def _check_shapes(self, path: Path, state: dict[str, torch.Tensor]) -> None:
        found = {k: tuple(v.shape) for k, v in state.items()}
        if found != self._expected_shapes:
            missing = sorted(set(self._expected_shapes) - set(found))
            wrong = sorted(k for k in found if self._expected_shapes.get(k) != found[k])
            raise CheckpointError(
                f"checkpoint {path} does not fit the run's model config "
                f"(missing {missing}, unexpected or mis-shaped {wrong}); it may come "
                "from another run: delete it or restore the right file"
            )

    def model(self, epoch: int, device: str = "cpu") -> GrokTransformer:
        """A hooked model with the weights of ``epoch``, ready for ``run_with_cache``."""
        model = GrokTransformer(self.config.model).to(device)
        model.load_state_dict(self.state_dict(epoch, device=device))
        return model.eval()

    @cached_property
    def split(self) -> Split:
        data = _read_json(self.path / SPLIT_FILE)
        try:
            return Split(torch.tensor(data["train"]), torch.tensor(data["test"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise NotARunError(
                f"{self.path / SPLIT_FILE} is malformed ({exc}); the run cannot be analysed"
            ) from None

    @property
    def tokens(self) -> torch.Tensor:
        """All p * p inputs [a, b, =], row a * p + b."""
        return grid_tokens(self.p)

    @property
    def labels(self) -> torch.Tensor:
        return grid_labels(self.p, self.config.task.name)

    @property
    def metrics(self) -> pd.DataFrame:
        """Per-epoch train/test loss and accuracy logged during training."""
        path = self.path / METRICS_FILE
        if not path.is_file():
            return pd.DataFrame(columns=METRIC_COLUMNS)
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise NotARunError(f"{path} is damaged ({exc}); restore it or delete the run") from None
        missing = [c for c in METRIC_COLUMNS if c not in table.columns]
        if missing:
            raise NotARunError(f"{path} lacks columns {missing}; restore it or delete the run")
        return table

    @property
    def resume_state_epoch(self) -> int | None:
        info = read_resume_metadata(self.path)
        return None if info is None else int(info["epoch"])

    @property
    def finished(self) -> bool:
        info = read_resume_metadata(self.path)
        return info is not None and info.get("finished") == "true"


def _epoch_range(epochs: list[int]) -> str:
    if not epochs:
        return "none"
    return f"{len(epochs)} from {epochs[0]} to {epochs[-1]}"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotARunError(
            f"{path.parent} is not a grokinterp run: {path.name} is missing; pass a "
            "directory made by 'grokinterp train'"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotARunError(f"{path} is not valid JSON ({exc}); the run is damaged") from None


def read_resume_metadata(run_dir: Path) -> dict | None:
    path = Path(run_dir) / RESUME_FILE
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        return header.get("__metadata__", {})
    except (OSError, ValueError):
        return None


def load_resume_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(run_dir) / RESUME_FILE
    try:
        data = path.read_bytes()
        tensors = st_load(data)
    except (FileNotFoundError, SafetensorError, ValueError) as exc:
        raise CheckpointError(
            f"cannot resume {run_dir}: {RESUME_FILE} is missing or unreadable ({exc}); "
            "start a new run"
        ) from None
    return tensors, read_resume_metadata(run_dir) or {}


def load_run(path: str | os.PathLike) -> Run:
    """Open a run directory written by ``grokinterp train``.

    Raises:
        RunNotFoundError: the path does not exist.
        NotARunError: the path is not a grokinterp run directory.
    """
    path = Path(path)
    if not path.exists():
        raise RunNotFoundError(
            f"{path} does not exist; pass a run directory made by 'grokinterp train'"
        )
    if not path.is_dir():
        raise NotARunError(
            f"{path} is a file, not a run directory; pass the folder that holds config.json"
        )
    meta = _read_json(path / CONFIG_FILE)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NotARunError(
            f"{path / CONFIG_FILE} is not a grokinterp run config (no format marker)"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise NotARunError(
            f"{path} uses run format version {meta.get('format_version')}, this grokinterp "
            f"reads version {FORMAT_VERSION}; install the matching grokinterp version"
        )
    try:
        config = RunConfig.from_dict(meta["config"])
    except (KeyError, ValueError) as exc:
        raise NotARunError(f"{path / CONFIG_FILE} holds an invalid config: {exc}") from None
    return Run(path, config, meta)
