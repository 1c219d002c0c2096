"""Full-batch AdamW training with dense, atomic, resumable checkpoints.

One epoch is one optimizer step on the whole training set (REFERENCE.md §1). Epoch e
denotes the weights after e steps; its metrics row and checkpoint both describe those
weights, so epoch 0 is the initialization. The loss is the cross-entropy at the last
position, computed in float64 because float32 log-softmax underflows once the train
loss nears 1e-7 and then produces loss spikes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save
from tqdm.auto import tqdm

from grokinterp.config import RunConfig, TrainConfig, check_device
from grokinterp.errors import GrokinterpError, RunExistsError
from grokinterp.model import GrokTransformer
from grokinterp.runs import (
    CKPT_DIR,
    CONFIG_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    RESUME_FILE,
    Run,
    atomic_write_bytes,
    atomic_write_text,
    load_resume_state,
    load_run,
    read_resume_metadata,
    save_checkpoint,
    write_run_header,
)
from grokinterp.tasks import grid_labels, grid_tokens

log = logging.getLogger(__name__)


def checkpoint_epochs(cfg: TrainConfig) -> list[int]:
    """Epochs that get a checkpoint: 0, log-spaced early ones, every N, and the last."""
    early = np.geomspace(1, cfg.checkpoint_every, cfg.early_checkpoints + 2)[:-1]
    epochs = {0, cfg.epochs, *range(0, cfg.epochs + 1, cfg.checkpoint_every)}
    epochs.update(int(round(e)) for e in early if cfg.early_checkpoints and e <= cfg.epochs)
    return sorted(e for e in epochs if e <= cfg.epochs)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up: step s (counting from 0) uses lr * min((s + 1) / warmup, 1)."""
    if cfg.warmup_steps == 0:
        return cfg.lr
    return cfg.lr * min((step + 1) / cfg.warmup_steps, 1.0)


class _Trainer:
    """The state of a run in progress and its named steps."""

    def __init__(self, run_dir: Path, config: RunConfig, split):
        self.run_dir = run_dir
        self.cfg = config
        tcfg = config.train
        self.device = torch.device(tcfg.device)
        tokens = grid_tokens(config.task.p).to(self.device)
        labels = grid_labels(config.task.p, config.task.name).to(self.device)
        self.train_x, self.train_y = tokens[split.train], labels[split.train]
        self.test_x, self.test_y = tokens[split.test], labels[split.test]
        self.model = GrokTransformer(config.model, seed=tcfg.seed).to(self.device)
        self.opt = torch.optim.AdamW(
            self.model.parameters(),
            lr=tcfg.lr,
            betas=tcfg.betas,
            weight_decay=tcfg.weight_decay,
        )
        self.epoch = 0
        self.rows: list[str] = []
        self.checkpoints = set(checkpoint_epochs(tcfg))

    # -- state -------------------------------------------------------------------------
    def resume_state(self) -> dict[str, torch.Tensor]:
        state = {f"param.{k}": v for k, v in self.model.state_dict().items()}
        names = dict(self.model.named_parameters())
        for name, param in names.items():
            for key, value in self.opt.state.get(param, {}).items():
                state[f"adam.{key}.{name}"] = value
        return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}

    def load_resume_state(self, tensors: dict[str, torch.Tensor], epoch: int) -> None:
        params = {k[len("param.") :]: v for k, v in tensors.items() if k.startswith("param.")}
        self.model.load_state_dict(params)
        for name, param in self.model.named_parameters():
            entry = {}
            for key in ("step", "exp_avg", "exp_avg_sq"):
                full = f"adam.{key}.{name}"
                if full in tensors:
                    value = tensors[full]
                    entry[key] = value if key == "step" else value.to(self.device)
            if entry:
                self.opt.state[param] = entry
        self.epoch = epoch

    # -- steps -------------------------------------------------------------------------
    def forward_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.last_logits(self.train_x)
        loss = F.cross_entropy(logits.double(), self.train_y)
        acc = (logits.argmax(dim=-1) == self.train_y).double().mean()
        return loss, acc

    @torch.no_grad()
    def evaluate_test(self) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.last_logits(self.test_x)
        loss = F.cross_entropy(logits.double(), self.test_y)
        acc = (logits.argmax(dim=-1) == self.test_y).double().mean()
        return loss, acc

    def step(self, loss: torch.Tensor) -> None:
        lr = lr_at(self.cfg.train, self.epoch)
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def save(self, finished: bool) -> None:
        """Checkpoint, then metrics, then resume state: each file whole or absent.

        The resume state goes last, so metrics always reach at least its epoch and a
        resume never leaves a gap in the per-epoch log.
        """
        save_checkpoint(self.run_dir, self.epoch, self.model.state_dict())
        header = ",".join(METRIC_COLUMNS) + "\n"
        atomic_write_text(self.run_dir / METRICS_FILE, header + "".join(self.rows))
        meta = {"epoch": str(self.epoch), "finished": "true" if finished else "false"}
        atomic_write_bytes(self.run_dir / RESUME_FILE, save(self.resume_state(), metadata=meta))

    # -- loop --------------------------------------------------------------------------
    def run(self, progress: bool = True) -> None:
        total = self.cfg.train.epochs
        bar = tqdm(
            total=total + 1,
            initial=self.epoch,
            desc="train",
            unit="epoch",
            disable=not progress,
            mininterval=0.5,
            dynamic_ncols=True,
        )
        pending: list[torch.Tensor] = []  # metrics kept on the device until a save
        start = time.perf_counter()
        first = self.epoch
        while True:
            train_loss, train_acc = self.forward_train()
            test_loss, test_acc = self.evaluate_test()
            pending.append(torch.stack([train_loss.detach(), train_acc, test_loss, test_acc]))
            is_last = self.epoch >= total
            if self.epoch in self.checkpoints or is_last:
                self._flush(pending)
                pending = []
                self.save(finished=is_last)
                bar.set_postfix_str(self._postfix(), refresh=False)
            bar.update(1)
            if is_last:
                break
            self.step(train_loss)
            self.epoch += 1
        bar.close()
        elapsed = time.perf_counter() - start
        log.info("trained epochs %d..%d in %.1f s", first, total, elapsed)

    def _flush(self, pending: list[torch.Tensor]) -> None:
        values = torch.stack(pending).cpu().tolist()
        first = self.epoch - len(values) + 1
        for i, (trl, tra, tel, tea) in enumerate(values):
            self.rows.append(f"{first + i},{trl!r},{tra!r},{tel!r},{tea!r}\n")

    def _postfix(self) -> str:
        last = self.rows[-1].split(",")
        return f"train {float(last[1]):.2e} test {float(last[3]):.2e} acc {float(last[4]):.3f}"


def _usable_device(device: str) -> None:
    try:
        check_device(device)
    except ValueError as exc:
        raise GrokinterpError(str(exc)) from None


def _prepare_run_dir(out: Path) -> None:
    try:
        _check_out_dir(out)
        (out / CKPT_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunExistsError(
            f"cannot create run directory {out} ({exc}); choose another --out"
        ) from None


def _check_out_dir(out: Path) -> None:
    if (out / CONFIG_FILE).exists():
        raise RunExistsError(
            f"{out} already holds a run; continue it with 'grokinterp train --resume {out}' "
            "or choose another --out"
        )
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"{out} is a file; choose a directory for --out")
    if out.exists() and any(out.iterdir()):
        raise RunExistsError(f"{out} is not empty; choose a new or empty directory for --out")


def train(config: RunConfig, out: str | Path, progress: bool = True) -> Run:
    """Train a new run into directory ``out`` (created; must be new or empty).

    Returns the finished run, opened with ``load_run``. Stopping the process at any
    point leaves a run that ``resume`` continues to the same final weights.
    """
    out = Path(out)
    _usable_device(config.train.device)  # fail before anything is written
    _prepare_run_dir(out)
    split = write_run_header(out, config)
    log.info("training %s into %s", config.preset or "custom run", out)
    trainer = _Trainer(out, config, split)
    trainer.run(progress=progress)
    return load_run(out)


def _remove_partial_files(run_dir: Path) -> None:
    """Delete temporary files a killed writer left behind (never a finished file)."""
    for folder in (run_dir, run_dir / CKPT_DIR):
        for tmp in folder.glob(".*.tmp*"):
            log.info("removing partial file %s", tmp)
            tmp.unlink()


def resume(run_dir: str | Path, progress: bool = True, device: str | None = None) -> Run:
    """Continue a stopped run from its last checkpoint to its configured epoch count.

    The result equals an uninterrupted run: the weights and AdamW state are restored
    exactly and, the batch being the whole training set, nothing else is random. A run
    stopped before its first checkpoint restarts from its seeded initialization.

    Args:
        run_dir: the run directory.
        progress: show a progress bar.
        device: train on this device instead of the one in the run's config.
    """
    run = load_run(run_dir)
    if run.finished:
        raise GrokinterpError(
            f"{run.path} already finished all {run.config.train.epochs} epochs; nothing to resume"
        )
    _remove_partial_files(run.path)
    config = run.config if device is None else run.config.replace(device=device)
    _usable_device(config.train.device)
    trainer = _Trainer(run.path, config, run.split)
    if read_resume_metadata(run.path) is None:
        log.info("%s stopped before its first checkpoint; starting from epoch 0", run.path)
        trainer.run(progress=progress)
        return load_run(run.path)
    tensors, meta = load_resume_state(run.path)
    epoch = int(meta.get("epoch", -1))
    if epoch < 0:
        raise GrokinterpError(f"{run.path / RESUME_FILE} names no epoch; start a new run")
    trainer.load_resume_state(tensors, epoch)
    metrics = run.metrics
    kept = metrics[metrics["epoch"] < epoch]
    trainer.rows = [
        f"{int(r.epoch)},{r.train_loss!r},{r.train_acc!r},{r.test_loss!r},{r.test_acc!r}\n"
        for r in kept.itertuples()
    ]
    log.info("resuming %s at epoch %d", run.path, epoch)
    trainer.run(progress=progress)
    return load_run(run.path)
