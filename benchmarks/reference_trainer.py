"""Reference trainer: the canonical run written the plain TransformerLens 4 way.

This is the baseline of the training benchmark (docs/performance.md): the model of
REFERENCE.md §1 built with ``TransformerBridge.boot_native``, every bias zeroed and
frozen (as in the TransformerLens grokking demo), full-batch AdamW with the 10-step
linear warm-up, cross-entropy in float64 at the last position. Each epoch does what a
grokinterp epoch does: one optimizer step on the train pairs and a no-grad evaluation
of the test pairs, with both losses and accuracies logged.

It is deliberately not optimised: the model runs its ordinary forward over all three
positions with all hook points in place, and the last position is sliced off the
output, which is what a researcher following the paper's notebook would write.

    .venv/bin/python benchmarks/reference_trainer.py --p 113 --epochs 200

The weights are grokinterp's initialization for the same seed, converted with
``convert_tl_checkpoint``, so both trainers start from identical weights.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
import torch.nn.functional as F
import transformer_lens.model_bridge.sources.native  # noqa: F401  (adds boot_native)
from transformer_lens import TransformerBridge, TransformerBridgeConfig
from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

from grokinterp.config import RunConfig
from grokinterp.model import GrokTransformer
from grokinterp.tasks import grid_labels, grid_tokens, make_split


def bridge_config(p: int, d_model=128, n_heads=4, d_head=32, d_mlp=512) -> TransformerBridgeConfig:
    """The paper's 1-layer model as a TransformerLens-native bridge config."""
    return TransformerBridgeConfig(
        n_layers=1,
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        d_mlp=d_mlp,
        d_vocab=p + 1,
        d_vocab_out=p,
        n_ctx=3,
        act_fn="relu",
        normalization_type=None,
        attention_dir="causal",
    )


def bridge_from_state(cfg: TransformerBridgeConfig, state: dict, device="cpu"):
    """A bridge holding HookedTransformer-named weights ``state``, biases frozen at 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TransformerBridge.boot_native(cfg)
    converted = convert_tl_checkpoint(state, model.cfg)
    # grokinterp checkpoints carry no biases; the bridge has them: they stay missing.
    result = model.load_state_dict(converted, strict=False)
    if result.unexpected_keys or any(not k.endswith("bias") for k in result.missing_keys):
        raise RuntimeError(f"weights do not fit the bridge: {result}")
    for name, param in model.named_parameters():
        if name.endswith("bias"):
            param.requires_grad_(False)
            with torch.no_grad():
                param.zero_()
    return model if str(device) == "cpu" else model.to(device)


def setup(config: RunConfig, device: str = "cpu", dtype=torch.float32) -> dict:
    """Data, model, optimizer and schedule of a fresh reference run."""
    p = config.task.p
    mcfg, tcfg = config.model, config.train

    # Data: every pair, the same seeded split as grokinterp.
    tokens, labels = grid_tokens(p).to(device), grid_labels(p).to(device)
    split = make_split(config.task)

    # Model: grokinterp's initial weights for the seed, loaded into the bridge.
    init = GrokTransformer(mcfg, seed=tcfg.seed).state_dict()
    cfg = bridge_config(p, mcfg.d_model, mcfg.n_heads, mcfg.d_head, mcfg.d_mlp)
    model = bridge_from_state(cfg, init, device)
    if dtype != torch.float32:
        model = model.to(dtype)

    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay, betas=tcfg.betas)
    warmup = max(tcfg.warmup_steps, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 1.0))
    return {
        "model": model,
        "opt": opt,
        "sched": sched,
        "epoch": 0,
        "train_x": tokens[split.train],
        "train_y": labels[split.train],
        "test_x": tokens[split.test],
        "test_y": labels[split.test],
    }


def train_epoch(run: dict) -> dict:
    """One epoch: train forward, test evaluation, AdamW step. Returns the metrics row."""
    model, opt, sched = run["model"], run["opt"], run["sched"]

    # train forward at the last position, float64 loss
    logits = model(run["train_x"])[:, -1]
    train_loss = F.cross_entropy(logits.double(), run["train_y"])
    train_acc = (logits.argmax(-1) == run["train_y"]).float().mean()

    # test evaluation of the same weights
    with torch.no_grad():
        test_logits = model(run["test_x"])[:, -1]
        test_loss = F.cross_entropy(test_logits.double(), run["test_y"])
        test_acc = (test_logits.argmax(-1) == run["test_y"]).float().mean()

    row = {
        "epoch": run["epoch"],
        "train_loss": train_loss.item(),
        "train_acc": train_acc.item(),
        "test_loss": test_loss.item(),
        "test_acc": test_acc.item(),
    }

    # optimizer step
    train_loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()
    run["epoch"] += 1
    return row


def train_reference(
    config: RunConfig, epochs: int, device: str = "cpu", dtype=torch.float32, log_every: int = 0
) -> list[dict]:
    """Train ``epochs`` epochs; return one metrics row per epoch (epoch 0 = init).

    Row e describes the weights after e optimizer steps, as in grokinterp's metrics.
    """
    run = setup(config, device, dtype)
    rows = []
    for epoch in range(epochs):
        rows.append(train_epoch(run))
        if log_every and epoch % log_every == 0:
            print(
                f"epoch {epoch} train {rows[-1]['train_loss']:.4e} test {rows[-1]['test_loss']:.4e}"
            )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--p", type=int, default=113)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = RunConfig().replace(p=args.p)
    start = time.perf_counter()
    rows = train_reference(config, args.epochs, args.device, log_every=50)
    elapsed = time.perf_counter() - start
    print(f"{args.epochs} epochs in {elapsed:.1f} s ({1e3 * elapsed / args.epochs:.1f} ms/epoch)")
    print(f"final train loss {rows[-1]['train_loss']:.6e}")


if __name__ == "__main__":
    main()
