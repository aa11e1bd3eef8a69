"""Crafted inputs an attacker would send to /check, made from real tools at test
time (tests/test_limits.py, tests/test_serve_limits.py): BPF objects assembled
by clang's integrated assembler (thousands of functions in seconds, where clang
compiling the same C took minutes), BTF written by btf_support.BtfWriter,
multipart bodies, and `post`: a raw-socket POST, chunked or not, that stops
sending once the server answers. scripts/bench_serve.py's hostile phase uses them too."""

from __future__ import annotations

import http.client
import select
import socket
from collections.abc import Iterable
from pathlib import Path

from elftools.elf.elffile import ELFFile

from ingest.web import forms
from tests.support.btf import BtfWriter
from tests.support.tools import build

SMALL_BPF = """
struct s { int a; };
__attribute__((section("kprobe/vmap"), used)) int prog(struct s *ctx) { return ctx->a; }
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


def small_btf(work: Path) -> bytes:
    """The .BTF section clang makes for a one-program object."""
    source = work / "small.bpf.c"
    source.write_text(SMALL_BPF)
    obj = work / "small.o"
    build(["clang", "-target", "bpf", "-g", "-O2", "-c", source, "-o", obj])
    with open(obj, "rb") as f:
        return ELFFile(f).get_section_by_name(".BTF").data()


def assemble(work: Path, name: str, functions: int, btf: bytes) -> Path:
    """A BPF object: `functions` functions in .text, each calling helper 8
    (bpf_get_smp_processor_id) -- the shape that made the function lookup
    quadratic -- one kprobe program calling the first, and `btf` as its .BTF."""
    (work / f"{name}.btf").write_bytes(btf)
    lines = [".text"]
    for i in range(functions):
        lines += [
            f".globl f{i}",
            f".type f{i},@function",
            f"f{i}:",
            "  call 8",
            "  exit",
            f".size f{i}, .-f{i}",
        ]
    lines += ['.section "kprobe/vmap","ax",@progbits', ".globl prog", ".type prog,@function", "prog:"]
    lines += ["  call f0" if functions else "  call 8", "  exit", ".size prog, .-prog"]
    lines += ['.section .BTF,"",@progbits', f'.incbin "{name}.btf"']
    (work / f"{name}.s").write_text("\n".join(lines) + "\n")
    out = work / f"{name}.o"
    build(["clang", "-target", "bpf", "-c", f"{name}.s", "-o", out.name], cwd=work)
    return out


def structs_btf(counts: list[int]) -> bytes:
    """A BTF blob of one struct per entry of `counts`, with that many int members."""
    w = BtfWriter()
    i = w.int_("int", 4, 1)
    for k, n in enumerate(counts):
        w.aggregate("struct", f"s{k}", 4 * n, [(f"m{j}", i, 32 * j, 0) for j in range(n)])
    return w.blob()


BOUNDARY = "kernsurfboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart_body(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart/form-data body of (field, filename or None, content) parts."""
    out = []
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        out.append(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(out) + f"--{BOUNDARY}--\r\n".encode()


def too_many_parts(n: int = 6000) -> bytes:
    """The issue's 114 KB body: `n` parts all named `a` (6 000 froze the server 8.5 s)."""
    assert n > forms.MAX_PARTS
    return multipart_body([("a", None, b"x")] * n)


def respond(sock: socket.socket) -> tuple[int, str]:
    r = http.client.HTTPResponse(sock)
    r.begin()
    return r.status, r.read().decode("utf-8", "replace")


def post(
    port: int, path: str, content_type: str, chunks: Iterable[bytes], length: int | None = None
) -> tuple[int, str]:
    """POST `chunks` on a raw socket, chunked unless `length` is given; stops sending as
    soon as the server answers (a refused upload is not read to its end)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered before the end
                sock.sendall(chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                if length is None:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return respond(sock)
    finally:
        sock.close()


def zeros_upload(size: int, piece: int = 1 << 20) -> Iterable[bytes]:
    """A multipart body whose one file part holds `size` zero bytes, in pieces."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="object"; filename="big.o"\r\n\r\n'.encode()
    )
    for _ in range(size // piece):
        yield bytes(piece)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()
