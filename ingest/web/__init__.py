"""kernsurf's web pages without a server: page builders that take a
sqlite3.Connection (and the page's parameters) and return the template context.

- ``context``: builds, groups and URLs every page shares (``load_context``, ``Links``).
- ``timeline``: the groups x builds loop -- status lines and strip cells -- written once.
- ``items``: the function, struct and surface pages (``function_page``, ``struct_page``, ``surface_page``).
- ``overview``: the builds summary, the status matrix and the name search.
- ``modules``: /module/<name>, one loadable module across builds.
- ``diff``: the page of two builds' differences; ``check``: the /check form and report.
- ``charts``: SVG geometry; ``forms``: multipart bodies and upload limits; ``cache``: the page LRU.
- ``uploads``: /check bodies received into a file and read in a child process within budgets;
  ``guard``: lanes for heavy requests, the public profile (docs/serving.md#limits).
- ``site``: ``Pages``, the ``ks`` object templates call, binding the builders to a Datasette.

Reads go through ingest.queries (one module per entity); plugins/kernsurf_pages.py
only holds the Datasette hooks.
"""
