"""The pages of the other surfaces (/tracepoint, /syscall, /lsm, /config),
the builds page's surface counts, search, and /check, over the surfaces
miniature (tests/fixtures/surfaces/surfaces.c) compiled twice: "v1", and
"v2" with -DV2. Expected facts are read from the C source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import db, pipeline
from ingest.changes import diff
from ingest.cli import cli
from tests.support import FIXTURES
from tests.support.kernel import REAL_KERNEL, kfunc_sets, module_subset, real_module
from tests.support.programs import compile_bpf, compile_traced
from tests.support.site import Site, text, variant

SOURCE = FIXTURES / "surfaces" / "surfaces.c"
CONFIGS = {"v1": "CONFIG_BPF_LSM=y\nCONFIG_DEMO=m\n", "v2": "CONFIG_BPF_LSM=y\n# CONFIG_DEMO is not set\n"}


def print_format(event: str, v2: bool) -> str:
    """The print_fmt C literal of `event_<event>` in the source, unescaped (V2 or not)."""
    body = SOURCE.read_text().split(f"struct trace_event_call event_{event} = {{")[1].split("};")[0]
    if "#ifdef V2" in body:
        body = body.split("#else")[0 if v2 else 1]
    literal = re.search(r'\.print_fmt = "((?:[^"\\]|\\.)*)"', body).group(1)
    return literal.replace('\\"', '"')


@pytest.fixture(scope="module")
def surfaces_db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("surface_pages")
    path = tmp / "kernels.db"
    for version in ("v1", "v2"):
        out = compile_traced(SOURCE, tmp / version, *(["-DV2"] if version == "v2" else []))
        config = tmp / f"{version}.config"
        config.write_text(CONFIGS[version])
        pipeline.ingest(out, path, pipeline.Identity(label=version), jobs=1, config=config)
    conn = db.connect(path)
    db.store_groups(conn, [("Regular", "series", [(1, "1.0"), (2, "2.0")])])
    diff.compute_group_diffs(conn)
    db.build_search_index(conn)
    conn.close()
    return path


@pytest.fixture(scope="module")
def site(surfaces_db):
    s = Site(surfaces_db)
    yield s
    s.close()


def status_lines(page: str) -> list[str]:
    return [line.strip() for line in page.splitlines() if line.strip().startswith("In ")]


def test_tracepoint_page(site):
    response = site.get("/tracepoint/sched_switch")
    assert response.status_code == 200
    page = text(response)
    # a gcc build has no BTF: tp_btf programs cannot attach (tp/ and raw_tp/ can)
    no_btf = "tp_btf:sched_switch no BTF typedef btf_trace_sched_switch ⚠️"
    assert status_lines(page)[:2] == [
        f"In 1.0 (v1): trace event sched/sched_switch — {no_btf}",
        f"In 2.0 (v2): trace event sched/sched_switch — {no_btf}",
    ]
    assert "tracepoint:sched_switch ✓ · raw_tracepoint:sched_switch ✓" in page
    assert 'href="/struct/trace_event_raw_sched_switch"' in response.text
    assert 'href="/function/trace_event_raw_event_sched_switch"' in response.text
    assert print_format("sched_switch", v2=False) in page
    assert "No changes between 1.0 and 2.0 ✅" in page


def test_tracepoint_format_change_is_marked_and_diffed(site):
    page = text(site.get("/tracepoint/sched_wakeup"))
    lines = status_lines(page)
    assert lines[0].startswith("In 1.0 (v1): trace event sched/sched_wakeup (class sched_wakeup_template)")
    assert lines[1].endswith("Δ")
    old, new = print_format("sched_wakeup", v2=False), print_format("sched_wakeup", v2=True)
    assert old != new
    assert f"format changed: {old} ➡️ {new}" in page


def test_syscall_page_and_removal(site):
    page = text(site.get("/syscall/newuname"))
    # slot 5 of sys_call_table in v1; sys_ni_syscall there in v2
    assert status_lines(page)[:2] == ["In 1.0 (v1): native nr 5 ✅", "In 2.0 (v2): Absent ⚠️ Δ"]
    assert "removed" in page.split("Differences")[1]
    getpid = text(site.get("/syscall/getpid"))
    assert "native nr 3, ia32 nr 0" in getpid
    assert 'href="/function/__ia32_sys_getpid"' in site.get("/syscall/getpid").text


def test_lsm_hook_page(site):
    response = site.get("/lsm/file_open")
    page = text(response)
    assert "Hook type: int (struct file *)" in page
    assert "lsm:file_open ✗ (not attachable: no bpf_lsm_file_open)" in page
    truncate = text(site.get("/lsm/file_truncate"))
    assert status_lines(truncate)[0] == "In 1.0 (v1): Absent ⚠️"
    assert "added" in truncate.split("Differences")[1]


def test_config_page(site):
    assert status_lines(text(site.get("/config/CONFIG_BPF_LSM")))[:2] == [
        "In 1.0 (v1): = y ✅",
        "In 2.0 (v2): = y ✅",
    ]
    page = text(site.get("/config/CONFIG_DEMO"))
    assert "config changed: m ➡️ n" in page


def test_matrix_covers_the_surfaces(site):
    names = "sched_switch newuname file_truncate CONFIG_DEMO bpf_task_acquire"
    page = site.get("/matrix", params={"names": names}).text
    titles = re.findall(r"<title>([^<]+ in [12]\.0: [^<]+)</title>", page)
    assert titles == [
        "sched_switch in 1.0: trace event (sched)",
        "sched_switch in 2.0: trace event (sched)",
        "newuname in 1.0: syscall (native)",  # slot 5 of sys_call_table in v1 only
        "newuname in 2.0: no such syscall",
        "file_truncate in 1.0: no such LSM hook",  # the hook appears in V2
        "file_truncate in 2.0: LSM hook",
        "CONFIG_DEMO in 1.0: config option, =m",
        "CONFIG_DEMO in 2.0: config option, =n",
        "bpf_task_acquire in 1.0: unknown name",
        "bpf_task_acquire in 2.0: unknown name",
    ]
    for url in ("/tracepoint/sched_switch", "/syscall/newuname", "/lsm/file_truncate", "/config/CONFIG_DEMO"):
        assert f'href="{url}"' in page
    # "is not set" is recorded as n: shown, in the absent colour
    assert re.search(r'CONFIG_DEMO in 2\.0: [^<]*</title><rect [^>]*fill="#ececec"', page)
    # no kfunc in any build (gcc writes no BTF): an unknown name, not a row of ✗
    assert "bpf_task_acquire?</text>" in page


def test_unknown_items_are_404(site):
    assert site.get("/tracepoint/no_such_event").status_code == 404
    assert site.get("/kfunc/bpf_task_acquire").status_code == 404  # no kfuncs without BTF
    assert site.get("/widget/sched_switch").status_code == 404


def test_search_finds_every_surface(site):
    rows = {r["name"]: r for r in site.rows("/kernels/search_names.json?q=sched_sw")}
    assert rows["sched_switch"]["tracepoint_builds"] == 2
    page = site.get("/search", params={"q": "CONFIG_DEMO"}).text
    assert 'href="/config/CONFIG_DEMO"' in page
    assert 'href="/syscall/newuname"' in site.get("/search", params={"q": "newuname"}).text


def test_builds_page_counts_surfaces(site):
    page = site.get("/builds").text
    heads = re.findall(r'<th class="num">([^<]+)</th>', page.split("What eBPF programs can attach to")[1])
    row = re.search(r"<tr><td>v1</td>(.*?)</tr>", page, re.S).group(1)
    counts = dict(zip(heads, (int(n) for n in re.findall(r">(\d+)</a>", row))))
    # v1: 3 trace events (my_probe, sched_switch, sched_wakeup; `function` and
    # sys_enter_read are skipped), no BTF (no raw tracepoint arguments, no
    # fentry), sys_call_table's 4 names and the compat/ia32 tables' 4, 2 hooks
    # and 2 config options; a plain gcc build has no ftrace table: all notrace.
    assert {
        k: counts[k]
        for k in (
            "fentry ✓",
            "trace events",
            "raw tracepoints",
            "syscalls",
            "compat syscalls",
            "LSM hooks",
            "kfuncs",
            "config options",
        )
    } == {
        "fentry ✓": 0,
        "trace events": 3,
        "raw tracepoints": 0,
        "syscalls": 4,
        "compat syscalls": 4,
        "LSM hooks": 2,
        "kfuncs": 0,
        "config options": 2,
    }
    assert counts["notrace"] == counts["kprobe ✓"] > 0


def test_canned_queries(site):
    rows = site.rows("/kernels/syscalls_per_build.json?name=newuname&build=")
    assert [(r["build"], r["abi"], r["number"], r["symbol"]) for r in rows] == [
        ("v1", "native", 5, "__x64_sys_newuname")
    ]
    rows = site.rows("/kernels/tracepoints_per_build.json?name=&build=v2")
    assert {r["name"] for r in rows} == {"my_probe", "sched_switch", "sched_wakeup"}
    rows = site.rows("/kernels/lsm_hooks_per_build.json?name=&build=v2")
    assert [(r["name"], r["hook_type"], r["bpf_lsm"]) for r in rows] == [
        ("file_open", "int (struct file *)", 0),
        ("file_truncate", "int (struct file *)", 0),
        ("task_kill", "int (void *, int)", 0),
    ]
    assert [r["value"] for r in site.rows("/kernels/config_per_build.json?name=CONFIG_DEMO&build=")] == [
        "m",
        "n",
    ]


# --------------------------------------------------------------------------- /check


@pytest.fixture(scope="module")
def mini_bpf(tmp_path_factory) -> Path:
    return compile_bpf(FIXTURES / "check" / "mini.bpf.c", tmp_path_factory.mktemp("minibpf") / "mini.o")


def upload(site, path: Path, **fields):
    return site.loop.run_until_complete(
        site.ds.client.request(
            "POST", "/check.json", files={"object": (path.name, path.read_bytes())}, data=fields
        )
    )


def test_check_upload_equals_the_cli(site, surfaces_db, mini_bpf):
    response = upload(site, mini_bpf)
    assert response.status_code == 200
    page = response.json()
    cli_out = CliRunner().invoke(cli, ["check", str(mini_bpf), "--db", str(surfaces_db), "--json"])
    assert cli_out.exit_code == 0, cli_out.output
    expected = json.loads(cli_out.output)
    assert page["builds"] == expected["builds"]
    assert page["dependencies"] == expected["dependencies"]
    results = {d["spec"]: [r["level"] for r in d["results"].values()] for d in page["dependencies"]}
    assert results["ksyscall:newuname"] == ["ok", "fail"]  # leaves the table in V2
    assert results["tracepoint:sched/sched_wakeup"] == ["ok", "warn"]  # format changed
    assert results["lsm:file_open"] == ["fail", "fail"]


def test_check_link_reproduces_the_upload(site, mini_bpf):
    uploaded = upload(site, mini_bpf).json()
    again = site.get(uploaded["link"].replace("/check?", "/check.json?", 1)).json()
    strip = [{k: v for k, v in d.items() if k != "programs"} for d in uploaded["dependencies"]]
    assert [{k: v for k, v in d.items() if k != "programs"} for d in again["dependencies"]] == strip


def test_check_page_renders_the_matrix(site):
    response = site.get("/check", params={"deps": "ksyscall:newuname\n# a comment\nkconfig:CONFIG_DEMO"})
    assert response.status_code == 200
    page = text(response)
    assert "2 dependencies × 2 builds" in page
    assert 'class="ks-mark ks-lv-fail"' in response.text
    # v2 lost newuname and unset CONFIG_DEMO: numbered reasons under the table
    assert "<sup>1</sup> absent</div>" in response.text and "<sup>2</sup> not set</div>" in response.text
    assert 'href="/syscall/newuname"' in response.text


@pytest.mark.parametrize(
    "deps, message",
    [
        ("bogus:x", "unknown kind 'bogus'"),
        ("vmap", "expected kind:name"),
    ],
)
def test_check_bad_dependency_lines(site, deps, message):
    response = site.get("/check.json", params={"deps": deps})
    assert response.status_code == 400
    assert message in response.json()["errors"][0]


def test_check_bad_upload(site, tmp_path):
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an object")
    response = upload(site, junk)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "junk.o is not an ELF file; compile the program with clang -target bpf -g -c"
    ]


# --------------------------------------------------------------------------- the real Debian 6.1 kernel


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_kernel_surface_pages(kernel_db, tmp_path):

    site = Site(variant(kernel_db, tmp_path))
    try:
        tp = text(site.get("/tracepoint/sched_switch"))
        # include/trace/events/sched.h: the event's TP_printk
        assert "prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s" in tp
        assert "tracepoint:sched_switch ✓ · raw_tracepoint:sched_switch ✓ · tp_btf:sched_switch ✓" in tp
        lsm = text(site.get("/lsm/file_open"))
        assert "int security_file_open(struct file *file);" in lsm and "lsm:file_open ✓" in lsm
        # arch/x86/entry/syscalls/syscall_64.tbl: 257 common openat
        assert "native nr 257" in text(site.get("/syscall/openat"))
        check = site.get("/check.json", params={"deps": "kprobe:vmap\nksyscall:listmount"}).json()
        assert [[r["text"] for r in d["results"].values()] for d in check["dependencies"]] == [
            ["ok"],
            ["absent"],
        ]
    finally:
        site.close()


#: nf_conntrack.ko and what it needs loaded (readelf -p .modinfo: depends=nf_defrag_ipv4,
#: nf_defrag_ipv6,libcrc32c; those depend on nothing more).
CONNTRACK = (
    "net/netfilter/nf_conntrack.ko",
    "net/ipv4/netfilter/nf_defrag_ipv4.ko",
    "net/ipv6/netfilter/nf_defrag_ipv6.ko",
    "lib/libcrc32c.ko",
)


@pytest.fixture(scope="module")
def conntrack_db(tmp_path_factory) -> Path:
    """6.1.0-56's vmlinux with nf_conntrack.ko and its depends from the package."""

    tree = module_subset(tmp_path_factory.mktemp("conntrack-tree"), CONNTRACK)
    path = tmp_path_factory.mktemp("conntrack-db") / "kernels.db"
    pipeline.ingest(REAL_KERNEL, path, pipeline.Identity(distro="debian", version="6.1.192-2"), modules=tree)
    return path


@pytest.mark.slow
@pytest.mark.real_kernel
def test_real_kfuncs_of_modules_on_the_pages(conntrack_db):
    members = kfunc_sets(real_module(CONNTRACK[0]))["nf_ct_kfunc_set"]
    assert len(members) == 10 and "bpf_skb_ct_lookup" in members
    site = Site(conntrack_db)
    try:
        chain = (
            "in module nf_conntrack (must be loaded: nf_conntrack, nf_defrag_ipv4, nf_defrag_ipv6, libcrc32c)"
        )
        kfunc = text(site.get("/kfunc/bpf_skb_ct_lookup"))
        assert "kfunc in nf_ct_kfunc_set ✅ · in module nf_conntrack" in kfunc
        assert f"kfunc:bpf_skb_ct_lookup ✓ {chain}" in kfunc
        assert "Lives in module nf_conntrack (callable once it is loaded)" in kfunc
        function = text(site.get("/function/bpf_skb_ct_lookup"))
        assert "✅ · in module nf_conntrack" in function
        assert "Also a kfunc in nf_ct_kfunc_set · in module nf_conntrack." in function
        module = site.get("/module/nf_conntrack").text
        listed = re.findall(r'<a href="/kfunc/([^"]+)"><code>', module)
        assert sorted(listed) == sorted(members)
        assert f", {len(members)} kfuncs ✅" in text(site.get("/module/nf_conntrack"))
        # a kfunc of vmlinux shows as before modules (security/keys: key_sig_kfunc_set)
        vmlinux = text(site.get("/kfunc/bpf_lookup_user_key"))
        assert "kfunc in key_sig_kfunc_set ✅" in vmlinux and "in module" not in vmlinux
        search = text(site.get("/search", params={"q": "bpf_skb_ct_lookup"}))
        assert "kfunc in module nf_conntrack" in search
    finally:
        site.close()


@pytest.mark.parametrize("url", ["/tracepoint/sched:sched_switch", "/tracepoint/sched/sched_switch"])
def test_tracepoint_spellings_redirect(site, url):
    # perf's and bpftrace's system:event, libbpf's system/event (surfaces.c: sched_switch
    # is in system "sched")
    response = site.get(url, follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/tracepoint/sched_switch"
    assert site.get(url).status_code == 200


def test_unknown_tracepoints_suggest_close_names(site):
    response = site.get("/tracepoint/irq:sched_switch", follow_redirects=False)  # not in that system
    assert response.status_code == 404
    response = site.get("/tracepoint/sched_swich")
    assert response.status_code == 404
    assert '<a href="/tracepoint/sched_switch"><code>sched_switch</code></a>' in response.text
