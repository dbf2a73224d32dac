#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): every CUDA path, at most about 10 minutes on one GPU,
# one JSON of figures. On a machine without CUDA it says what it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 benchmarks/gpu_check.py "$@"
