"""The writer: every write kernsurf makes to its database, each in one `transaction()`.
Reads live in ingest/queries/.

- `connection`: open a database for writing (created, migrated) or read-only;
- `schema`: schema.sql and the migrations from older schemas, in one place;
- `store`: store one build, one transaction over the writers of each table family:
  `builds`, `modules`, `functions` (instances, callers, functions, prototypes),
  `symbols`, `types` (types and layouts), `surfaces`; `sql` holds what they share;
- `counts`: the per-build counts build_summary reads;
- `delete`: remove a build and the shared rows no other build uses;
- `groups`, `changes`, `search`: the manifests' groups, stored differences, the search index;
- `merge`: add the builds of another database (a shard built elsewhere).
"""

from ingest.db.changes import ChangeRow, delete_diff_pairs, set_pair_group, store_diff
from ingest.db.connection import connect, database_error, open_readonly
from ingest.db.counts import SUMMARY_COUNTS, store_counts
from ingest.db.delete import delete_build, delete_builds
from ingest.db.groups import store_groups
from ingest.db.merge import MergeResult, merge
from ingest.db.schema import SCHEMA_VERSION, schema_sql
from ingest.db.search import build_search_index
from ingest.db.sql import transaction, version_sort
from ingest.db.store import store_build

__all__ = [
    "SCHEMA_VERSION",
    "SUMMARY_COUNTS",
    "ChangeRow",
    "MergeResult",
    "build_search_index",
    "connect",
    "database_error",
    "delete_build",
    "delete_builds",
    "delete_diff_pairs",
    "merge",
    "open_readonly",
    "schema_sql",
    "set_pair_group",
    "store_build",
    "store_counts",
    "store_diff",
    "store_groups",
    "transaction",
    "version_sort",
]
