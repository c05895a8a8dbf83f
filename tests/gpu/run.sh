#!/usr/bin/env bash
# The GPU suite on a machine with an NVIDIA GPU and its driver: NVML readings, NVENC H.264/HEVC/AV1
# encodes through the agent's engine, session and VRAM accounting, a GPU job through the farm.
# A missing GPU or driver fails here (FFRTMP_REQUIRE_GPU=1) instead of skipping as it does in CI.
# Encoders a card lacks (no NVENC on A100/H100/H200, no AV1 before Ada) still skip, by name;
# FFRTMP_REQUIRE_NVENC=1 makes those fail too. Extra arguments go to pytest.
#
#   tests/gpu/run.sh                # from the repository root, or from anywhere
#   tests/gpu/run.sh -k av1 -x
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,memory.total \
    --format=csv || echo "nvidia-smi not found; NVML alone will be asked"
if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv .venv-gpu
    .venv-gpu/bin/pip install --quiet -e '.[test]'
fi
FFRTMP_REQUIRE_GPU=1 exec .venv-gpu/bin/python -m pytest -q -ra -p no:cacheprovider tests/gpu "$@"
