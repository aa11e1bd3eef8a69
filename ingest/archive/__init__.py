"""Fetching kernel debug images from distribution archives.

debian.py (resolve, list_debug_kernels, fetch) is the entry point; ubuntu.py
has the same shape (untested against the real service). Below them: deb.py
streams files out of a .deb, modules.py keeps its modules zstd-compressed,
index.py caches APT Packages indexes,
store.py owns the cache layout and the verified fetch, sources.py picks the
mirror, net.py wraps urllib, errors.py holds the domain exceptions (all
subclasses of ArchiveError).
"""
