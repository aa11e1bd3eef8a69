#!/usr/bin/env python3
"""`kernsurf check` benchmark: the whole CLI run (`kernsurf check OBJECTS
--db DB --format json`, a new process each time) and, in process, the time
to read the objects and to evaluate them against every build.

Usage: bench_check.py DB [OBJECT_OR_DIR ...] [--repeat 3]

A directory stands for its *.bpf.o (e.g. the 52 libbpf-tools objects that
tests/test_corpus.py extracts). Without objects, compiles
tests/fixtures/check/real.bpf.c with clang. Prints best and median wall
time and CPU time of the CLI run, the split, and the verdict counts."""

from __future__ import annotations

import argparse
import json
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

sys.path.insert(0, str(ROOT / "scripts"))
from bench_storage import anchor_line  # noqa: E402


def _objects(args: list[Path], tmp: Path) -> list[Path]:
    found: list[Path] = []
    for arg in args:
        found += sorted(arg.glob("*.bpf.o")) if arg.is_dir() else [arg]
    if found:
        return found
    if shutil.which("clang") is None:
        sys.exit("give BPF objects, or install clang and libbpf-dev (make system-deps)")
    out = tmp / "real.bpf.o"
    source = ROOT / "tests" / "fixtures" / "check" / "real.bpf.c"
    subprocess.run(["clang", "-target", "bpf", "-g", "-O2", "-c", str(source), "-o", str(out)], check=True)
    return [out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("objects", type=Path, nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.db.exists():
        sys.exit(f"no database at {args.db}")
    kernsurf = Path(sys.executable).parent / "kernsurf"
    command = [str(kernsurf)] if kernsurf.exists() else [sys.executable, "-m", "ingest.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        objs = _objects(args.objects, Path(tmp))
        walls, cpus = [], []
        out = ""
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(
                [*command, "check", *map(str, objs), "--db", str(args.db), "--format", "json"],
                capture_output=True,
                text=True,
            )
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if proc.returncode != 0:
                sys.exit(proc.stderr)
            out = proc.stdout
        start = time.perf_counter()
        deps = check.merge([d for o in objs for d in objects.read_bpf_object(o).dependencies])
        read_s = time.perf_counter() - start
    conn = db.open_readonly(args.db)
    start = time.perf_counter()
    report = check.evaluate(conn, deps)
    eval_s = time.perf_counter() - start
    counts = json.loads(out)["counts"]
    n = len(report.columns)
    print(f"database {args.db}: {args.db.stat().st_size / 1e6:.0f} MB, {n} builds")
    print(f"{len(objs)} objects, {len(deps)} dependencies")
    print(
        f"kernsurf check (whole CLI run): best {min(walls):.2f} s, median {statistics.median(walls):.2f} s"
        f" wall; best {min(cpus):.2f} s CPU ({args.repeat} runs)"
    )
    print(
        f"in process: read objects {read_s:.2f} s, evaluate {eval_s:.2f} s ({eval_s * 1000 / max(n, 1):.0f} ms per build)"
    )
    print("verdicts: " + ", ".join(f"{counts[lv]} {lv}" for lv in check.LEVELS))
    print(anchor_line(args.db, {"check wall": min(walls), "evaluate": eval_s}))


if __name__ == "__main__":
    main()
