#!/usr/bin/env python3
"""Serving benchmark: page latency and throughput of a live `scripts/serve.sh DB`
on localhost. Usage: bench_serve.py DB [--clients 20] [--seconds 10] [--sample 300] [--no-hostile]

Prints p50/p95 latency of the home page, /function/<name> (a seeded sample of
names, each fetched once), /struct/<name>, the diff first page, search, the
tracepoint, syscall, LSM hook, kfunc and config pages, /builds and /check; then a load of
N concurrent clients (threads, keep-alive http.client) on /function pages:
pages/s and errors. The server runs with its page cache off (every page
computed; KERNSURF_PAGE_CACHE=0), then once more with the default cache for the
load figure. A database without a filled search index is copied to a
temporary directory first, so DB itself is never modified.

The hostile phase (page cache off; --no-hostile skips it): the N clients alone,
then beside 4 clients sending each hostile request of docs/serving.md#limits in
turn; pages/s and p50/p95/p99 of the N against the quiet run (goal: p95 within 2x)."""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_storage import anchor_line  # noqa: E402 (after the sys.path line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def path_segment(name: str) -> str:
    """A name as a URL path segment, as the pages link to each other."""
    return quote(name, safe="+")


def indexed(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM name_search_docsize)").fetchone()[0])
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def samples(db: Path, n: int, rng: random.Random) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        funcs = [
            r[0]
            for r in conn.execute(
                "SELECT n.name FROM names n WHERE n.id IN (SELECT DISTINCT name_id FROM functions) ORDER BY n.id"
            )
        ]
        structs = [
            r[0]
            for r in conn.execute(
                "SELECT n.name FROM names n WHERE n.id IN (SELECT name_id FROM types WHERE kind = 'struct') ORDER BY n.id"
            )
        ]
        builds = [
            r[0]
            for r in conn.execute("SELECT name FROM builds ORDER BY version_sort IS NULL, version_sort, name")
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        surfaces = {
            segment: [
                r[0]
                for r in conn.execute(
                    f"SELECT n.name FROM names n WHERE n.id IN (SELECT DISTINCT name_id FROM {table}) ORDER BY n.id"
                )
            ]
            for segment, table in SURFACE_TABLES.items()
            if table in tables
        }
        pair = None
        if "diff_pairs" in tables:
            pair = conn.execute(
                "SELECT ba.name, bb.name FROM diff_pairs p JOIN builds ba ON ba.id = p.build_a"
                " JOIN builds bb ON bb.id = p.build_b ORDER BY p.n_changes DESC LIMIT 1"
            ).fetchone()
    finally:
        conn.close()
    if pair is None and len(builds) >= 2:
        pair = (builds[0], builds[1])
    elif pair is None and builds:
        pair = (builds[0], builds[0])
    fsample = rng.sample(funcs, min(n, len(funcs)))
    queries = []
    for name in rng.sample(funcs + structs, min(n // 3, len(funcs) + len(structs))):
        if rng.random() < 0.4 or len(name) <= 4:
            queries.append(name)
        else:
            start = rng.randrange(0, len(name) - 3)
            queries.append(name[start : start + rng.randint(3, min(10, len(name) - start))])
    return {
        "home": ["/"] * 5,
        "function": [f"/function/{path_segment(x)}" for x in fsample],
        "struct": [f"/struct/{path_segment(x)}" for x in rng.sample(structs, min(n // 3, len(structs)))],
        "diff": [f"/diff/{path_segment(pair[0])}/{path_segment(pair[1])}"] * 10 if pair else [],
        "search": [f"/search?q={quote(q)}" for q in queries],
        "search JSON (type-ahead)": [
            f"/kernels/search_names.json?_shape=array&q={quote(q)}" for q in queries
        ],
        **{
            f"/{segment}/<name>": [
                f"/{segment}/{path_segment(x)}" for x in rng.sample(names, min(n // 3, len(names)))
            ]
            for segment, names in surfaces.items()
        },
        "/builds": ["/builds"] * 5,
        f"/check ({CHECK_DEPS} deps)": [check_url(rng, fsample, structs, surfaces) for _ in range(10)],
    }


#: Surface pages: URL segment -> table of names.
SURFACE_TABLES = {
    "tracepoint": "tracepoints",
    "syscall": "syscalls",
    "lsm": "lsm_hooks",
    "kfunc": "kfuncs",
    "config": "config_options",
}
CHECK_DEPS = 30


def check_url(rng: random.Random, functions: list[str], structs: list[str], surfaces: dict) -> str:
    """A /check page of CHECK_DEPS dependencies of the kinds a program has."""
    deps = [f"kprobe:{x}" for x in rng.sample(functions, 10)] + [
        f"fentry:{x}" for x in rng.sample(functions, 5)
    ]
    deps += [f"struct:{x}" for x in rng.sample(structs, 5)]
    for segment, how in (
        ("tracepoint", "tracepoint"),
        ("syscall", "ksyscall"),
        ("lsm", "lsm"),
        ("kfunc", "kfunc"),
        ("config", "kconfig"),
    ):
        names = surfaces.get(segment) or []
        deps += [f"{how}:{x}" for x in rng.sample(names, min(2, len(names)))]
    return "/check?deps=" + quote("\n".join(deps[:CHECK_DEPS]))


class Server:
    """scripts/serve.sh DB on a free port, stopped on exit."""

    def __init__(self, db: Path, cache: bool):
        self.port = free_port()
        env = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1")
        if not cache:
            env["KERNSURF_PAGE_CACHE"] = "0"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "serve.sh"), str(db)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                sys.exit(f"server exited: {self.log.read().decode()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/-/versions.json")
                if c.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        sys.exit("server did not start within 120 s")

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=30)


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, float, int]:
    start = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, time.perf_counter() - start, len(body)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(port: int, urls: dict[str, list[str]]) -> dict[str, float]:
    """Prints p50/p95/max of each kind of page, fetched in turn; returns each kind's p95 (s)."""
    p95 = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    get(conn, "/function/__warmup__")  # templates compiled, builds and groups loaded
    print(f"{'page':<26}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'KB avg':>8}  status")
    for kind, paths in urls.items():
        if not paths:
            continue
        times, sizes, statuses = [], [], {}
        for path in paths:
            status, seconds, size = get(conn, path)
            times.append(seconds * 1000)
            sizes.append(size)
            statuses[status] = statuses.get(status, 0) + 1
        print(
            f"{kind:<26}{len(times):>5}{statistics.median(times):>9.1f}{pct(times, 95):>9.1f}"
            f"{max(times):>9.1f}{statistics.mean(sizes) / 1024:>8.1f}  "
            + " ".join(f"{k}×{v}" for k, v in sorted(statuses.items()))
        )
        p95[kind] = pct(times, 95) / 1000
    return p95


def load(port: int, paths: list[str], clients: int, seconds: float) -> list[float]:
    """`clients` keep-alive clients on `paths` for `seconds`; prints and returns their latencies (ms)."""
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    done, errors, times = [0], [0], []

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = k * 7
        mine = []
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += 1
            try:
                status, t, _ = get(conn, path)
                ok = status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok, t = False, 0.0
            mine.append(t * 1000)
            with lock:
                done[0] += 1
                errors[0] += not ok
        with lock:
            times.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(
        f"  {clients} clients, {wall:.1f} s: {done[0]} pages, {done[0] / wall:.0f} pages/s, {errors[0]} errors, "
        f"latency p50 {statistics.median(times):.0f} ms, p95 {pct(times, 95):.0f} ms, p99 {pct(times, 99):.0f} ms"
    )
    return times


def hostile_requests(work: Path) -> list[tuple[str, Callable[[int], int]]]:
    """The requests that once froze the server (docs/serving.md#limits), as
    (name, send(port) -> status); crafted with tests/support/hostile.py."""
    sys.path.insert(0, str(ROOT))
    from tests.support import hostile as h

    def body(data: bytes) -> Callable[[int], int]:
        return lambda port: h.post(port, "/check.json", h.CONTENT_TYPE, [data], len(data))[0]

    def get(path: str) -> Callable[[int], int]:
        def send(port: int) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            conn.close()
            return r.status

        return send

    deps = quote("kprobe.multi:*a*\nkprobe.multi:*e*\nkprobe.multi:*i*")
    cte = quote("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
    out = [
        ("6 000 form parts", body(h.too_many_parts(6000))),
        (
            "50 MB chunked",
            lambda port: h.post(port, "/check.json", h.CONTENT_TYPE, h.zeros_upload(50 << 20))[0],
        ),
        (
            "31 MB upload",
            lambda port: h.post(port, "/check.json", h.CONTENT_TYPE, h.zeros_upload(31 << 20))[0],
        ),
        ("65 objects", body(h.multipart_body([("object", f"{i}.o", b"\x7fELF") for i in range(65)]))),
        ("broad globs", get(f"/check.json?deps={deps}")),
        ("recursive CTE", get(f"/kernels.json?sql={cte}")),
    ]
    if shutil.which("clang"):
        btf = h.small_btf(work)
        functions = h.assemble(work, "functions", 24000, btf).read_bytes()
        fat = h.assemble(work, "fat", 0, h.structs_btf(list(range(1, 801)))).read_bytes()
        out += [
            ("24 000 functions", body(h.multipart_body([("object", "functions.o", functions)]))),
            ("3.8 MB BTF", body(h.multipart_body([("object", "fat.o", fat)]))),
        ]
    return out


def hostile(
    port: int, paths: list[str], clients: int, seconds: float, work: Path, attackers: int = 4
) -> None:
    """The load alone, then beside `attackers` clients sending each hostile request in turn."""
    requests = hostile_requests(work)
    print(f"\nhostile phase: {clients} clients on /function/<name>, alone:")
    quiet = load(port, paths, clients, seconds)
    stop = threading.Event()
    got: dict[str, list[tuple[int, float]]] = {}
    lock = threading.Lock()

    def attacker(k: int) -> None:
        i = k * 2
        while not stop.is_set():
            name, send = requests[i % len(requests)]
            i += 1
            start = time.perf_counter()
            try:
                status = send(port)
            except (OSError, http.client.HTTPException):
                status = 0
            with lock:
                got.setdefault(name, []).append((status, time.perf_counter() - start))

    threads = [threading.Thread(target=attacker, args=(k,)) for k in range(attackers)]
    for t in threads:
        t.start()
    print(f"the same beside {attackers} hostile clients:")
    try:
        noisy = load(port, paths, clients, seconds)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    print(
        f"  normal p50 {statistics.median(noisy) / statistics.median(quiet):.2f}x, p95"
        f" {pct(noisy, 95) / pct(quiet, 95):.2f}x, p99 {pct(noisy, 99) / pct(quiet, 99):.2f}x the quiet run"
        " (goal: p95 within 2x)"
    )
    for name, results in got.items():
        statuses: dict[int, int] = {}
        for status, _ in results:
            statuses[status] = statuses.get(status, 0) + 1
        print(
            f"  {name:<18} {len(results):>3} sent, answered in max {max(t for _, t in results):.1f} s: "
            + " ".join(f"{k}×{v}" for k, v in sorted(statuses.items()))
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--no-hostile", action="store_true", help="Skip the hostile phase.")
    args = ap.parse_args()
    if not args.db.exists():
        sys.exit(f"no database at {args.db}")
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if not indexed(db):
            print(f"{db} has no search index yet: benchmarking a copy with the index built", file=sys.stderr)
            db = Path(tmp) / "kernels.db"
            shutil.copy(args.db, db)
        urls = samples(db, args.sample, random.Random(5))
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        builds, functions = conn.execute("SELECT count(*), sum(n_functions) FROM builds").fetchone()
        conn.close()
        print(
            f"database {args.db}: {args.db.stat().st_size / 1e6:.0f} MB, {builds} builds,"
            f" {functions:,} function rows; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        with Server(db, cache=False) as server:
            print("\nlatency, sequential, page cache off (every page computed):")
            p95 = latency(server.port, urls)
            print("\nload on /function/<name>, page cache off:")
            load(server.port, urls["function"], args.clients, args.seconds)
            if not args.no_hostile:
                hostile(server.port, urls["function"], args.clients, args.seconds, Path(tmp))
        with Server(db, cache=True) as server:
            print("load on /function/<name>, default page cache (immutable database):")
            load(server.port, urls["function"], args.clients, args.seconds)
        print(anchor_line(args.db, {f"{kind} p95": seconds for kind, seconds in p95.items()}))


if __name__ == "__main__":
    main()
