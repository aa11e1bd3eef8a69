#!/usr/bin/env bash
# Debian packages the test suite uses: compilers for the fixtures (gcc, and python3-dev for
# the optional C walk, ingest/readers/_dwarfwalk.c; and
# cross compilers for 32-bit armhf, big-endian s390x and aarch64 (patchable function entries); not gcc-multilib, which
# Debian makes conflict with cross compilers), oracles (pahole from dwarves,
# readelf/nm from binutils, bpftool), clang (and clang-16: bpf_core_type_matches, ENUM64) and libbpf-dev for the BPF programs
# `kernsurf check` reads, chromium and an emoji font for the browser test, libbpf-tools
# (the BPF corpus), qemu-system-x86, qemu-system-arm, busybox-static and cpio (the kernel-oracle
# boots), debuginfod (the server `kernsurf fetch debuginfod` is tested against), rpm and
# createrepo-c (rpmbuild and createrepo_c make the test yum repository), libarchive13 (the rpm
# extra reads RPMs through it), zstd (the oracle of `kernsurf publish`'s compressed copy).
# Missing ones make tests skip.
set -u
packages="gcc python3-dev gcc-arm-linux-gnueabihf gcc-s390x-linux-gnu gcc-aarch64-linux-gnu binutils dwarves bpftool clang clang-16 libbpf-dev chromium fonts-noto-color-emoji libbpf-tools qemu-system-x86 qemu-system-arm busybox-static cpio debuginfod rpm createrepo-c libarchive13 zstd"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "apt-get not available: install$missing yourself (tests needing them will skip)" >&2
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq || true
for p in $missing; do  # one by one: a package the mirror lacks must not block the others
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$p" >/dev/null 2>&1 \
        || echo "could not install $p (tests needing it will skip)" >&2
done
exit 0
