"""A real browser (Debian's headless chromium) against `scripts/serve.sh` on
localhost: the pages' visible text after scripts ran, no console messages, and
screenshots in artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.site import build_frontend_db, free_port, served, variant, visible_text

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (make test installs it)"),
]

DIFF_SQL = """
INSERT INTO diff_pairs (id, group_id, build_a, build_b, stamp, computed_at, n_changes)
  SELECT 1, NULL, a.id, b.id, 'test', '2025-01-01T00:00:00Z', 3 FROM builds a, builds b
  WHERE a.name = 'v1' AND b.name = 'v2';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'param added', 'flags', NULL, 'long int' FROM names WHERE name = 'fe_map';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'function', id, 'inline changed', NULL, 'No', 'Full' FROM names WHERE name = 'fe_becomes_inline';
INSERT INTO changes (pair_id, item_kind, name_id, change_kind, detail, old, new)
  SELECT 1, 'struct', id, 'field added', 'flags', NULL, 'unsigned int' FROM names WHERE name = 'fe_ops';
INSERT INTO groups (id, name, kind, position) VALUES (1, 'Regular', 'series', 0);
INSERT INTO group_members (group_id, position, build_id, label) SELECT 1, 0, id, '1.0' FROM builds WHERE name = 'v1';
INSERT INTO group_members (group_id, position, build_id, label) SELECT 1, 1, id, '2.0' FROM builds WHERE name = 'v2';
UPDATE diff_pairs SET group_id = 1;
"""


@contextmanager
def serving(tmp_path_factory, *options: str) -> Iterator[str]:
    """scripts/serve.sh (with `options`) on a copy of the fixture database with groups and diffs."""
    db = variant(build_frontend_db(tmp_path_factory), tmp_path_factory.mktemp("browser"), DIFF_SQL)
    port = free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1")
    with served(
        ["bash", str(ROOT / "scripts" / "serve.sh"), str(db), *options],
        port,
        db.parent / "serve.log",
        env=env,
    ) as base:
        yield base


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory) as base:
        yield base


def chromium(tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """Run headless chromium; returns (stdout, console messages)."""
    proc = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


PAGES = [
    (
        "function-fe_map",
        "/function/fe_map#g0-1",
        [
            "Function: fe_map",
            "In 1.0 (v1): ✅",
            "In 2.0 (v2): ✅ Δ",
            "int fe_map(int *pages, unsigned int count, long int flags);",
            "kernel/fe_a.c:fe_entry_a (2 sites)",
            ": fe_map (STB_GLOBAL)",
            "param added flags",
            "JSON",
        ],
    ),
    (
        "struct-fe_ops",
        "/struct/fe_ops",
        ["Struct: fe_ops", "unsigned int flags;\t/* 24 4 */", "/* size: 32 */", "field added flags"],
    ),
    (
        "diff-v1-v2",
        "/diff/v1/v2",
        ["Differences: v1 → v2", "3 changes.", "inline changed", "fe_becomes_inline"],
    ),
    ("search-fe", "/search?q=fe_", ["fe_map", "fe_ops", "function", "struct"]),
    ("builds", "/builds", ["Functions by inline status", "v1", "v2"]),
    (
        "matrix",
        "/matrix?names=fe_map+fe_helper+fe_removed+fe_added+fe_ops",
        ["Status matrix", "fe_helper", "fe_ops"],
    ),
]


@pytest.mark.parametrize("label,path,expected", PAGES, ids=[p[0] for p in PAGES])
def test_page_in_browser(server, tmp_path, label, path, expected):
    dom, console = chromium(tmp_path, "--dump-dom", server + path)
    assert console == []
    page = visible_text(dom)
    for words in expected:
        assert words in page, words
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{label}.png"
    shot.unlink(missing_ok=True)
    _, console = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", server + path)
    assert console == []
    assert shot.exists() and shot.stat().st_size > 5000


def test_public_profile_pages_keep_working_under_its_security_headers(tmp_path_factory, tmp_path):
    # --public: Content-Security-Policy (inline scripts allowed, nothing from elsewhere); a page
    # it broke would log "Refused to ..." on the console
    with serving(tmp_path_factory, "--public") as base:
        for path, words in (
            ("/function/fe_map", "Function: fe_map"),
            ("/search?q=fe_", "fe_ops"),
            ("/check?deps=kprobe%3Afe_map", "Link to this check"),
            ("/kernels/builds", "builds"),
            ("/kernels?sql=select+1", "select 1"),
        ):
            dom, console = chromium(tmp_path, "--dump-dom", base + path)
            assert console == [], path
            assert words in visible_text(dom), path
