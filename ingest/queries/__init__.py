"""The read layer: every SELECT that check, diff, the pages and the CLI run.

Rows come back as NamedTuples, never as bare sqlite3 tuples.  Modules:

- ``builds``: builds, groups, the pairs a group compares, change kinds.
- ``diff``: what the diff step reads (function states, surfaces, types).
- ``check``: what ``kernsurf check`` reads (owned by another helper).
- ``pages`` and ``search``: what the web pages read (owned by another helper).
"""
