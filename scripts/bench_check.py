#!/usr/bin/env python3
"""`kernsurf check` benchmark: read a BPF object and check it against every
build of a database. Usage: bench_check.py DB [PROG.bpf.o] [--repeat 5]

Without an object, compiles tests/fixtures/check/real.bpf.c with clang (a
program with 21 dependencies of every kind). Prints the time to read the
object, the time to evaluate it against all builds (best and median of
--repeat runs), per build, and the verdict counts; peak RSS at the end."""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import db  # noqa: E402 (after the sys.path line)
from ingest.bpf import check, objects  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("object", type=Path, nargs="?")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not args.db.exists():
        sys.exit(f"no database at {args.db}")
    with tempfile.TemporaryDirectory() as tmp:
        obj = args.object
        if obj is None:
            if shutil.which("clang") is None:
                sys.exit("give a BPF object, or install clang and libbpf-dev (make system-deps)")
            obj = Path(tmp) / "real.bpf.o"
            subprocess.run(
                [
                    "clang",
                    "-target",
                    "bpf",
                    "-g",
                    "-O2",
                    "-c",
                    str(ROOT / "tests" / "fixtures" / "check" / "real.bpf.c"),
                    "-o",
                    str(obj),
                ],
                check=True,
            )
        start = time.perf_counter()
        deps = check.merge(objects.read_bpf_object(obj).dependencies)
        read_ms = (time.perf_counter() - start) * 1000
    conn = db.open_readonly(args.db)
    times: list[float] = []
    report = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        report = check.evaluate(conn, deps)
        times.append(time.perf_counter() - start)
    assert report is not None
    n = len(report.columns)
    counts = report.counts()
    print(f"database {args.db}: {args.db.stat().st_size / 1e6:.0f} MB, {n} builds")
    print(f"object {obj.name}: {len(deps)} dependencies, read in {read_ms:.1f} ms")
    print(
        f"check against all {n} builds: best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms"
        f" ({min(times) * 1000 / max(n, 1):.1f} ms per build, {args.repeat} runs)"
    )
    print("verdicts: " + ", ".join(f"{counts[lv]} {lv}" for lv in check.LEVELS))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
