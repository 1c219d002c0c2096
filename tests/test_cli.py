"""The command line: a tiny end-to-end run, and every user error as one line, status 2."""

import json

import pandas as pd
import pytest

from grokinterp.cli import main

TRAIN = [
    "train",
    "--preset",
    "demo",
    "--p",
    "11",
    "--epochs",
    "60",
    "--checkpoint-every",
    "20",
    "-q",
]


@pytest.fixture(scope="module")
def analysed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    assert main(["analyze", str(out), "--formats", "html", "-q"]) == 0
    return out


def one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_train_then_analyze_writes_the_promised_files(analysed_run, capsys):
    measures = pd.read_csv(analysed_run / "analysis" / "measures.csv")
    for col in [
        "epoch",
        "train_loss",
        "test_loss",
        "train_acc",
        "test_acc",
        "restricted_loss",
        "excluded_loss",
        "gini_embed",
        "gini_logit",
        "sum_sq_weights",
    ]:
        assert col in measures.columns
    assert measures["epoch"].tolist()[-1] == 60
    summary = json.loads((analysed_run / "analysis" / "summary.json").read_text())
    for key in [
        "key_frequencies",
        "fraction_neurons_explained",
        "first_epoch_train_acc_0.99",
        "first_epoch_test_acc_0.99",
    ]:
        assert key in summary
    metrics = pd.read_csv(analysed_run / "metrics.csv")
    hit = metrics.loc[metrics.train_acc >= 0.99, "epoch"]
    assert summary["first_epoch_train_acc_0.99"] == (int(hit.iloc[0]) if len(hit) else None)
    # The analysis recomputes the logged train loss of the final weights.
    assert measures["train_loss"].iloc[-1] == pytest.approx(
        metrics["train_loss"].iloc[-1], rel=1e-5
    )
    assert list((analysed_run / "analysis" / "figures").glob("*.html"))


@pytest.mark.parametrize(
    "flag,value,needle",
    [
        ("--p", "2", "--p"),
        ("--p", "x", "integer"),
        ("--train-frac", "1.0", "--train-frac"),
        ("--train-frac", "0", "--train-frac"),
        ("--lr", "-1", "--lr"),
        ("--epochs", "0", "--epochs"),
        ("--weight-decay", "-0.1", "--weight-decay"),
        ("--preset", "nanda", "invalid choice"),
        ("--lr", "inf", "--lr"),
    ],
)
def test_bad_train_flags(capsys, tmp_path, flag, value, needle):
    with pytest.raises(SystemExit) as exc:
        main(["train", flag, value, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "--help" in err
    assert not (tmp_path / "x").exists()


def test_analyze_missing_path(capsys, tmp_path):
    one_line_error(capsys, ["analyze", str(tmp_path / "nope")], "does not exist")


def test_analyze_a_directory_that_is_not_a_run(capsys, tmp_path):
    (tmp_path / "some.txt").write_text("hello")
    one_line_error(capsys, ["analyze", str(tmp_path)], "not a grokinterp run", "config.json")
    one_line_error(capsys, ["analyze", str(tmp_path / "some.txt")], "is a file")


def test_analyze_a_damaged_config(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    one_line_error(capsys, ["analyze", str(tmp_path)], "not valid JSON")


def test_truncated_checkpoint_fails_cleanly_and_keeps_the_old_analysis(
    analysed_run, capsys, tmp_path
):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(analysed_run, run)
    before = {p.name: p.read_bytes() for p in (run / "analysis").iterdir() if p.is_file()}
    ckpt = run / "checkpoints" / "epoch_000040.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    one_line_error(capsys, ["analyze", str(run), "-q"], "epoch_000040.safetensors", "unreadable")
    after = {p.name: p.read_bytes() for p in (run / "analysis").iterdir() if p.is_file()}
    assert after == before


def test_checkpoint_from_another_model_is_named(analysed_run, capsys, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    run = tmp_path / "run"
    shutil.copytree(analysed_run, run)
    ckpt = run / "checkpoints" / "epoch_000020.safetensors"
    state = load_file(ckpt)
    state["embed.W_E"] = state["embed.W_E"][:, :5].contiguous()
    save_file(state, ckpt)
    one_line_error(capsys, ["analyze", str(run), "-q"], "does not fit", "embed.W_E")


def test_train_refuses_to_overwrite_a_run(analysed_run, capsys):
    before = (analysed_run / "metrics.csv").read_bytes()
    one_line_error(capsys, [*TRAIN, "--out", str(analysed_run)], "already holds a run", "--resume")
    assert (analysed_run / "metrics.csv").read_bytes() == before


def test_resume_errors(analysed_run, capsys, tmp_path):
    one_line_error(capsys, ["train", "--resume", str(analysed_run)], "already finished")
    one_line_error(capsys, ["train", "--resume", str(tmp_path / "nope")], "does not exist")
    one_line_error(capsys, ["train", "--resume", str(analysed_run), "--p", "7"], "drop --p")


def test_unusable_devices_are_one_line_errors_and_write_nothing(capsys, tmp_path, analysed_run):
    import torch

    if not torch.cuda.is_available():
        one_line_error(capsys, [*TRAIN, "--device", "cuda", "--out", str(tmp_path / "c")], "cuda")
        assert not (tmp_path / "c").exists()
    one_line_error(capsys, [*TRAIN, "--device", "tpu9", "--out", str(tmp_path / "t")], "device")
    assert not (tmp_path / "t").exists()
    one_line_error(capsys, ["analyze", str(analysed_run), "--device", "foo"], "device")


def test_out_under_a_file_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    one_line_error(capsys, [*TRAIN, "--out", str(tmp_path / "afile" / "sub")], "afile")


def test_damaged_metrics_is_a_one_line_error(analysed_run, capsys, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(analysed_run, run)
    (run / "metrics.csv").write_text('"unclosed\n1,2\n')
    one_line_error(capsys, ["analyze", str(run), "-q"], "metrics.csv")


def test_interrupted_figure_export_leaves_measures_and_summary_consistent(
    analysed_run, capsys, tmp_path, monkeypatch
):
    # Fewer checkpoints than the stored analysis describes, then Ctrl-C while the
    # figures are exported: measures.csv and summary.json must describe the same run.
    import shutil

    import grokinterp.figures as figures

    run = tmp_path / "run"
    shutil.copytree(analysed_run, run)
    (run / "checkpoints" / "epoch_000040.safetensors").unlink()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(figures, "save_figures", interrupted)
    assert main(["analyze", str(run), "-q"]) == 130
    capsys.readouterr()
    measures = pd.read_csv(run / "analysis" / "measures.csv")
    summary = json.loads((run / "analysis" / "summary.json").read_text())
    assert 40 not in set(measures["epoch"])
    assert summary["n_checkpoints"] == len(measures)


def test_diverged_run_is_analysed_without_phases(capsys, tmp_path):
    out = tmp_path / "nan"
    argv = ["train", "--preset", "demo", "--p", "11", "--epochs", "30", "--lr", "1000", "-q"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "diverged" in capsys.readouterr().err
    assert main(["analyze", str(out), "--no-figures", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "phases: not detected" in printed and "train loss nan" in printed
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert "phases" not in summary and "diverged" in summary["phases_text"]
