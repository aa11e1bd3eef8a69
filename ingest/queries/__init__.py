"""The read layer: every SELECT that check, diff, the pages and the CLI run,
one module per entity. Rows come back as NamedTuples (one record type per row
shape), never as bare sqlite3 tuples.

- ``builds``: the stored builds, what each records, their counts; groups and members.
- ``functions``: functions per build, attachability, instances, callers, symbols, prototypes.
- ``types``: named structs, unions and enums, their layouts, type texts.
- ``surfaces``: trace events, syscalls, LSM hooks, kfuncs, variables, config options.
- ``modules``: loadable modules, their dependencies and kfuncs, an item's module.
- ``changes``: the pairs groups compare, stored pairs, the change vocabulary, stored changes.
- ``names``: name ids and name search.
- ``database``: the tables and the columns later schemas added (what a database records).
"""
