#!/usr/bin/env bash
# Serve a kernsurf database read-only with Datasette: scripts/serve.sh DB [datasette serve options...]
#
# Before serving, when DB is newer than its inspect file: fill the name search
# index (ingest.db.build_search_index) and write DB.inspect.json with
# `datasette inspect`. Then serve immutable (-i: no writes, hashed counts from
# the inspect file, the .db downloadable from the database page).
# Environment: HOST (127.0.0.1), PORT (8001), PREPARE_ONLY=1 to stop before serving.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 DB [datasette serve options...]" >&2
    exit 2
fi
db=$1
shift
if [ ! -f "$db" ]; then
    echo "$0: no database at $db (build one with: kernsurf build manifests/default.yml --db $db)" >&2
    exit 1
fi

root=$(cd "$(dirname "$0")/.." && pwd)
# The Makefile's virtualenv when there is one, else whatever is on PATH.
if [ -x "$root/.venv/bin/datasette" ]; then
    python=$root/.venv/bin/python
    datasette=$root/.venv/bin/datasette
else
    python=python3
    datasette=datasette
fi

# metadata.yml describes the database "kernels": serve any other file name under that name.
name=$(basename "$db")
if [ "${name%.db}" != "kernels" ]; then
    link_dir=$(mktemp -d)
    trap 'rm -rf "$link_dir"' EXIT
    ln -s "$(cd "$(dirname "$db")" && pwd)/$name" "$link_dir/kernels.db"
    served="$link_dir/kernels.db"
else
    served=$db
fi
inspect="${db%.db}.inspect.json"

if [ ! -f "$inspect" ] || [ "$db" -nt "$inspect" ]; then
    echo "preparing $db: search index, then $inspect" >&2
    "$python" -c 'import sys; from ingest import db; n = db.build_search_index(db.connect(sys.argv[1])); print(f"search index: {n} names", file=sys.stderr)' "$db"
    "$datasette" inspect "$served" --inspect-file "$inspect"
fi
if [ "${PREPARE_ONLY:-0}" = 1 ]; then
    exit 0
fi

"$datasette" serve -i "$served" \
    --inspect-file "$inspect" \
    --metadata "$root/metadata.yml" \
    --template-dir "$root/templates" \
    --plugins-dir "$root/plugins" \
    --host "${HOST:-127.0.0.1}" --port "${PORT:-8001}" \
    --setting sql_time_limit_ms 3000 \
    --setting max_returned_rows 5000 \
    --setting default_cache_ttl 86400 \
    --setting allow_download on \
    --setting allow_csv_stream on \
    --setting num_sql_threads 3 \
    --setting suggest_facets off \
    "$@"
