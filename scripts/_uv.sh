# Sourced by scripts/run and scripts/test: make sure uv is there and the locked environment is built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! uv --version >/dev/null 2>&1; then
    echo "==> installing uv" >&2
    python3 -m pip install --quiet uv
    command -v pyenv >/dev/null 2>&1 && pyenv rehash
    hash -r
fi
uv sync --frozen --quiet
export UV_FROZEN=1
