#!/usr/bin/env bash
# Set up grokinterp in ./.venv: torch (CPU build first), the package with its test
# tools, and a Chromium for PNG/PDF figure export where apt-get can install one.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

# torch first, pinned, so that resolving the other packages does not pull a multi-GB
# CUDA build. torch 2.13.0 is the CPU build where a local wheel is provided; set
# TORCH_SPEC to choose another (e.g. TORCH_SPEC="torch==2.13.0" with a CUDA index).
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  pip install "${TORCH_SPEC:-torch==2.13.0}"
fi
# compat mode puts the checkout on sys.path, so Python started in the folder that
# holds the clone still imports the package and not the bare directory.
pip install -e ".[dev]" --config-settings editable_mode=compat

# Static figure export (kaleido 1.x) drives a Chrome or Chromium found on PATH.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
   && ! command -v google-chrome >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium for PNG/PDF export" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: no Chrome/Chromium found; figures will be HTML only." \
         "Install chromium (Debian: apt-get install chromium) for PNG/PDF." >&2
  fi
fi
echo "setup: done (.venv ready)" >&2
