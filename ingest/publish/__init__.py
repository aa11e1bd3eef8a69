"""Publishing a database for download and downloading it:

- `artefact`: `kernsurf publish` -- a compact copy with its search index, its zstd
  file, its table counts for Datasette and manifest.json, and the rule of which
  kernsurf reads a publication;
- `pull`: `kernsurf pull` -- the resumable, checked download that never leaves a
  partial database.
"""
