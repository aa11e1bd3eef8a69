"""Where a build's facts come from when they do not come from one debug image:
the running system (`running`), BTFHub archives (`btfhub`), and the record of
which source gave each kind of fact (`facts`, the `build_sources` table)."""
