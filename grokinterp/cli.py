"""The grokinterp command: train, analyze, report, demo.

Errors a user can fix are printed as one line naming the problem and the fix, with
exit status 2; an interrupted training run exits with 130 and says how to resume.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from grokinterp.config import PRESETS, RunConfig, preset
from grokinterp.errors import GrokinterpError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
FORMATS = ("html", "png", "pdf", "svg")
DEFAULT_RUNS = Path("checkpoints")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage is one --help away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def _float_in(low: float, high: float | None = None, low_open: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bad_low = value <= low if low_open else value < low
        if bad_low or (high is not None and value >= high) or not math.isfinite(value):
            upper = f" and < {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(
                f"expected a number {'>' if low_open else '>='} {low}{upper}, got {text}"
            )
        return value

    return parse


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown figure format(s) {', '.join(unknown) or text!r}; choose from "
            f"{', '.join(FORMATS)}"
        )
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokinterp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tr = sub.add_parser("train", help="train a run with dense checkpoints")
    tr.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="starting configuration (default: nanda2023, the paper's run)",
    )
    tr.add_argument("--p", type=_int_at_least(3), help="modulus (integer >= 3)")
    tr.add_argument(
        "--train-frac",
        type=_float_in(0.0, 1.0, low_open=True),
        help="fraction of the p*p pairs used for training",
    )
    tr.add_argument("--lr", type=_float_in(0.0, low_open=True), help="AdamW learning rate")
    tr.add_argument("--weight-decay", type=_float_in(0.0), help="AdamW weight decay")
    tr.add_argument("--epochs", type=_int_at_least(1), help="full-batch steps")
    tr.add_argument(
        "--checkpoint-every",
        type=_int_at_least(1),
        help="epochs between checkpoints (log-spaced early ones are added)",
    )
    tr.add_argument("--seed", type=_int_at_least(0), help="seed of the weight init")
    tr.add_argument("--data-seed", type=_int_at_least(0), help="seed of the train/test split")
    tr.add_argument("--device", help="torch device, e.g. cpu or cuda")
    tr.add_argument(
        "--out", type=Path, help="run directory to create (default: under checkpoints/)"
    )
    tr.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue a stopped run; other flags are taken from the run",
    )
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    an = sub.add_parser("analyze", help="compute progress measures and figures of a run")
    an.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    an.add_argument(
        "--formats",
        type=_formats,
        default=("html", "png", "pdf"),
        help="figure formats, comma-separated (default: html,png,pdf)",
    )
    an.add_argument("--no-figures", action="store_true", help="write only measures and summary")
    an.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    an.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    rp = sub.add_parser("report", help="write one self-contained HTML page of a run's analysis")
    rp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rp.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    rp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser("demo", help="train the small demo preset and analyze it (~2 min)")
    demo.add_argument("--out", type=Path, help="run directory (default: checkpoints/demo-TIME)")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _train_config(args: argparse.Namespace) -> RunConfig:
    cfg = preset(args.preset or "nanda2023")
    flags = {
        "p": args.p,
        "train_frac": args.train_frac,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "epochs": args.epochs,
        "checkpoint_every": args.checkpoint_every,
        "device": args.device,
    }
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.data_seed is not None:
        overrides["data_seed"] = args.data_seed
    cfg = cfg.replace(**overrides)
    return cfg


def _default_out(name: str) -> Path:
    return DEFAULT_RUNS / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def cmd_train(args: argparse.Namespace) -> int:
    from grokinterp.training import resume, train

    if args.resume is not None:
        given = [
            f
            for f in (
                "p",
                "train_frac",
                "lr",
                "weight_decay",
                "epochs",
                "checkpoint_every",
                "seed",
                "data_seed",
                "out",
            )
            if getattr(args, f) is not None
        ]
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise GrokinterpError(f"--resume continues a run with its own config; drop {flags}")
        run_dir = args.resume
        action = lambda: resume(run_dir, progress=not args.quiet, device=args.device)  # noqa: E731
    else:
        try:
            cfg = _train_config(args)
        except ValueError as exc:
            raise GrokinterpError(f"invalid configuration: {exc}") from None
        run_dir = args.out or _default_out(cfg.preset or "run")
        action = lambda: train(cfg, run_dir, progress=not args.quiet)  # noqa: E731
    start = time.perf_counter()
    try:
        run = action()
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; every saved file is whole. Continue with: "
            f"grokinterp train --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    last = run.metrics.iloc[-1]
    print(
        f"trained {run.path} in {time.perf_counter() - start:.0f} s: epoch {int(last.epoch)}, "
        f"train loss {last.train_loss:.3g}, test loss {last.test_loss:.3g}, "
        f"test acc {last.test_acc:.4f}, {len(run.epochs)} checkpoints"
    )
    if not all(math.isfinite(x) for x in (last.train_loss, last.test_loss)):
        print(
            "warning: the loss is not finite: the run diverged (try a smaller --lr); "
            "its analysis will have no phases",
            file=sys.stderr,
        )
    print(f"next: grokinterp analyze {run.path}")
    return 0


def _check_device(device: str) -> None:
    from grokinterp.config import check_device

    try:
        check_device(device)
    except ValueError as exc:
        raise GrokinterpError(str(exc)) from None


def _analyze(run_dir: Path, formats, figures: bool, device: str, quiet: bool) -> int:
    from grokinterp.analysis.summary import describe, write_analysis
    from grokinterp.runs import load_run

    _check_device(device)
    run = load_run(run_dir)
    if not run.epochs:
        raise GrokinterpError(f"{run_dir} has no checkpoints yet; train it first")
    start = time.perf_counter()
    summary, written = write_analysis(
        run, formats=formats, figures=figures, device=device, progress=not quiet
    )
    print(describe(summary))
    if "figures_note" in summary:
        print(summary["figures_note"])
    n_figs = len(summary.get("figures", []))
    print(
        f"wrote measures.csv, summary.json and {n_figs} figure files to "
        f"{run.path / 'analysis'} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    return _analyze(args.run_dir, args.formats, not args.no_figures, args.device, args.quiet)


def cmd_report(args: argparse.Namespace) -> int:
    from grokinterp.report import write_report
    from grokinterp.runs import load_run

    _check_device(args.device)
    run = load_run(args.run_dir)
    if not run.epochs:
        raise GrokinterpError(f"{args.run_dir} has no checkpoints yet; train it first")
    start = time.perf_counter()
    path = write_report(run, device=args.device, progress=not args.quiet)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB) in {time.perf_counter() - start:.1f} s; it opens offline")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from grokinterp.training import train

    out = args.out or _default_out("demo")
    cfg = preset("demo")
    print(f"training the demo preset (p = {cfg.task.p}, {cfg.train.epochs} epochs) into {out}")
    start = time.perf_counter()
    try:
        train(cfg, out, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: grokinterp train --resume {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"trained in {time.perf_counter() - start:.0f} s; analysing")
    return _analyze(out, ("html", "png", "pdf"), True, "cpu", args.quiet)


COMMANDS = {"train": cmd_train, "analyze": cmd_analyze, "report": cmd_report, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (tests call it directly)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except GrokinterpError as exc:
        print(f"grokinterp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"\ngrokinterp {args.command}: interrupted; files already written are whole",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
