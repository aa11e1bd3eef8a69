#!/usr/bin/env bash
# Serve a kernsurf database read-only with Datasette: scripts/serve.sh DB [datasette serve options...]
#
# A wrapper over `kernsurf serve` (ingest/web/serve.py): when DB is newer than its
# inspect file, it refills the name search index and writes DB.inspect.json
# with `datasette inspect`; then it serves DB immutable (-i: no writes, hashed
# counts from the inspect file, the .db downloadable from the database page).
# Environment: HOST (127.0.0.1), PORT (8001), PREPARE_ONLY=1 to stop before serving.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 DB [datasette serve options...]" >&2
    exit 2
fi
db=$1
shift

root=$(cd "$(dirname "$0")/.." && pwd)
# The Makefile's virtualenv when there is one, else whatever is on PATH.
if [ -x "$root/.venv/bin/kernsurf" ]; then
    kernsurf=$root/.venv/bin/kernsurf
else
    kernsurf=kernsurf
fi
prepare=()
if [ "${PREPARE_ONLY:-0}" = 1 ]; then
    prepare=(--prepare-only)
fi
exec "$kernsurf" serve "$db" --host "${HOST:-127.0.0.1}" --port "${PORT:-8001}" "${prepare[@]}" "$@"
