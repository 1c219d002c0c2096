"""``grokinterp report``: the page's content, the command, and the page in headless Chromium.

The browser test opens the page from disk with Chromium's own flags only (no new Python
dependency): ``--dump-dom`` prints the DOM once the scripts have run, ``--enable-logging``
writes every console message to stderr, and ``--log-net-log`` records every request the
network stack saw. Outgoing traffic is stopped twice over: host names do not resolve and
every proxied request goes to a closed port on loopback. A control page with a broken
script and two remote resources checks that the checks themselves still see problems.
"""

import json
import re
import subprocess

import pandas as pd
import pytest
from conftest import tiny_config
from plotly.offline import get_plotlyjs

import grokinterp
from grokinterp.cli import main
from grokinterp.figures import find_chrome
from grokinterp.report import REPORT_FILE, build_report, write_report

CHROME = find_chrome()
needs_chrome = pytest.mark.skipif(
    CHROME is None,
    reason="no Chrome or Chromium found (Debian: apt-get install chromium; or set "
    "BROWSER_PATH); the page is checked in a browser only where one is installed",
)

BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=NetworkTimeServiceQuerying,MediaRouter,OptimizationHints",
    "--no-first-run",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run that memorizes by epoch ~90 and never generalizes: one phase band."""
    out = tmp_path_factory.mktemp("report") / "run"
    return grokinterp.train(tiny_config(p=11, epochs=120), out, progress=False)


@pytest.fixture(scope="module")
def page(run):
    """The report of ``run``, written before the run was analysed."""
    assert not (run.path / "analysis").exists()
    return write_report(run, progress=False)


def browse(path, tmp_path):
    """Open ``path`` in headless Chromium; returns (DOM, console lines, page requests)."""
    net_log = tmp_path / "net.json"
    cmd = [
        CHROME,
        *BROWSER_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--log-net-log={net_log}",
        "--dump-dom",
        path.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console, page_requests(net_log)


def page_requests(net_log):
    """URLs the page asked the network stack for (Chromium's own background requests,
    which have no page as initiator, are left out). file: and data: URLs never get here."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    found = []
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] != start or "url" not in params:
            continue
        if params.get("initiator") != "not an origin":
            found.append(params["url"])
    return found


def test_report_analyses_a_fresh_run_first(run, page):
    assert page == run.path / "analysis" / REPORT_FILE
    assert (run.path / "analysis" / "measures.csv").is_file()
    summary = json.loads((run.path / "analysis" / "summary.json").read_text())
    assert summary["phases"]["memorization"][0] == 0
    # Atomic writes leave no temporary file behind.
    assert not [p for p in (run.path / "analysis").iterdir() if p.name.startswith(".")]


def test_page_embeds_plotly_once_and_links_nothing(page):
    text = page.read_text()
    assert text.count(get_plotlyjs()[:200]) == 1
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=\"(?!data:|#)", text)
    assert "@import" not in text and "url(http" not in text
    assert not re.search(r"<script[^>]*mathjax", text, re.IGNORECASE)


def test_page_shows_the_summary_phases_and_every_figure(run, page):
    text = page.read_text()
    summary = json.loads((run.path / "analysis" / "summary.json").read_text())
    for needle in [
        "modulus p",
        "epochs trained",
        "key frequencies",
        "cluster sizes",
        "neurons explained by one frequency",
        "first epoch with train accuracy &gt;= 0.99",
        "first epoch with test accuracy &gt;= 0.99",
        "first checkpoint",
        "last checkpoint",
        summary["phases_text"],
    ]:
        assert needle in text, needle
    for column in summary["final"]:
        assert f"<code>{column}</code>" in text
    start, end = summary["phases"]["memorization"]
    assert (
        f'<th>memorization</th><td class="num">{start:,}</td><td class="num">{end:,}</td>' in text
    )
    figure_ids = re.findall(r'<div id="figure-([a-z0-9_]+)"', text)
    assert len(figure_ids) >= 13 and len(set(figure_ids)) == len(figure_ids)


def test_report_reuses_a_current_analysis(run, page, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("write_analysis called although the analysis is current")

    monkeypatch.setattr("grokinterp.analysis.summary.write_analysis", fail)
    assert write_report(run, progress=False) == page


@pytest.mark.parametrize("stale", ["a checkpoint fewer", "a column fewer"])
def test_report_reanalyses_a_stale_analysis(run, page, monkeypatch, stale):
    measures_csv = run.path / "analysis" / "measures.csv"
    full = pd.read_csv(measures_csv)
    if stale == "a checkpoint fewer":  # as if analysed before the last checkpoint
        full.iloc[:-1].to_csv(measures_csv, index=False)
    else:  # as if analysed by an older grokinterp
        full.drop(columns="cos_frac_explained").to_csv(measures_csv, index=False)
    calls = []
    import grokinterp.analysis.summary as summary_module

    real = summary_module.write_analysis
    monkeypatch.setattr(
        summary_module, "write_analysis", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    write_report(run, progress=False)
    assert calls == [1]
    assert pd.read_csv(measures_csv).equals(full)


def test_build_report_escapes_text():
    summary = {"run": "/tmp/<b>", "final": {}, "initial": {}, "phases_text": "a < b"}
    text = build_report(summary, {})
    assert "<b>" not in text.split("<body>")[1]
    assert "a &lt; b" in text


def test_cli_report_prints_the_path(run, page, capsys):
    assert main(["report", str(run.path), "-q"]) == 0
    out = capsys.readouterr().out
    assert str(page) in out


@pytest.mark.parametrize("kind", ["missing", "not a run", "no checkpoints"])
def test_cli_report_errors_are_one_line(tmp_path, capsys, kind):
    target = tmp_path / "x"
    if kind == "not a run":
        target.mkdir()
    elif kind == "no checkpoints":
        grokinterp.train(tiny_config(epochs=1), target, progress=False)
        for ckpt in (target / "checkpoints").iterdir():
            ckpt.unlink()
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("grokinterp report: error:"), err


@needs_chrome
def test_page_renders_every_figure_in_chromium(page, tmp_path):
    dom, console, requests = browse(page, tmp_path)
    names = re.findall(r'<div id="figure-([a-z0-9_]+)"', page.read_text())
    assert dom.count('class="plot-container plotly"') == len(names)
    for name in names:  # plotly marks each div it has drawn, and gives it an SVG
        drawn = re.search(rf'id="figure-{name}" class="[^"]*js-plotly-plot[^"]*"', dom)
        assert drawn, f"figure {name} was not drawn"
    assert dom.count('class="main-svg"') >= len(names)
    assert console == [], "\n".join(console)
    assert requests == []


@needs_chrome
def test_browser_checks_see_errors_and_requests(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><script src="https://cdn.example.invalid/x.js"></script>'
        '</head><body><img src="http://192.0.2.1/a.png"><script>missingFunction();</script>'
        "</body></html>"
    )
    _, console, requests = browse(bad, tmp_path)
    assert any("Uncaught ReferenceError" in line for line in console), console
    assert set(requests) == {"https://cdn.example.invalid/x.js", "http://192.0.2.1/a.png"}
