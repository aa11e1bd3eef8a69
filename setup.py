"""Build hook: copy the top-level files kernsurf ships (schema.sql, and
metadata.yml, templates/, plugins/ for Datasette) into the package of a wheel;
and build the optional C DIE walk (ingest/readers/_dwarfwalk.c): without a
compiler or Python's headers the build warns and the pure-Python walk runs.

The top-level files stay the one source; ingest/resources.py finds the copies
in an installed wheel and the originals in a checkout or an editable install.
Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: top-level file or directory -> where it goes inside the ingest package (as ingest.resources.PACKAGED).
SHIPPED = {
    "schema.sql": "schema.sql",
    "metadata.yml": "_datasette/metadata.yml",
    "templates": "_datasette/templates",
    "plugins": "_datasette/plugins",
}


class BuildPyWithData(build_py):
    """build_py that also writes the shipped files under build_lib/ingest/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the top-level files
            return
        package = Path(self.build_lib) / "ingest"
        for source, target in SHIPPED.items():
            src, dst = ROOT / source, package / target
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)


class OptionalBuildExt(build_ext):
    """build_ext whose failure (no compiler, no Python.h) is a warning: the C walk is optional."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # distutils raises several kinds (platform, compile, exec)
            print(f"warning: the C DWARF walk was not built ({exc}); kernsurf uses the Python walk")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"warning: {ext.name} was not built ({exc}); kernsurf uses the Python walk")


DWARFWALK = Extension(
    "ingest.readers._dwarfwalk",
    sources=["ingest/readers/_dwarfwalk.c"],
    extra_compile_args=["-O2"],
    optional=True,
)

setup(
    cmdclass={"build_py": BuildPyWithData, "build_ext": OptionalBuildExt},
    ext_modules=[DWARFWALK],
)
