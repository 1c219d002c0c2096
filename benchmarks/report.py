"""The printed table: measured figures, reference figures, ratios and targets."""

from __future__ import annotations

TARGETS = {
    "train_speedup": 3.0,  # reference epoch time / grokinterp epoch time, at least
    "train_loss_rel": 1e-3,  # max relative train-loss difference, first 200 epochs
    "analyze_wall_s": 60.0,  # grokinterp analyze, 400 checkpoints, at most
    "analyze_speedup": 10.0,  # reference / grokinterp, at least
    "analyze_rel": 1e-6,  # max relative difference of the measures
    "analyze_rss_gib": 4.0,  # peak RSS, at most
    "rss_growth": 1.1,  # RSS(400 checkpoints) / RSS(100), at most
    "ckpt_read_ms": 5.0,  # one checkpoint, at most
    "run_dir_ratio": 1.1,  # run directory bytes / raw float32 parameter bytes
}


def fmt(x, digits=3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 1e4 or abs(x) < 1e-2:
            return f"{x:.2e}"
        return f"{x:.{digits}g}"
    return str(x)


def report(out: dict) -> str:
    """The table of measured figures, reference figures, ratios and targets."""
    lines = []

    def row(name, ours, ref, ratio, target, ok):
        mark = "-" if ok is None else ("MET" if ok else "MISSED")
        lines.append(f"| {name} | {fmt(ours)} | {fmt(ref)} | {fmt(ratio)} | {target} | {mark} |")

    lines += [
        "| measure | grokinterp | reference | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    t = out.get("training")
    if t:
        row(
            "epoch time, p=113 (s, median)",
            t["fast_epoch_s"],
            t["ref_epoch_s"],
            t["speedup"],
            ">= 3x",
            t["speedup"] >= TARGETS["train_speedup"],
        )
        agr = t["loss_agreement_f32"]
        row(
            f"train loss max rel diff, {t['epochs']} epochs, float32",
            agr["max_rel"],
            None,
            None,
            "<= 1e-3",
            agr["max_rel"] <= TARGETS["train_loss_rel"],
        )
        row(
            "useful GFLOP per epoch",
            t["flops_useful"] / 1e9,
            t["flops_reference"] / 1e9,
            t["flops_reference"] / t["flops_useful"],
            "(executed by reference)",
            None,
        )
        row(
            "achieved GFLOP/s (useful)",
            t["fast_gflops"],
            t["flops_useful"] / t["ref_epoch_s"] / 1e9,
            None,
            "-",
            None,
        )
        row(
            "fraction of matmul peak",
            t["fraction_of_peak"],
            None,
            None,
            f"peak {fmt(t['matmul_peak_gflops'])} GFLOP/s",
            None,
        )
    f64 = out.get("f64")
    if f64:
        row(
            f"train loss max rel diff, {f64['epochs']} epochs, float64",
            f64["fast64_vs_ref64"]["max_rel"],
            None,
            None,
            "<= 1e-3",
            f64["fast64_vs_ref64"]["max_rel"] <= TARGETS["train_loss_rel"],
        )
        row(
            "same trainer, float32 vs float64 (max rel)",
            f64["fast32_vs_fast64"]["max_rel"],
            f64.get("ref32_vs_ref64", {}).get("max_rel"),
            None,
            "(float32 noise)",
            None,
        )
    a = out.get("analysis")
    if a:
        n = a["n_checkpoints"]
        full = n >= 400  # the targets are stated for a 400-checkpoint run
        row(
            f"analyze wall, {n} checkpoints (s)",
            a["cli_wall_s"],
            None,
            None,
            "<= 60 s",
            a["cli_wall_s"] <= TARGETS["analyze_wall_s"] if full else None,
        )
        row(
            f"analyze vs reference, {n} checkpoints, whole process (s)",
            a["cli_wall_s"],
            a["ref_extrapolated_s"],
            a["speedup"],
            ">= 10x",
            a["speedup"] >= TARGETS["analyze_speedup"] if full else None,
        )
        full_ref = a.get("full_reference")
        if full_ref:
            row(
                f"analyze vs reference, both run on all {n} checkpoints (s, measured)",
                sum(full_ref["cli_wall_s"]) / 2,
                full_ref["ref_wall_s"],
                full_ref["speedup"],
                ">= 10x",
                full_ref["speedup"] >= TARGETS["analyze_speedup"] if full else None,
            )
        if "marginal_speedup" in a:
            row(
                "each further checkpoint (s; grokinterp: slope of the wall-time fit)",
                a["wall_fit_per_ckpt_s"],
                a["ref_per_ckpt_s"],
                a["marginal_speedup"],
                "-",
                None,
            )
        row(
            f"per checkpoint, alternating on {a['ref_checkpoints_timed']}, one at a time (s)",
            a["fast_per_ckpt_s"],
            a["ref_per_ckpt_s"],
            a["per_ckpt_speedup"],
            "-",
            None,
        )
        if "ref_fixed_s" in a:
            name = "reference start-up: interpreter, imports, run (s)"
            row(name, None, a["ref_fixed_s"], None, "-", None)
        cmp64 = a.get("comparison_f64")
        if cmp64:
            row(
                f"measures max rel diff, both float64 ({cmp64['worst_column']})",
                cmp64["max_rel"],
                None,
                None,
                "<= 1e-6",
                cmp64["max_rel"] <= TARGETS["analyze_rel"],
            )
        cmp = a["comparison"]
        row(
            f"measures max rel diff, float32 as run ({cmp['worst_column']})",
            cmp["max_rel"],
            None,
            None,
            "(float32 rounding)" if cmp64 else "<= 1e-6",
            None if cmp64 else cmp["max_rel"] <= TARGETS["analyze_rel"],
        )
        row(
            f"peak RSS, {n} checkpoints (MiB)",
            a["cli_rss_mib"],
            None,
            None,
            "<= 4096",
            a["cli_rss_mib"] <= TARGETS["analyze_rss_gib"] * 1024,
        )
        row(
            f"peak RSS {n} / {a['rss_small_n']} checkpoints",
            a["rss_growth"],
            None,
            None,
            "no growth (<= 1.1)",
            a["rss_growth"] <= TARGETS["rss_growth"],
        )
    io = out.get("io")
    if io:
        row(
            "read one checkpoint (ms, median)",
            io["read_ms"],
            None,
            None,
            "<= 5 ms",
            io["read_ms"] <= TARGETS["ckpt_read_ms"],
        )
        row(
            f"run dir bytes / raw float32 bytes ({io['n_checkpoints']} ckpts)",
            io["run_dir_ratio"],
            None,
            None,
            "<= 1.1",
            io["run_dir_ratio"] <= TARGETS["run_dir_ratio"] if io["n_checkpoints"] >= 400 else None,
        )
    if "scaling_p" in out:
        lines += [
            "",
            "| p | pairs | useful GFLOP/epoch | epoch s | ref epoch s | ratio "
            "| ckpt s | ref ckpt s | ratio | clusters s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in out["scaling_p"]:
            lines.append(
                f"| {r['p']} | {r['pairs']} | {fmt(r['useful_gflop_per_epoch'])} "
                f"| {fmt(r['fast_epoch_s'])} | {fmt(r['ref_epoch_s'])} "
                f"| {fmt(r['train_speedup'])} | {fmt(r['fast_ckpt_s'])} "
                f"| {fmt(r['ref_ckpt_s'])} | {fmt(r['analysis_speedup'])} "
                f"| {fmt(r['fast_clusters_s'])} |"
            )
    if a:
        lines += [
            "",
            "| checkpoints | analyze wall s | in-process s | peak RSS MiB |",
            "| --- | --- | --- | --- |",
        ]
        for s in a["scaling_checkpoints"]:
            lines.append(
                f"| {s['n']} | {fmt(s['wall_s'])} | {fmt(s['in_process_s'])} "
                f"| {fmt(s['rss_mib'])} |"
            )
        lines.append(
            f"| fit | {fmt(a['wall_fit_intercept_s'])} s + "
            f"{fmt(a['wall_fit_per_ckpt_s'])} s per checkpoint | | |"
        )
        lines.append(f"| clusters of the final checkpoint: {fmt(a['fast_clusters_s'])} s | | | |")
    return "\n".join(lines)
