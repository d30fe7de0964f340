#!/usr/bin/env bash
# GPU runner: keep the machine's own CUDA build of torch, install the rest, run every notebook on the
# gpu profile and check tests/expectations.toml. Usage: bash ci/gpu.sh [--only 00 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.get_device_name())"
make install TORCH= PYTHON="python3" VENV="${VENV:-.venv-gpu}" VENV_FLAGS=--system-site-packages
"${VENV:-.venv-gpu}/bin/python" ci/run_notebooks.py --profile gpu --check "$@"
