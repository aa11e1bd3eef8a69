"""Fetching kernel debug images from distribution archives and servers.

One module per source, each resolving a package (or build-id) and fetching
it into the shared cache: debian.py (resolve, list_debug_kernels, fetch),
ubuntu.py (ddebs), rpm.py (yum repositories: repomd.xml, primary, the RPM
payload through libarchive) and debuginfod.py (by build-id). Below them:
deb.py streams files out of a .deb, modules.py keeps a package's modules
zstd-compressed, index.py caches APT Packages indexes, store.py owns the
cache layout, its locks and the verified fetch, sources.py picks the mirror,
net.py wraps urllib. Their errors are ingest.errors.ArchiveError's subclasses.
"""
