"""Performance benchmarks of grokinterp against plain TransformerLens references.

One command measures, side by side in the same process and on the same machine:

1. training: median epoch time of grokinterp's trainer and of
   ``reference_trainer.py`` (interleaved blocks of epochs), and how far their train
   losses drift apart over the first epochs from identical weights;
2. analysis: wall time and peak RSS of ``grokinterp analyze`` on a synthetic
   400-checkpoint run of the canonical size, the per-checkpoint time of
   ``reference_analysis.py`` (on a subset, extrapolated) and the largest relative
   difference between the two tables;
3. checkpoint I/O: time to read one checkpoint, bytes on disk per raw parameter byte;
4. scaling with p and with the number of checkpoints;
5. floating-point operations per epoch against a measured matmul peak.

    .venv/bin/python benchmarks/run_benchmarks.py --threads 1 --json bench.json
    .venv/bin/python benchmarks/run_benchmarks.py --quick     # smoke test, ~1 min

Timings are medians; on a shared machine compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_analysis import (  # noqa: E402
    analysis_f64_agreement,
    analysis_side_by_side,
    bench_io,
    clusters_time,
    compare_tables,
    fit_line,
    reference_fixed_cost,
    run_cli,
    run_reference_script,
)
from bench_training import (  # noqa: E402
    fast_epoch,
    fast_losses,
    fast_setup,
    loss_agreement,
    matmul_peak,
    median,
    profile_fast_epoch,
    train_side_by_side,
    training_flops,
)
from report import TARGETS, report  # noqa: E402
from synthetic_run import write_synthetic_run  # noqa: E402

from grokinterp.config import RunConfig  # noqa: E402
from grokinterp.tasks import make_split  # noqa: E402

# -- the benchmark -----------------------------------------------------------------------


def section_training(opts, out: dict) -> None:
    config = RunConfig().replace(device=opts.device)
    epochs, block = (10, 5) if opts.quick else (opts.epochs, 10)
    log(f"training: {epochs} epochs of each trainer at p = 113, blocks of {block}")
    res = train_side_by_side(config, epochs, block, opts.device)
    fast_t, ref_t = median(res["fast_times"][1:]), median(res["ref_times"][1:])
    split = make_split(config.task)
    flops = training_flops(113, len(split.train), len(split.test))
    peak = matmul_peak(opts.device)
    out["training"] = {
        "epochs": epochs,
        "block": block,
        "fast_epoch_s": fast_t,
        "ref_epoch_s": ref_t,
        "speedup": ref_t / fast_t,
        "fast_block_times": res["fast_times"],
        "ref_block_times": res["ref_times"],
        "loss_agreement_f32": loss_agreement(
            res["fast_loss"], res["ref_loss"], TARGETS["train_loss_rel"]
        ),
        "flops_useful": flops["useful"],
        "flops_reference": flops["reference"],
        "fast_gflops": flops["useful"] / fast_t / 1e9,
        "ref_gflops_executed": flops["reference"] / ref_t / 1e9,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": flops["useful"] / fast_t / 1e9 / peak,
    }
    out["training"]["_fast_loss"] = res["fast_loss"]
    out["training"]["_ref_loss"] = res["ref_loss"]
    if opts.profile:
        out["training"]["profile"] = profile_fast_epoch(config, opts.device)


def section_f64(opts, out: dict) -> None:
    """Both trainers in float64 from the same weights, and the float32 noise floor.

    Float32 rounding differs between any two implementations that order their sums
    differently, and training amplifies it; in float64 the rounding is 1e-16 and the
    two trainers must agree to many digits if they compute the same function.
    """
    config = RunConfig().replace(device=opts.device)
    epochs = 10 if opts.quick else opts.epochs
    log(f"float64: {epochs} epochs of each trainer")
    res64 = train_side_by_side(config, epochs, epochs, opts.device, torch.float64)
    fast32 = out.get("training", {}).get("_fast_loss")
    if fast32 is None or len(fast32) != epochs:
        trainer = fast_setup(config, opts.device)
        for _ in range(epochs):
            fast_epoch(trainer)
        fast32 = fast_losses(trainer)
    tol = TARGETS["train_loss_rel"]
    out["f64"] = {
        "epochs": epochs,
        "fast64_vs_ref64": loss_agreement(res64["fast_loss"], res64["ref_loss"], tol),
        "fast32_vs_fast64": loss_agreement(fast32, res64["fast_loss"], tol),
        "fast64_epoch_s": median(res64["fast_times"]),
        "ref64_epoch_s": median(res64["ref_times"]),
    }
    ref32 = out.get("training", {}).get("_ref_loss")
    if ref32 is not None and len(ref32) == epochs:
        out["f64"]["ref32_vs_ref64"] = loss_agreement(ref32, res64["ref_loss"], tol)


def section_analysis(opts, out: dict, work: Path) -> None:
    counts = (5, 20) if opts.quick else (25, 100, 400)
    n_ckpt = counts[-1]
    log(f"analysis: writing synthetic runs of {counts} checkpoints")
    runs = {}
    for n in counts:
        t0 = time.perf_counter()
        runs[n] = write_synthetic_run(work / f"run{n}", 113, n)
        write_s = time.perf_counter() - t0
    big = runs[n_ckpt]

    log("analysis: grokinterp analyze --no-figures, one fresh process per run")
    cli = {n: run_cli(runs[n], opts.device, opts.threads) for n in counts}
    summary = json.loads((big / "analysis" / "summary.json").read_text())
    key_freqs = summary["key_frequencies"]
    fast_table = pd.read_csv(big / "analysis" / "measures.csv")
    n_ref = 2 if opts.quick else opts.ref_checkpoints
    log(f"analysis: grokinterp and reference alternating on {n_ref} checkpoints")
    fast_times, ref_times, ref_table, ref_keys = analysis_side_by_side(
        big, key_freqs, n_ref, opts.device
    )
    fast_per, ref_per = median(fast_times), median(ref_times)
    log("analysis: start-up cost of the reference script")
    ref_fixed = reference_fixed_cost(big, key_freqs, opts.device, opts.threads)
    log("analysis: both in float64 on the same checkpoints")
    comparison64 = analysis_f64_agreement(big, key_freqs, list(ref_table["epoch"]), opts.device)
    clusters_s, _ = clusters_time(big, opts.device)
    intercept, slope = fit_line(list(counts), [cli[n]["wall_s"] for n in counts])
    small = counts[-2]
    out["analysis"] = {
        "n_checkpoints": n_ckpt,
        "synthetic_write_s": write_s,
        "key_frequencies": key_freqs,
        "reference_key_frequencies": ref_keys,
        "cli_wall_s": cli[n_ckpt]["wall_s"],
        "cli_in_process_s": cli[n_ckpt]["in_process_s"],
        "cli_rss_mib": cli[n_ckpt]["rss_mib"],
        "rss_small_n": small,
        "rss_small_mib": cli[small]["rss_mib"],
        "rss_growth": cli[n_ckpt]["rss_mib"] / cli[small]["rss_mib"],
        "ref_checkpoints_timed": len(ref_times),
        "ref_per_ckpt_s": ref_per,
        "ref_fixed_s": ref_fixed["fixed_s"],
        "ref_extrapolated_s": ref_fixed["fixed_s"] + ref_per * n_ckpt,
        "speedup": (ref_fixed["fixed_s"] + ref_per * n_ckpt) / cli[n_ckpt]["wall_s"],
        "marginal_speedup": ref_per / max(slope, 1e-9),
        "fast_per_ckpt_s": fast_per,
        "per_ckpt_speedup": ref_per / fast_per,
        "fast_clusters_s": clusters_s,
        "wall_fit_intercept_s": intercept,
        "wall_fit_per_ckpt_s": slope,
        "comparison": compare_tables(fast_table, ref_table),
        "comparison_f64": comparison64,
        "scaling_checkpoints": [
            {
                "n": n,
                "wall_s": cli[n]["wall_s"],
                "in_process_s": cli[n]["in_process_s"],
                "rss_mib": cli[n]["rss_mib"],
            }
            for n in counts
        ],
    }
    if "cuda_peak_mib" in cli[n_ckpt]:
        out["analysis"]["cuda_peak_mib"] = cli[n_ckpt]["cuda_peak_mib"]
    log("checkpoint I/O")
    if opts.full_reference:
        log(f"analysis: the reference script on all {n_ckpt} checkpoints, between two analyze runs")
        before = run_cli(big, opts.device, opts.threads)["wall_s"]
        ref, _ = run_reference_script(big, key_freqs, opts.device, opts.threads)
        after = run_cli(big, opts.device, opts.threads)["wall_s"]
        out["analysis"]["full_reference"] = {
            "ref_wall_s": ref,
            "cli_wall_s": [before, after],
            "speedup": ref / ((before + after) / 2),
        }
    out["io"] = bench_io(big, 50 if opts.quick else 400)


def section_scaling_p(opts, out: dict, work: Path) -> None:
    ps = (53, 113) if opts.quick else (53, 113, 227)
    rows = []
    for p in ps:
        log(f"scaling: p = {p}")
        config = RunConfig().replace(p=p, device=opts.device)
        epochs, block = (4, 2) if opts.quick else (12, 2)
        res = train_side_by_side(config, epochs, block, opts.device)
        run_dir = write_synthetic_run(work / f"scale_p{p}", p, 3 if opts.quick else 5)
        clusters_s, key_freqs = clusters_time(run_dir, opts.device)
        fast_ckpt, ref_ckpt, _, _ = analysis_side_by_side(
            run_dir, key_freqs, 2 if opts.quick else 3, opts.device
        )
        fast_t, ref_t = median(res["fast_times"][1:]), median(res["ref_times"][1:])
        split = make_split(config.task)
        rows.append(
            {
                "p": p,
                "pairs": p * p,
                "fast_epoch_s": fast_t,
                "ref_epoch_s": ref_t,
                "train_speedup": ref_t / fast_t,
                "useful_gflop_per_epoch": training_flops(p, len(split.train), len(split.test))[
                    "useful"
                ]
                / 1e9,
                "fast_ckpt_s": median(fast_ckpt),
                "fast_clusters_s": clusters_s,
                "ref_ckpt_s": median(ref_ckpt),
                "analysis_speedup": median(ref_ckpt) / median(fast_ckpt),
            }
        )
    out["scaling_p"] = rows


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info(opts) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "loadavg_at_start": load,
        "device": opts.device,
    }
    if opts.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    return info


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="few repetitions (CI smoke)")
    parser.add_argument("--json", type=Path, help="write all results to this file")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads here and in grokinterp analyze"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=200,
        help="epochs of each trainer for timing and loss agreement",
    )
    parser.add_argument(
        "--ref-checkpoints",
        type=int,
        default=12,
        help="checkpoints the reference analysis is timed on",
    )
    parser.add_argument(
        "--f64",
        action="store_true",
        help="also compare the trainers in float64 (slow: ~9 min at p=113)",
    )
    parser.add_argument("--profile", action="store_true", help="profile a training epoch")
    parser.add_argument(
        "--full-reference",
        action="store_true",
        help="also run the reference script on every checkpoint, between two "
        "grokinterp analyze runs (measured, not extrapolated; ~4 min at p=113)",
    )
    parser.add_argument(
        "--sections",
        default="training,analysis,scaling",
        help="comma-separated subset of training,analysis,scaling,f64",
    )
    parser.add_argument("--workdir", type=Path, help="keep the synthetic runs here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2

    out = {
        "machine": machine_info(opts),
        "targets": TARGETS,
        "quick": opts.quick,
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
    }
    sections = set(opts.sections.split(","))
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="grokbench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        if "training" in sections:
            section_training(opts, out)
        if "analysis" in sections:
            section_analysis(opts, out, work)
        if "scaling" in sections:
            section_scaling_p(opts, out, work)
        if "f64" in sections or opts.f64:
            section_f64(opts, out)
    finally:
        if opts.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    out["total_s"] = time.perf_counter() - started
    for key in ("_fast_loss", "_ref_loss"):
        out.get("training", {}).pop(key, None)
    out["machine"]["loadavg_at_end"] = os.getloadavg()
    table = report(out)
    out["table"] = table
    print(table)
    if "training" in out and "profile" in out["training"]:
        print("\n" + out["training"]["profile"])
    if opts.json:
        opts.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
