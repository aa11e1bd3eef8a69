#!/usr/bin/env python3
"""Storage benchmark: where a database's bytes go, what each build adds, and what
the archive would weigh.

Usage: bench_storage.py DB [IMAGE ...] [--modules auto|none] [-j N]
                           [--archive-builds 324] [--archive-lines 70] [--no-anchor]
                           [--manifest manifests/debian.yml]

With IMAGEs (vmlinux paths, in ingest order), each is first ingested into DB
(`kernsurf ingest IMAGE --timings`, one process each; start from a missing DB
for bytes per build): the bytes it adds, in all and to each table (with its
indexes), its wall and database-write seconds and the peak RSS of its process
tree; beside each timing, the anchor measured in the same run -- `pahole -j2
--btf_encode_detached` over the same vmlinux -- and the timing as a ratio to it
(machines differ by 1.5x or more). The measurements are kept in DB.bench.json,
so a later run that adds images to the same DB (keep it beside the fetcher's
cache, not in the repository) reports every build; a build already in DB is
not ingested again.

Then, for DB: bytes per table and per index (SQLite's dbstat virtual table;
without it, by walking each b-tree's pages), per-build figures, and a
projection for the archive: `--archive-lines` first builds of a line (a new
version series, arch or flavor) at the measured mean first-of-line cost, the
rest of `--archive-builds` at the measured mean point-release cost, with
modules and without. A build is first of its line when no build ingested
before it (in DB.bench.json order) has its series (6.12 of 6.12.113+deb13-amd64),
arch and flavor (with modules, or without).

With `--manifest`, the database of that manifest with modules is projected too:
each of its builds at the measured mean of its kind (KINDS: the first build of
an empty database, a point release, a new flavor, a new arch, a new series).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- bytes per table and index


@dataclass(frozen=True)
class ObjectSize:
    """One b-tree of the database: a table or an index, the table it belongs to, its bytes."""

    name: str
    kind: str  # table | index
    table: str
    bytes: int


def has_dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
        return True
    except sqlite3.OperationalError:
        return False


def object_sizes(db: Path, use_dbstat: bool = True) -> tuple[list[ObjectSize], str]:
    """The size of every table and index of `db`, largest first, and how it was measured."""
    conn = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)
    try:
        objects = conn.execute(
            "SELECT name, type, tbl_name, rootpage FROM sqlite_master WHERE rootpage > 0"
        ).fetchall()
        if use_dbstat and has_dbstat(conn):
            pages = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
            method = "dbstat"
        else:
            sizes = btree_pages(db, {name: root for name, _, _, root in objects})
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = {name: n * page_size for name, n in sizes.items()}
            method = "b-tree page walk (no dbstat in this SQLite)"
    finally:
        conn.close()
    out = [ObjectSize(name, kind, table, pages.get(name) or 0) for name, kind, table, _ in objects]
    master = pages.get("sqlite_master") or pages.get("sqlite_schema") or 0
    out.append(ObjectSize("sqlite_schema", "table", "sqlite_schema", master))
    return sorted(out, key=lambda o: -o.bytes), method


def btree_pages(db: Path, roots: dict[str, int]) -> dict[str, int]:
    """Pages of each b-tree (name -> root page), counted by reading the file: interior,
    leaf and overflow pages, as dbstat counts them. sqlite_schema is the tree at page 1."""
    data = db.read_bytes()
    page_size = struct.unpack(">H", data[16:18])[0] or 65536
    usable = page_size - data[20]
    counts = {}
    for name, root in {**roots, "sqlite_schema": 1}.items():
        seen: set[int] = set()
        stack = [root]
        while stack:
            page = stack.pop()
            if page in seen:
                continue
            seen.add(page)
            stack += _children(data, page, page_size, usable, seen)
        counts[name] = len(seen)
    return counts


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise AssertionError("unreachable")


def _children(data: bytes, page: int, page_size: int, usable: int, seen: set[int]) -> list[int]:
    """The child pages of a b-tree page; its overflow pages are added to `seen` directly."""
    base = (page - 1) * page_size
    header = base + (100 if page == 1 else 0)
    kind = data[header]
    cells = struct.unpack(">H", data[header + 3 : header + 5])[0]
    interior = kind in (2, 5)
    pointers = header + (12 if interior else 8)
    children = [struct.unpack(">I", data[header + 8 : header + 12])[0]] if interior else []
    for k in range(cells):
        at = base + struct.unpack(">H", data[pointers + 2 * k : pointers + 2 * k + 2])[0]
        if interior:
            children.append(struct.unpack(">I", data[at : at + 4])[0])
            at += 4
            if kind == 5:  # an interior table cell holds only the key
                continue
        payload, at = _varint(data, at)
        if kind == 13:
            _, at = _varint(data, at)  # the rowid
        local = _local_size(payload, usable, table=kind == 13)
        if local < payload:
            overflow = struct.unpack(">I", data[at + local : at + local + 4])[0]
            while overflow:
                seen.add(overflow)
                off = (overflow - 1) * page_size
                overflow = struct.unpack(">I", data[off : off + 4])[0]
    return children


def _local_size(payload: int, usable: int, table: bool) -> int:
    """Bytes of a cell's payload kept on its page (SQLite's file format, section 1.6)."""
    most = usable - 35 if table else (usable - 12) * 64 // 255 - 23
    least = (usable - 12) * 32 // 255 - 23
    if payload <= most:
        return payload
    k = least + (payload - least) % (usable - 4)
    return k if k <= most else least


def per_table(sizes: list[ObjectSize]) -> list[tuple[str, int, int]]:
    """(table, bytes of the table, bytes of its indexes), largest total first."""
    tables: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for o in sizes:
        tables[o.table][0 if o.kind == "table" else 1] += o.bytes
    return sorted(((t, a, b) for t, (a, b) in tables.items()), key=lambda r: -(r[1] + r[2]))


# --------------------------------------------------------------------------- ingesting, measured


@dataclass
class BuildCost:
    """What one build's ingest cost, as DB.bench.json keeps it."""

    name: str
    image: str
    bytes_added: int
    wall: float
    write: float | None  # the "database write" phase, seconds
    rss_mb: float  # peak RSS of the ingest's process tree
    anchor: float | None  # pahole -j2 --btf_encode_detached over the same vmlinux, seconds
    modules: int | None = None  # modules read (builds.n_modules); None: vmlinux alone
    release: str | None = None
    arch: str | None = None
    flavor: str | None = None
    tables_added: dict[str, int] = field(default_factory=dict)  # bytes per table (with its indexes)


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table, its indexes included (nothing for a missing database)."""
    if not db.exists():
        return {}
    return {table: own + indexes for table, own, indexes in per_table(object_sizes(db)[0])}


def anchor_seconds(image: Path) -> float | None:
    """Seconds of `pahole -j2 --btf_encode_detached` over `image` (None without pahole)."""
    if shutil.which("pahole") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run(
            ["pahole", "-j2", "--btf_encode_detached", str(Path(tmp) / "vmlinux.btf"), str(image)],
            capture_output=True,
        )
        seconds = time.perf_counter() - start
    return seconds if proc.returncode == 0 else None


def database_anchor(db: Path) -> tuple[Path, float] | None:
    """The anchor over the vmlinux of `db`'s first build still on disk (builds.source_path):
    for the benchmarks that time reads of a database, not an ingest."""
    conn = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)
    try:
        paths = [Path(p) for (p,) in conn.execute("SELECT source_path FROM builds ORDER BY id") if p]
    finally:
        conn.close()
    for path in paths:
        if path.is_file():
            seconds = anchor_seconds(path)
            return (path, seconds) if seconds is not None else None
    return None


def anchor_line(db: Path, timings: dict[str, float]) -> str:
    """One line: the anchor and each of `timings` (seconds) as a ratio to it."""
    found = database_anchor(db)
    if found is None:
        return "anchor: none (no pahole, or no build's vmlinux on disk): timings above are not comparable"
    path, anchor = found
    ratios = ", ".join(f"{name} {seconds / anchor:.3g}x" for name, seconds in timings.items())
    return f"anchor: pahole -j2 --btf_encode_detached over {path}: {anchor:.1f} s; as ratios to it: {ratios}"


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def ingest_measured(image: Path, db: Path, modules: str, jobs: int | None) -> tuple[BuildCost | None, str]:
    """Ingest `image` into `db` in a child process; its cost (None if it was already there) and its name."""
    before, tables_before = _db_bytes(db), table_bytes(db)
    cmd = [sys.executable, "-m", "ingest", "ingest", str(image), "--db", str(db), "--timings"]
    cmd += ["--modules", "none"] if modules == "none" else []
    cmd += ["-j", str(jobs)] if jobs else []
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's tree alone, not earlier children
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        sys.exit(f"{image}: kernsurf ingest failed (exit {proc.returncode})\n{text}")
    name = text.split(":", 1)[0].strip()
    if "already in" in text:
        return None, name
    write = re.search(r"database write ([\d.]+) s", text)
    cost = BuildCost(
        name=name,
        image=str(image),
        bytes_added=_db_bytes(db) - before,
        wall=wall,
        write=float(write.group(1)) if write else None,
        rss_mb=usage.ru_maxrss / 1024,
        anchor=None,
    )
    after = table_bytes(db)
    cost.tables_added = {
        t: n - tables_before.get(t, 0) for t, n in after.items() if n != tables_before.get(t, 0)
    }
    return cost, name


def _identify(db: Path, costs: list[BuildCost]) -> list[BuildCost]:
    """The costs of builds still in `db`, with release, arch, flavor and modules from its builds table."""
    conn = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)
    try:
        have = {row[1] for row in conn.execute("PRAGMA table_info(builds)")}
        modules = "n_modules" if "n_modules" in have else "NULL"
        rows = conn.execute(f"SELECT name, release, arch, flavor, {modules} FROM builds").fetchall()
    finally:
        conn.close()
    known = {name: rest for name, *rest in rows}
    for c in costs:
        if c.name in known:
            c.release, c.arch, c.flavor, c.modules = known[c.name]
    return [c for c in costs if c.name in known]


def load_costs(sidecar: Path) -> list[BuildCost]:
    if not sidecar.exists():
        return []
    return [BuildCost(**row) for row in json.loads(sidecar.read_text())]


# --------------------------------------------------------------------------- projection


def line_of(cost: BuildCost) -> tuple[str, str | None, str | None, bool]:
    """(series, arch, flavor, with modules): 6.12 of 6.12.113+deb13-amd64, the build's name when
    the release has none. Builds with modules and without are projected apart."""
    series = re.match(r"\d+\.\d+", cost.release or "")
    return (series.group(0) if series else cost.name, cost.arch, cost.flavor, cost.modules is not None)


def classify(costs: list[BuildCost]) -> list[bool]:
    """Whether each cost (in ingest order) is the first build of its line."""
    seen: set[tuple[str, str | None, str | None, bool]] = set()
    out = []
    for c in costs:
        out.append(line_of(c) not in seen)
        seen.add(line_of(c))
    return out


@dataclass(frozen=True)
class Projection:
    """The archive's size from measured means; None where nothing was measured."""

    with_modules: bool
    first_mb: float | None  # mean bytes a first-of-line build added, MB
    point_mb: float | None  # mean bytes a point release added, MB
    n_first: int
    n_point: int
    total_gb: float | None  # lines * first + (builds - lines) * point


def project(costs: list[BuildCost], builds: int, lines: int) -> list[Projection]:
    """The projection with modules and without, from the costs measured of each kind."""
    firsts = classify(costs)
    out = []
    for with_modules in (True, False):
        chosen = [(c, f) for c, f in zip(costs, firsts) if (c.modules is not None) == with_modules]
        first = [c.bytes_added / 1e6 for c, f in chosen if f]
        point = [c.bytes_added / 1e6 for c, f in chosen if not f]
        first_mb = sum(first) / len(first) if first else None
        point_mb = sum(point) / len(point) if point else None
        total = (
            (lines * first_mb + (builds - lines) * point_mb) / 1e3
            if first_mb is not None and point_mb is not None
            else None
        )
        out.append(Projection(with_modules, first_mb, point_mb, len(first), len(point), total))
    return out


#: What a build adds to a database, by what the builds stored before it share with it:
#: the first build of an empty database, a further build of a stored line (a point
#: release), a new flavor of a stored series and arch, a new arch of a stored series,
#: or a new kernel series.
KINDS = ("first", "point", "flavor", "arch", "series")


def kinds(lines: list[tuple[str, str | None, str | None]]) -> list[str]:
    """The kind (KINDS) of each (series, arch, flavor), in ingest order."""
    out = []
    for k, (series, arch, flavor) in enumerate(lines):
        before = lines[:k]
        if not before:
            out.append("first")
        elif (series, arch, flavor) in before:
            out.append("point")
        elif any((s, a) == (series, arch) for s, a, _ in before):
            out.append("flavor")
        elif any(s == series for s, _, _ in before):
            out.append("arch")
        else:
            out.append("series")
    return out


@dataclass(frozen=True)
class ManifestProjection:
    """A manifest's database with modules, each build at the measured mean of its kind."""

    builds: list[tuple[str, str, float | None]]  # (manifest id, kind, MB; None: kind not measured)
    means: dict[str, float]  # kind -> mean MB added, of the measured builds with modules
    total_mb: float | None  # None when a kind it needs was not measured


def project_manifest(costs: list[BuildCost], specs: list[tuple[str, str, str, str]]) -> ManifestProjection:
    """`specs`: (id, release, arch, flavor) of a manifest's builds, in order."""
    measured = [c for c in costs if c.modules is not None]
    found: dict[str, list[float]] = defaultdict(list)
    for c, kind in zip(measured, kinds([line_of(c)[:3] for c in measured])):
        found[kind].append(c.bytes_added / 1e6)
    means = {kind: sum(v) / len(v) for kind, v in found.items()}
    series = [re.match(r"\d+\.\d+", release) for _, release, _, _ in specs]
    lines = [(m.group(0) if m else i, arch, flavor) for m, (i, _, arch, flavor) in zip(series, specs)]
    builds = [(spec[0], kind, means.get(kind)) for spec, kind in zip(specs, kinds(lines))]
    total = None if any(mb is None for _, _, mb in builds) else sum(mb or 0 for _, _, mb in builds)
    return ManifestProjection(builds, means, total)


def _manifest_specs(path: Path) -> list[tuple[str, str, str, str]]:
    sys.path.insert(0, str(ROOT))
    from ingest.catalog import manifest  # the project's own reader of manifests

    return [(b.id, b.release, b.arch, b.flavor) for b in manifest.load(path).builds]


def report_manifest(costs: list[BuildCost], path: Path) -> None:
    p = project_manifest(costs, _manifest_specs(path))
    means = ", ".join(f"{kind} {p.means[kind]:.1f}" for kind in KINDS if kind in p.means)
    print(f"projection for {path} with modules (mean MB added by kind, measured: {means or 'none'}):")
    for build, kind, mb in p.builds:
        print(f"{build:>34} {kind:>7} {f'{mb:.1f}' if mb is not None else 'not measured':>12}")
    total = f"{p.total_mb:.0f} MB" if p.total_mb is not None else "needs every kind above measured"
    print(f"{'total':>34} {'':>7} {total:>12}")


# --------------------------------------------------------------------------- report


def _ratio(seconds: float | None, anchor: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}" + (f" ({seconds / anchor:.1f}x)" if anchor else "")


def report(db: Path, costs: list[BuildCost], archive_builds: int, archive_lines: int) -> None:
    sizes, method = object_sizes(db)
    total = db.stat().st_size
    print(f"{db}: {total / 1e6:.1f} MB; bytes per table and index ({method}):")
    print(f"{'table':>32} {'table MB':>9} {'indexes MB':>11} {'share':>6}")
    for table, own, indexes in per_table(sizes):
        if own + indexes >= total / 1000:
            print(f"{table:>32} {own / 1e6:>9.1f} {indexes / 1e6:>11.1f} {(own + indexes) / total:>6.1%}")
    print("largest indexes:")
    for o in [o for o in sizes if o.kind == "index"][:10]:
        print(f"{o.name:>48} {o.bytes / 1e6:>8.1f} MB  on {o.table}")
    conn = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)
    free = (
        conn.execute("PRAGMA freelist_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    )
    n_builds = conn.execute("SELECT count(*) FROM builds").fetchone()[0]
    conn.close()
    print(
        f"free pages: {free / 1e6:.1f} MB; {n_builds} builds, {total / max(n_builds, 1) / 1e6:.1f} MB per build on average"
    )
    if not costs:
        print("no per-build measurements (DB.bench.json): give images to ingest into a fresh DB")
        return
    print("per build, in ingest order (timings in s, as a ratio to pahole -j2 --btf_encode_detached):")
    print(
        f"{'build':>34} {'line':>6} {'modules':>7} {'MB added':>9} {'ingest s':>14} {'write s':>13} {'anchor s':>8} {'RSS MB':>7}"
    )
    for c, first in zip(costs, classify(costs)):
        anchor = f"{c.anchor:.1f}" if c.anchor else "-"
        print(
            f"{c.name:>34} {'first' if first else 'point':>6} {c.modules if c.modules is not None else '-':>7}"
            f" {c.bytes_added / 1e6:>9.1f} {_ratio(c.wall, c.anchor):>14} {_ratio(c.write, c.anchor):>13}"
            f" {anchor:>8} {c.rss_mb:>7.0f}"
        )
        grown = sorted(c.tables_added.items(), key=lambda kv: -kv[1])[:8]
        if grown:
            print(" " * 36 + "MB: " + ", ".join(f"{t} {n / 1e6:+.1f}" for t, n in grown))
    print(
        f"projection for the archive: {archive_builds} builds, {archive_lines} first-of-line (measured means):"
    )
    for p in project(costs, archive_builds, archive_lines):
        label = "with modules" if p.with_modules else "vmlinux alone"
        first_text = f"{p.first_mb:.1f} MB (n={p.n_first})" if p.first_mb is not None else "not measured"
        point_text = f"{p.point_mb:.1f} MB (n={p.n_point})" if p.point_mb is not None else "not measured"
        total_text = f"{p.total_gb:.1f} GB" if p.total_gb is not None else "needs both kinds measured"
        print(f"{label:>16}: first of line {first_text}, point release {point_text} -> {total_text}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("images", type=Path, nargs="*")
    ap.add_argument(
        "--modules", choices=("auto", "none"), default="auto", help="auto: the cache's modules/ tree"
    )
    ap.add_argument("-j", "--jobs", type=int)
    ap.add_argument("--archive-builds", type=int, default=324)
    ap.add_argument("--archive-lines", type=int, default=70)
    ap.add_argument("--no-anchor", action="store_true", help="skip the pahole anchor")
    ap.add_argument(
        "--manifest", type=Path, help="also project this manifest's database (e.g. manifests/debian.yml)"
    )
    args = ap.parse_args()
    sidecar = args.db.with_name(args.db.name + ".bench.json")
    costs = load_costs(sidecar)
    for image in args.images:
        cost, name = ingest_measured(image, args.db, args.modules, args.jobs)
        if cost is None:
            print(
                f"{name}: already in {args.db}"
                + ("" if any(c.name == name for c in costs) else " (not measured)")
            )
            continue
        cost.anchor = None if args.no_anchor else anchor_seconds(image)
        costs.append(cost)
        _identify(args.db, costs)
        sidecar.write_text(json.dumps([asdict(c) for c in costs], indent=1))
    if not args.db.exists():
        sys.exit(f"{args.db}: no such database (give images to ingest, or build one: make database)")
    report(args.db, _identify(args.db, costs), args.archive_builds, args.archive_lines)
    if args.manifest:
        report_manifest(_identify(args.db, costs), args.manifest)


if __name__ == "__main__":
    main()
