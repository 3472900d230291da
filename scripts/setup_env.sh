#!/usr/bin/env bash
# Create .venv (if missing) and install ares-align with its extras (control; ray, for the sweep's Ray backend
# test; tts, for DLPO text-to-speech; dev). CPU torch first so that pip does not pull a multi-GB CUDA build on
# machines without a GPU; set ARES_TORCH to choose another torch spec. DeepSpeed (the `deepspeed` extra) is a
# source package: it is installed after torch, without build isolation and without prebuilt ops, so it builds
# against this torch instead of pulling its own (the launch tests run ZeRO-2/3 on CPU with it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${ARES_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[control,ray,tts,track,dev]"
DS_BUILD_OPS=0 .venv/bin/python -m pip install -q --no-build-isolation "deepspeed>=0.16"
