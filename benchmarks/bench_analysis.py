"""Analysis side of the benchmark: ``grokinterp analyze`` in its own process, the
reference alternating with grokinterp per checkpoint, table comparison, checkpoint I/O.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import reference_analysis
import reference_trainer
from bench_training import median, sync

HERE = Path(__file__).resolve().parent


def subprocess_env(threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
    root = str(HERE.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ``grokinterp analyze`` as a user runs it, in a process that imports nothing else,
# reporting its peak RSS (VmHWM on Linux; elsewhere ru_maxrss, KiB on Linux and bytes
# on macOS, which after fork and exec can report the parent's peak instead).
CLI_SNIPPET = """
import json, resource, sys, time
t0 = time.perf_counter()
from grokinterp.cli import main
status = main(["analyze", sys.argv[1], "--no-figures", "-q", "--device", sys.argv[2]])
out = {"status": status, "in_process_s": time.perf_counter() - t0}
try:  # Linux: this process image's peak; ru_maxrss would include the forking parent's
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM:"))
    out["rss_mib"] = int(hwm.split()[1]) / 1024
except OSError:
    scale = 1 if sys.platform == "darwin" else 1024
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
if sys.argv[2].startswith("cuda"):
    import torch
    out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
print(json.dumps(out))
"""


def run_cli(run_dir: Path, device: str, threads: int | None) -> dict:
    """Wall time, in-process time and peak RSS of ``grokinterp analyze`` on a run."""
    cmd = [sys.executable, "-c", CLI_SNIPPET, str(run_dir), device]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(threads))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"grokinterp analyze {run_dir} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["status"] != 0:
        raise RuntimeError(f"grokinterp analyze {run_dir} exited with {result['status']}")
    result["wall_s"] = wall
    return result


def run_reference_script(
    run_dir: Path, key_freqs, device: str, threads: int | None, limit: int | None = None
) -> tuple[float, float]:
    """``reference_analysis.py RUN`` in a fresh process, as a user would run it.

    Returns its wall time and the time its loop over checkpoints took (the script
    prints it); the difference is interpreter start, imports (torch, transformer_lens,
    pandas) and reading the run, which ``grokinterp analyze``'s wall time also holds.
    """
    cmd = [sys.executable, str(HERE / "reference_analysis.py"), str(run_dir)]
    cmd += ["--device", device, "--key-freqs", *map(str, key_freqs)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(threads))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"reference_analysis.py failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])["loop_s"]


def reference_fixed_cost(run_dir: Path, key_freqs, device: str, threads: int | None) -> dict:
    """Start-up cost of the reference script: its wall time on 2 checkpoints minus its loop."""
    wall, loop = run_reference_script(run_dir, key_freqs, device, threads, limit=2)
    return {"wall_s": wall, "loop_s": loop, "fixed_s": max(wall - loop, 0.0)}


def analysis_side_by_side(run_dir: Path, key_freqs, n: int, device: str):
    """Per-checkpoint time of grokinterp and of the reference, alternating.

    On ``n`` checkpoints spread over the run (the last included), grokinterp's
    per-checkpoint path as ``analyze`` runs it (read, load, ``GridMeasures``) and
    ``reference_measures`` (boot a bridge, ``run_with_cache``, measures) run one after
    the other, so a busy machine slows both alike. Returns both time lists, the
    reference table and the key frequencies the reference finds on the last checkpoint.
    """
    from grokinterp.analysis.measures import GridMeasures
    from grokinterp.model import GrokTransformer
    from grokinterp.runs import load_run

    run = load_run(run_dir)
    step = max(len(run.epochs) // n, 1)
    epochs = run.epochs[::step][:n]
    if run.epochs[-1] not in epochs:
        epochs[-1] = run.epochs[-1]
    cfg = reference_trainer.bridge_config(run.p)
    model = GrokTransformer(run.config.model).to(device).eval()
    measure = GridMeasures(run.p, run.split.train, run.split.test, key_freqs, device)
    fast_times, ref_times, rows, ref_keys = [], [], [], None
    for epoch in epochs:
        sync(device)
        t0 = time.perf_counter()
        model.load_state_dict(run.state_dict(epoch, device=device))
        measure(model)
        sync(device)
        t1 = time.perf_counter()
        state = run.state_dict(epoch)
        row = reference_analysis.reference_measures(
            state, run.p, run.labels, run.split.train, run.split.test, key_freqs, cfg, device
        )
        sync(device)
        t2 = time.perf_counter()
        fast_times.append(t1 - t0)
        ref_times.append(t2 - t1)
        post = row.pop("_post")
        if epoch == run.epochs[-1]:
            ref_keys = reference_analysis.neuron_key_frequencies(post, run.p)
        rows.append({"epoch": epoch, **row})
    return fast_times, ref_times, pd.DataFrame(rows), ref_keys


def analysis_f64_agreement(run_dir: Path, key_freqs, epochs, device: str) -> dict:
    """``compare_tables`` of grokinterp and the reference, both computing in float64.

    In float32 the two differ by the rounding of their logits (different summation
    orders), which at losses near 1e-7 is ~1e-6 relative; in float64 that rounding is
    ~1e-15, so what remains is any difference in the math.
    """
    import torch

    from grokinterp.analysis.measures import GridMeasures
    from grokinterp.model import GrokTransformer
    from grokinterp.runs import load_run

    run = load_run(run_dir)
    measure = GridMeasures(run.p, run.split.train, run.split.test, key_freqs, device)
    model = GrokTransformer(run.config.model).to(device, torch.float64).eval()
    cfg = reference_trainer.bridge_config(run.p)
    fast, ref = [], []
    for epoch in epochs:
        model.load_state_dict(run.state_dict(epoch, device=device))
        fast.append({"epoch": epoch, **measure(model)})
        with contextlib.redirect_stdout(io.StringIO()):  # TransformerLens prints the cast
            row = reference_analysis.reference_measures(
                run.state_dict(epoch),
                run.p,
                run.labels,
                run.split.train,
                run.split.test,
                key_freqs,
                cfg,
                device,
                torch.float64,
            )
        row.pop("_post")
        ref.append({"epoch": epoch, **row})
    return compare_tables(pd.DataFrame(fast), pd.DataFrame(ref))


def clusters_time(run_dir: Path, device: str) -> tuple[float, list[int]]:
    """Seconds to find the final checkpoint's neuron clusters, and its key frequencies."""
    from grokinterp.analysis.measures import final_clusters
    from grokinterp.runs import load_run

    run = load_run(run_dir)
    sync(device)
    t0 = time.perf_counter()
    clusters = final_clusters(run, device=device)
    sync(device)
    return time.perf_counter() - t0, clusters.key_frequencies


def compare_tables(fast: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """Largest relative difference per column on the epochs both tables hold.

    Two kinds of column pass through zero, where a relative error means nothing: a
    cos(w (a + b - c)) coefficient is a signed projection, measured against its natural
    scale, the norm of the centered logits (|alpha_k| <= ||L||), i.e. compared as a
    cosine; ``cos_frac_explained`` is a share in [0, 1], measured against 1 when smaller.
    ``per_column_plain`` has the plain ratios for every column.
    """
    fast = fast.set_index("epoch").loc[ref["epoch"]]
    ref = ref.set_index("epoch")
    missing = sorted(set(fast.columns) - set(ref.columns))
    cols = [c for c in fast.columns if c in ref.columns and not c.startswith("_")]
    per_col, plain = {}, {}
    for c in cols:
        diff = (fast[c] - ref[c]).abs()
        scale = ref[c].abs().where(ref[c] != 0, 1e-300)
        plain[c] = float((diff / scale).where(diff > 0, 0.0).max())
        if c.startswith("cos_coef_k") and "_centered_norm" in ref:
            scale = ref["_centered_norm"]
        elif c == "cos_frac_explained":
            scale = ref[c].abs().clip(lower=1.0)
        per_col[c] = float((diff / scale).where(diff > 0, 0.0).max())
    worst = max(per_col, key=per_col.get)
    return {
        "max_rel": per_col[worst],
        "worst_column": worst,
        "per_column": per_col,
        "per_column_plain": plain,
        "columns_not_in_reference": missing,
    }


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def bench_io(run_dir: Path, reps: int) -> dict:
    """Median time to read one checkpoint (warm page cache) and bytes per raw byte."""
    from grokinterp.runs import load_run

    run = load_run(run_dir)
    epochs = run.epochs
    state = run.state_dict(epochs[0])
    raw = sum(v.numel() * 4 for v in state.values())
    times = []
    for i in range(reps):
        epoch = epochs[(i * 37) % len(epochs)]
        t0 = time.perf_counter()
        run.state_dict(epoch)
        times.append(time.perf_counter() - t0)
    analysis = run_dir / "analysis"
    total = dir_bytes(run_dir) - (dir_bytes(analysis) if analysis.exists() else 0)
    return {
        "read_ms": 1e3 * median(times),
        "read_ms_p90": 1e3 * sorted(times)[int(0.9 * (len(times) - 1))],
        "raw_bytes_per_ckpt": raw,
        "n_checkpoints": len(epochs),
        "ckpt_dir_ratio": dir_bytes(run_dir / "checkpoints") / (raw * len(epochs)),
        "run_dir_ratio": total / (raw * len(epochs)),
        "run_dir_mib": total / 2**20,
    }


def fit_line(xs, ys) -> tuple[float, float]:
    """Least-squares intercept and slope."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - slope * mx, slope
