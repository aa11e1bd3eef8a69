"""kfuncs registered by loadable modules (docs/concepts.md#modules): a module's
`.BTF_ids` set8s hold ids of its split BTF (resolve_btfids ran over it with
vmlinux as base). Real modules of Debian's 6.1.0-56 amd64 package; the
expected kfuncs were read by hand, and are read again at test time, from
`readelf -sW` (the `__BTF_ID__set8__*` symbol), `readelf -x .BTF_ids` (its
`cnt, flags` header and `id, flags` pairs) and `bpftool btf dump file M.ko -B
vmlinux` (the FUNC each id names). The check of a program calling them is
tests/test_modules.py::test_real_kfuncs_of_a_module."""

from __future__ import annotations

import pytest

from ingest.model import Kfunc
from ingest.modules import module as modules
from ingest.modules import tree
from ingest.readers import elf
from ingest.readers.btf import BtfInfo, read_btf
from ingest.surfaces import first_by_name
from tests.support.kernel import REAL_KERNEL, kfunc_sets, module_file, real_module

# KF_ACQUIRE 1, KF_RELEASE 2, KF_RET_NULL 4, KF_TRUSTED_ARGS 16 (include/linux/btf.h, 6.1)
ACQ_NULL, TRUSTED = 1 | 4, 16
#: module -> set8 -> {kfunc: flags}. nf_conntrack.ko: `readelf -x .BTF_ids` shows the set
#: at 0x8, cnt 0x0a, pairs 0x18b7e/0x10 ... 0x18b90/0x05; bpftool names 101246 (0x18b7e)
#: bpf_ct_change_status ... 101264 (0x18b90) bpf_xdp_ct_alloc, as in
#: net/netfilter/nf_conntrack_bpf.c's BTF_ID_FLAGS. tcp_bbr/tcp_dctcp: the struct_ops
#: helpers of their *_check_kfunc_ids sets, flags 0; nf_nat: bpf_ct_set_nat_info.
EXPECTED = {
    "net/netfilter/nf_conntrack.ko": (
        "nf_conntrack",
        "nf_ct_kfunc_set",
        {
            "bpf_xdp_ct_alloc": ACQ_NULL,
            "bpf_xdp_ct_lookup": ACQ_NULL,
            "bpf_skb_ct_alloc": ACQ_NULL,
            "bpf_skb_ct_lookup": ACQ_NULL,
            "bpf_ct_insert_entry": ACQ_NULL | 2,
            "bpf_ct_release": 2,
            "bpf_ct_set_timeout": TRUSTED,
            "bpf_ct_change_timeout": TRUSTED,
            "bpf_ct_set_status": TRUSTED,
            "bpf_ct_change_status": TRUSTED,
        },
    ),
    "net/netfilter/nf_nat.ko": ("nf_nat", "nf_nat_kfunc_set", {"bpf_ct_set_nat_info": TRUSTED}),
    "net/ipv4/tcp_bbr.ko": (
        "tcp_bbr",
        "tcp_bbr_check_kfunc_ids",
        dict.fromkeys(
            (
                "bbr_init",
                "bbr_main",
                "bbr_sndbuf_expand",
                "bbr_undo_cwnd",
                "bbr_cwnd_event",
                "bbr_ssthresh",
                "bbr_min_tso_segs",
                "bbr_set_state",
            ),
            0,
        ),
    ),
    "net/ipv4/tcp_dctcp.ko": (
        "tcp_dctcp",
        "tcp_dctcp_check_kfunc_ids",
        dict.fromkeys(
            (
                "dctcp_init",
                "dctcp_update_alpha",
                "dctcp_cwnd_event",
                "dctcp_ssthresh",
                "dctcp_cwnd_undo",
                "dctcp_state",
            ),
            0,
        ),
    ),
}


def test_vmlinux_wins_then_the_first_module():
    vmlinux = [Kfunc(name="bpf_a", source="btf_id_set8", sets=("s",), flags=1)]
    in_modules = [
        Kfunc(name="bpf_a", source="btf_id_set8", sets=("m",), flags=2, module="one"),
        Kfunc(name="bpf_b", source="btf_id_set8", sets=("m",), flags=0, module="one"),
        Kfunc(name="bpf_b", source="decl_tag", sets=("n",), flags=0, module="two"),
    ]
    assert first_by_name(vmlinux, in_modules) == [vmlinux[0], in_modules[1]]
    assert first_by_name(vmlinux, []) == vmlinux


@pytest.fixture(scope="module")
def base_btf() -> BtfInfo:
    if not REAL_KERNEL.exists():
        pytest.skip("the 6.1.0-56 image is not cached: `make fetch-test-kernel`")
    with open(REAL_KERNEL, "rb") as f:
        return read_btf(elf.open_image(f).section(".BTF"))


@pytest.mark.real_kernel
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_a_modules_kfuncs_equal_readelf_and_bpftool(rel, base_btf):
    name, set_name, members = EXPECTED[rel]
    assert kfunc_sets(real_module(rel)) == {set_name: members}
    context = modules.TreeContext(release=None, arch="amd64", btf=base_btf, layouts=[])
    facts = modules.read_module(module_file(rel), rel, context)
    assert {k.name: (k.source, k.sets, k.flags, k.module) for k in facts.kfuncs} == {
        kfunc: ("btf_id_set8", (set_name,), flags, name) for kfunc, flags in members.items()
    }
    again = tree._unpacked(tree._packed(facts, context.channel), context.channel)
    assert again.kfuncs == facts.kfuncs  # they cross from a worker
