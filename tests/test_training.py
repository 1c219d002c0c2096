"""Training: schedule, run-directory contents, and resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import grokinterp
from grokinterp.config import TrainConfig
from grokinterp.errors import RunExistsError
from grokinterp.runs import load_run
from grokinterp.tasks import TaskConfig, make_split
from grokinterp.training import checkpoint_epochs, lr_at


def test_checkpoint_schedule_is_dense_early_and_regular_later():
    epochs = checkpoint_epochs(TrainConfig(epochs=1000, checkpoint_every=100, early_checkpoints=10))
    assert epochs[0] == 0 and epochs[-1] == 1000
    assert set(range(0, 1001, 100)) <= set(epochs)
    early = [e for e in epochs if 0 < e < 100]
    assert len(early) >= 8 and early[0] == 1  # log-spaced: 1, 2, 3, 5, 8, 12, ...
    assert epochs == sorted(set(epochs))
    odd = checkpoint_epochs(TrainConfig(epochs=250, checkpoint_every=100, early_checkpoints=0))
    assert odd == [0, 100, 200, 250]


def test_warmup_reaches_full_lr_at_step_ten():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10)
    assert [round(lr_at(cfg, s) / 1e-3, 6) for s in (0, 4, 9, 10, 500)] == [0.1, 0.5, 1, 1, 1]


def test_split_is_seeded_disjoint_and_complete():
    cfg = TaskConfig(p=13, train_frac=0.3, data_seed=7)
    a, b = make_split(cfg), make_split(cfg)
    assert torch.equal(a.train, b.train)
    assert len(a.train) == round(0.3 * 169)
    assert sorted(torch.cat([a.train, a.test]).tolist()) == list(range(169))
    other = make_split(TaskConfig(p=13, train_frac=0.3, data_seed=8))
    assert not torch.equal(a.train, other.train)


def test_run_directory_contents(tmp_path, tiny):
    cfg = tiny(epochs=30)
    run = grokinterp.train(cfg, tmp_path / "run", progress=False)
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["format"] == "grokinterp-run"
    assert meta["config"]["task"]["p"] == 11
    assert meta["versions"]["torch"] == torch.__version__.split("+")[0] or meta["versions"]["torch"]
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["train"] == make_split(cfg.task).train.tolist()
    assert run.epochs == checkpoint_epochs(cfg.train)
    assert run.metrics["epoch"].tolist() == list(range(31))
    assert run.finished
    # Weights are readable under HookedTransformer names and rebuild a working model.
    state = run.state_dict(30)
    assert state["blocks.0.attn.W_Q"].shape == (2, 32, 16)
    assert state["embed.W_E"].dtype == torch.float32
    model = run.model(30)
    logits = model(run.tokens[:5])
    # Metrics logged during training equal a fresh evaluation of the saved weights.
    with torch.no_grad():
        full = model.last_logits(run.tokens).double()
    train = run.split.train
    ce = torch.nn.functional.cross_entropy(full[train], run.labels[train]).item()
    assert run.metrics.iloc[-1]["train_loss"] == pytest.approx(ce, rel=1e-5)
    assert logits.shape == (5, 3, 11)
    assert not list((tmp_path / "run").rglob(".*tmp*"))


def test_existing_run_is_never_overwritten(tmp_path, tiny):
    grokinterp.train(tiny(epochs=5), tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "metrics.csv").read_bytes()
    with pytest.raises(RunExistsError, match="--resume"):
        grokinterp.train(tiny(epochs=5), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="not empty"):
        grokinterp.train(tiny(epochs=5), tmp_path / "other", progress=False)


TRAIN_TINY = """
import sys
import grokinterp
cfg = grokinterp.preset("demo").replace(
    p=11, train_frac=0.5, epochs=600, checkpoint_every=20, d_model=32, d_mlp=64,
    n_heads=2, d_head=16)
grokinterp.train(cfg, sys.argv[1], progress=False)
"""


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [sys.executable, "-c", TRAIN_TINY]
    subprocess.run([*train, str(tmp_path / "whole")], check=True, env=env)
    proc = subprocess.Popen([*train, str(tmp_path / "killed")], env=env)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpts / "epoch_000240.safetensors").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = load_run(tmp_path / "killed")
    assert not killed.finished, "the run finished before it could be killed"
    for epoch in killed.epochs:  # every file left behind is whole
        killed.state_dict(epoch)
    # Resume through the CLI, as a user would.
    resume = [sys.executable, "-m", "grokinterp", "train", "--resume", str(tmp_path / "killed")]
    subprocess.run([*resume, "-q"], check=True, env=env)
    whole, resumed = load_run(tmp_path / "whole"), load_run(tmp_path / "killed")
    assert resumed.finished and resumed.epochs == whole.epochs
    for name, value in whole.state_dict(600).items():
        assert torch.equal(value, resumed.state_dict(600)[name]), name
    assert resumed.metrics.equals(whole.metrics)
    assert not list((tmp_path / "killed").rglob(".*tmp*"))


def test_run_stopped_before_its_first_checkpoint_resumes_from_scratch(tmp_path, tiny):
    cfg = tiny(epochs=20)
    whole = grokinterp.train(cfg, tmp_path / "whole", progress=False)
    early = grokinterp.train(cfg, tmp_path / "early", progress=False)
    # What a kill in the first seconds leaves: config and split only.
    import shutil

    shutil.rmtree(early.path / "checkpoints")
    (early.path / "resume.safetensors").unlink()
    (early.path / "metrics.csv").unlink()
    (early.path / "checkpoints").mkdir()
    resumed = grokinterp.resume(early.path, progress=False)
    assert resumed.finished and resumed.epochs == whole.epochs
    for name, value in whole.state_dict(20).items():
        assert torch.equal(value, resumed.state_dict(20)[name]), name
    assert resumed.metrics.equals(whole.metrics)


def test_metrics_are_written_before_the_resume_state(tmp_path, tiny, monkeypatch):
    from grokinterp import training

    order = []
    real_bytes, real_text = training.atomic_write_bytes, training.atomic_write_text
    monkeypatch.setattr(
        training,
        "atomic_write_bytes",
        lambda path, data: (order.append(path.name), real_bytes(path, data)),
    )
    monkeypatch.setattr(
        training,
        "atomic_write_text",
        lambda path, text: (order.append(path.name), real_text(path, text)),
    )
    grokinterp.train(
        tiny(epochs=2, early_checkpoints=0, checkpoint_every=1), tmp_path / "r", progress=False
    )
    saves = [name for name in order if name in ("metrics.csv", "resume.safetensors")]
    assert saves == ["metrics.csv", "resume.safetensors"] * 3
