"""What the tests share, so that no test imports another:

- tools: run one build step of a fixture, skipping when its program is not installed;
- programs: the C fixtures compiled the way a kernel build compiles them;
- modules: module-like objects (gcc -c, ld -r) and trees of them;
- kernel: the cached real Debian kernels, the 6.1.0-56 modules (a chosen few as a tree), the kfunc oracle;
- btf: BTF blobs from real producers and a small BTF writer;
- mirror: a fake Debian archive served on loopback;
- site: the frontend fixture database, Datasette in process, a server started on a free port;
- qemu: Debian's booting kernel and the serial console of a QEMU boot, read back;
- checkout: the sources as the sdist holds them, copied (a wheel, the GitHub action);
- cli: `kernsurf ingest` failing as a bad input must.

Shared pytest fixtures (program, program_db, real_kernel, kernel_db, module_db, the fake
mirror's, elves) are in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
