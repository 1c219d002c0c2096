"""Saving figures: HTML always works; PNG, PDF, SVG need a Chrome-family browser.

HTML is written by plotly alone and opens offline either way:

- ``save_figure`` embeds plotly.js in the file (about 4.7 MB each), so the file can be
  moved or mailed alone;
- ``save_figures`` (a folder of figures, as the CLI writes) by default writes one shared
  ``plotly.min.js`` next to the files and has each page load it from there, so twelve
  figures cost about 5 MB instead of about 60 MB; the folder must stay together. Pass
  ``include_plotlyjs=True`` to embed it instead.

Static formats go through kaleido 1.x, which drives a headless Chrome or Chromium over
a pipe (via choreographer). ``find_chrome`` looks for the browser in the order kaleido
itself would, and the path it finds is handed to kaleido explicitly, so detection and
use cannot disagree:

1. ``BROWSER_PATH``, choreographer's own override (ignored, with a warning, when it is
   not an executable file; kaleido would fail on it);
2. choreographer's search: the copy ``plotly_get_chrome`` / ``kaleido_get_chrome``
   downloads, then the chrome, chromium, edge, brave names on PATH and their usual
   install paths (e.g. /usr/bin/chromium);
3. our own PATH search for the common names, in case choreographer's API moves.

Without a browser the static formats are skipped with a logged warning that says how
to get one (``save_figures`` also returns it); nothing is half written. One browser
session renders all the figures of a ``save_figures`` call: starting Chromium costs a
few seconds, each image then a fraction of a second. MathJax is switched off (the
figures use no LaTeX; kaleido would otherwise load it from a CDN), so the browser
fetches nothing from the network. Every file is written to a temporary name in its
folder and renamed into place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from grokinterp.errors import GrokinterpError
from grokinterp.runs import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

STATIC_FORMATS = ("png", "pdf", "svg", "jpeg", "webp")
FORMATS = ("html", *STATIC_FORMATS)
DEFAULT_FORMATS = ("html", "png", "pdf")
DEFAULT_SCALE = 2.0
RENDER_TIMEOUT_S = 120.0

_CHROME_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_HTML_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "svg"}}


class FigureExportError(GrokinterpError):
    """A browser was found but kaleido could not render with it."""


NO_NETWORK = "http://127.0.0.1:9"


def _is_executable(path: str | os.PathLike | None) -> bool:
    return bool(path) and Path(path).is_file() and os.access(path, os.X_OK)


def find_chrome() -> str | None:
    """Path of the Chrome or Chromium that static export will use, or None.

    Returns:
        An executable path, searched as described in the module docstring.
    """
    override = os.environ.get("BROWSER_PATH")
    if override:
        if _is_executable(override):
            return override
        log.warning("BROWSER_PATH=%r is not an executable file; ignoring it", override)
    candidates: list[str | None] = []
    try:
        from choreographer.browsers.chromium import Chromium

        candidates.append(Chromium.find_browser(skip_local=False))
    except (ImportError, AttributeError, TypeError, RuntimeError, OSError) as exc:
        log.debug("choreographer's browser search failed (%s); searching PATH", exc)
    candidates.extend(shutil.which(name) for name in _CHROME_NAMES)
    return next((str(c) for c in candidates if _is_executable(c)), None)


def static_export_available() -> bool:
    """True when a Chrome or Chromium was found, so PNG, PDF and SVG can be written.

    Only the browser's presence is checked (cheap); whether it starts is known when
    ``render_static`` runs, which raises ``FigureExportError`` if it does not.
    """
    return find_chrome() is not None


def static_skip_message(formats: Iterable[str] = ("png", "pdf")) -> str:
    """The warning logged when static formats are skipped; the CLI may print it."""
    names = "/".join(f.upper() for f in formats)
    return (
        f"{names} skipped: no Chrome or Chromium found. kaleido 1.x renders static images "
        "with a local Chrome-family browser: install one (Debian/Ubuntu: apt-get install "
        "chromium), or run `plotly_get_chrome -y` to download Chrome for Testing, or set "
        "BROWSER_PATH to the browser executable. HTML files are still written."
    )


def _check_formats(formats: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(formats, str):  # "png" is one format, not three letters
        formats = (formats,)
    out = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    unknown = [f for f in out if f not in FORMATS]
    if unknown or not out:
        found = unknown or "none"
        raise ValueError(f"unknown figure format(s): {found}; choose from {FORMATS}")
    return out


def _stem(path: str | os.PathLike) -> Path:
    """``path`` without a known format suffix: ``out/loss.png`` -> ``out/loss``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower().lstrip(".") in FORMATS else path


def write_html(fig: go.Figure, path: Path, include_plotlyjs: bool | str = True) -> Path:
    """Write ``fig`` as a standalone HTML file, atomically.

    Args:
        fig: the figure.
        path: target file (``.html``).
        include_plotlyjs: True embeds plotly.js; ``"directory"`` references
            ``plotly.min.js`` in the same folder (see ``write_plotlyjs``); ``"cdn"``
            loads it from the network when the file is opened.

    Returns:
        ``path``.
    """
    html = fig.to_html(include_plotlyjs=include_plotlyjs, full_html=True, config=_HTML_CONFIG)
    atomic_write_text(path, html)
    return path


def write_plotlyjs(folder: Path) -> Path:
    """Write the installed plotly.js as ``folder/plotly.min.js``, for ``"directory"`` HTML.

    Always rewritten, so the script matches the plotly that wrote the figures.
    """
    path = folder / "plotly.min.js"
    atomic_write_text(path, get_plotlyjs())
    return path


class _Stopped(Exception):
    """Raised inside the export session when the caller was interrupted."""


def render_static(
    jobs: list[tuple[go.Figure, str, Path]],
    chrome: str,
    scale: float = DEFAULT_SCALE,
) -> list[Path]:
    """Render every (figure, format, path) job in one kaleido browser session.

    Runs on a private thread with its own event loop, so it also works where a loop is
    already running (Jupyter).

    Args:
        jobs: figure, static format and target file of each image.
        chrome: browser executable, e.g. from ``find_chrome``.
        scale: pixel ratio for raster formats (2 gives print-quality PNGs).

    Returns:
        The files written, in job order.

    Raises:
        FigureExportError: the browser could not be started or an image failed.
    """
    import kaleido

    async def session() -> list[bytes]:
        images = []
        # Everything the page needs is local (plotly.js from the plotly package, MathJax
        # off). Chromium still contacts its vendor's services on its own, so all of its
        # HTTP traffic goes to a closed loopback port: nothing leaves the machine.
        opts = dict(
            n=1, timeout=RENDER_TIMEOUT_S, mathjax=False, path=chrome, proxy_server=NO_NETWORK
        )
        async with kaleido.Kaleido(**opts) as k:
            for fig, fmt, _ in jobs:
                if stop.is_set():  # Ctrl-C in the caller: close the browser now
                    raise _Stopped
                images.append(await k.calc_fig(fig, opts={"format": fmt, "scale": scale}))
        return images

    start = time.perf_counter()
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaleido")
    try:
        images = pool.submit(lambda: asyncio.run(session())).result()
    except KeyboardInterrupt:
        stop.set()  # the session ends after the image being rendered
        raise
    except Exception as exc:  # kaleido and choreographer raise many unrelated types
        raise FigureExportError(
            f"static export with {chrome} failed ({type(exc).__name__}: {exc}); HTML files, "
            "if asked for, were written first. Check that the browser runs headless (`chromium "
            "--headless --version`), or point BROWSER_PATH at another Chrome or Chromium"
        ) from exc
    finally:
        pool.shutdown(wait=True)
    # Written only once every image rendered, so a failure leaves no mixed set.
    for (_, _, path), data in zip(jobs, images, strict=True):
        atomic_write_bytes(path, data)
    log.info("rendered %d static images in %.1f s", len(jobs), time.perf_counter() - start)
    return [path for _, _, path in jobs]


def save_figures(
    figs: Mapping[str, go.Figure],
    out_dir: str | os.PathLike,
    formats: Iterable[str] = DEFAULT_FORMATS,
    scale: float = DEFAULT_SCALE,
    include_plotlyjs: bool | str = "directory",
) -> tuple[list[Path], str | None]:
    """Write many figures to ``out_dir/<name>.<format>``, static ones in one session.

    Args:
        figs: name -> figure (e.g. from ``standard_figures``).
        out_dir: folder, created if needed.
        formats: any of ``FORMATS``. Static formats are skipped, with a warning, when
            no browser is found; HTML is then written even if not asked for, so every
            figure leaves a file.
        scale: pixel ratio of raster images.
        include_plotlyjs: see ``write_html``; by default one shared plotly.min.js.

    Returns:
        (files written, note): the note is ``static_skip_message(...)`` when static
        formats were skipped, for the caller to show or store, else None.

    Example:
        >>> files, note = save_figures(standard_figures(run, analysis), "out")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _save(
        [(fig, out_dir / name) for name, fig in figs.items()], formats, scale, include_plotlyjs
    )


def save_figure(
    fig: go.Figure,
    path: str | os.PathLike,
    formats: Iterable[str] = DEFAULT_FORMATS,
    scale: float = DEFAULT_SCALE,
    include_plotlyjs: bool | str = True,
) -> list[Path]:
    """Write one figure as ``path.<format>`` for each format.

    Args:
        fig: the figure.
        path: target without suffix (a known suffix such as ``.png`` is dropped).
        formats, scale: as in ``save_figures``.
        include_plotlyjs: see ``write_html``; by default plotly.js is embedded.

    Returns:
        The files written, e.g. ``[loss.html, loss.png, loss.pdf]``; skipped static
        formats are missing from it and logged as a warning.

    Example:
        >>> save_figure(loss_curves(run.metrics), "figures/loss")  # doctest: +SKIP
    """
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    return _save([(fig, stem)], formats, scale, include_plotlyjs)[0]


def _save(
    items: list[tuple[go.Figure, Path]],
    formats: Iterable[str],
    scale: float,
    include_plotlyjs: bool | str,
) -> tuple[list[Path], str | None]:
    formats = _check_formats(formats)
    static = [f for f in formats if f in STATIC_FORMATS]
    chrome = find_chrome() if static else None
    note = None
    if static and chrome is None:
        note = static_skip_message(static)
        log.warning(note)
        if "html" not in formats:
            formats = ("html", *formats)
        static = []
    written = []
    if "html" in formats and include_plotlyjs == "directory":
        written += [write_plotlyjs(folder) for folder in dict.fromkeys(s.parent for _, s in items)]
    if "html" in formats:
        written += [
            write_html(fig, _with_format(stem, "html"), include_plotlyjs) for fig, stem in items
        ]
    if static:
        jobs = [(fig, fmt, _with_format(stem, fmt)) for fig, stem in items for fmt in static]
        written += render_static(jobs, chrome, scale)
    return written, note


def _with_format(stem: Path, fmt: str) -> Path:
    return stem.with_name(f"{stem.name}.{fmt}")
