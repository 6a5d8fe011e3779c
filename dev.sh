#!/usr/bin/env bash
# One entry point for a fresh clone. It installs what it needs, then runs:
#   ./dev.sh demo   the service (SQLite + local Ray) with a demo study, at http://127.0.0.1:8000
#   ./dev.sh test   the whole test suite (installs PostgreSQL and Chromium from the distribution first)
#   ./dev.sh lint   ruff
set -euo pipefail
cd "$(dirname "$0")"
VENV=${OPTFORGE_VENV:-.venv}
PY=${PYTHON:-python3}

setup_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "optforge needs Python >= 3.11"'
    "$PY" -m venv "$VENV"
  fi
  # Reinstall only when the dependency list changed: a no-op run costs a hash, not a pip resolve.
  local stamp="$VENV/.optforge-installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[all,test]"
    echo "$want" > "$stamp"
  fi
}

case "${1:-}" in
  demo)
    shift
    setup_python
    exec "$VENV/bin/optforge" demo "$@"
    ;;
  test)
    shift
    bash scripts/install-system-deps.sh
    setup_python
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  lint)
    setup_python
    "$VENV/bin/ruff" check optforge tests benchmarks examples
    "$VENV/bin/ruff" format --check optforge tests benchmarks examples
    ;;
  *)
    echo "usage: ./dev.sh demo | test [pytest args] | lint" >&2
    exit 2
    ;;
esac
