#!/usr/bin/env python3
"""Code layout for a small resident set: which pages of skiff's binary a run touched, and the
linker symbol-ordering file that packs the functions on those pages together.

Why: the kernel maps file-backed code in 64 KiB fault-around windows, so functions touched at
start-up or while idle, spread over the 50 MB of `.text`, keep 3-4x their own size resident.
Ordering them contiguously (lld `--symbol-ordering-file`, applied by cmd/skiff/build.rs to
release-profile builds) shrinks the code part of every process's RSS. See tools/text-order.sh
for the whole procedure and BENCHMARKS.md for the figures.

  text-order.py residency BINARY [COPY...]   resident KiB per ELF section (page cache, mincore)
  text-order.py relink --link-args FILE --out BINARY [--align] [--order ORDER]
        re-run the final link that `cargo rustc ... -- -C save-temps --print link-args` printed
        to FILE: with --align every function's section aligned to a page (the trace layout: a
        touched page is a touched function), with --order the lld symbol order
  text-order.py order --binary UNSTRIPPED --copy KIND=FILE ... --out ORDER
        the functions overlapping a page of FILE resident in the page cache, KIND by KIND in
        the order given (each KIND's functions once, by address), written one symbol per line

The copies must be byte-identical to UNSTRIPPED (same layout); run them with the block device's
read-ahead at 0 after dropping the page cache, so the cache holds exactly the pages a process
faulted in (fault-around only maps pages that are already cached).
"""

import ctypes
import os
import re
import shlex
import subprocess
import sys
import tempfile

PAGE = os.sysconf("SC_PAGE_SIZE")
# One `readelf -SW` section line: [Nr] Name Type Address Off Size ...
SECTION = re.compile(r"^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)",
                     re.M)


def resident_pages(path):
    """Set of page indexes of `path` present in the page cache (mincore on a fresh mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap " + path)
        pages = (size + PAGE - 1) // PAGE
        vec = ctypes.create_string_buffer(pages)
        if libc.mincore(addr, size, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore " + path)
        libc.munmap(addr, size)
    finally:
        os.close(fd)
    return {i for i, b in enumerate(vec.raw) if b & 1}


def sections(binary):
    """(name, file offset, size) of every allocated section with file contents."""
    out = subprocess.run(["readelf", "-SW", binary], check=True, capture_output=True,
                         text=True).stdout
    result = []
    for m in SECTION.finditer(out):
        name, typ, off, size = m[1], m[2], int(m[4], 16), int(m[5], 16)
        if typ != "NOBITS" and size:
            result.append((name, off, size))
    return result


def text_symbols(binary):
    """(file offset, size, name) of every sized function symbol, via the section's addresses."""
    secs = subprocess.run(["readelf", "-SW", binary], check=True, capture_output=True,
                          text=True).stdout
    text = None
    for m in SECTION.finditer(secs):
        if m[1] == ".text":
            text = (int(m[3], 16), int(m[4], 16), int(m[5], 16))
    if text is None:
        sys.exit(f"{binary}: no .text section")
    addr, off, size = text
    nm = subprocess.run(["nm", "--defined-only", "-S", binary], check=True, capture_output=True,
                        text=True).stdout
    syms = []
    for line in nm.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or parts[2] not in "tTwW":
            continue
        a, s = int(parts[0], 16), int(parts[1], 16)
        if s == 0 or not addr <= a < addr + size:
            continue
        syms.append((a - addr + off, s, parts[3]))
    syms.sort()
    return syms


def cmd_residency(args):
    binary = args[0]
    copies = args[1:] or [binary]
    secs = sections(binary)
    for copy in copies:
        pages = resident_pages(copy)
        print(f"{copy}: {len(pages) * PAGE / 1024:.0f} KiB resident in the page cache")
        for name, off, size in secs:
            first, last = off // PAGE, (off + size - 1) // PAGE
            n = sum(1 for p in range(first, last + 1) if p in pages)
            if n:
                print(f"  {name:<20} {n * PAGE / 1024:8.0f} KiB of {size / 1024:8.0f} KiB")


def cmd_order(args):
    binary, out, copies = None, None, []
    it = iter(args)
    for a in it:
        if a == "--binary":
            binary = next(it)
        elif a == "--out":
            out = next(it)
        elif a == "--copy":
            kind, _, path = next(it).partition("=")
            copies.append((kind, path))
        else:
            sys.exit(f"unknown argument {a}")
    if not binary or not out or not copies:
        sys.exit("order needs --binary, --out and at least one --copy KIND=FILE")
    syms = text_symbols(binary)
    seen = set()
    lines = []
    for kind, path in copies:
        pages = resident_pages(path)
        chosen = [name for off, size, name in syms
                  if any(p in pages for p in range(off // PAGE, (off + size - 1) // PAGE + 1))]
        new = [n for n in chosen if n not in seen]
        seen.update(new)
        total = sum(s for o, s, n in syms if n in set(new))
        print(f"{kind}: {len(pages)} pages resident, {len(new)} new functions, "
              f"{total / 1024:.0f} KiB of code")
        lines.extend(new)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} symbols")


def cmd_relink(args):
    link_args, out, align, order = None, None, False, None
    it = iter(args)
    for a in it:
        if a == "--link-args":
            link_args = next(it)
        elif a == "--out":
            out = os.path.abspath(next(it))
        elif a == "--align":
            align = True
        elif a == "--order":
            order = os.path.abspath(next(it))
        else:
            sys.exit(f"unknown argument {a}")
    if not link_args or not out:
        sys.exit("relink needs --link-args and --out")
    words = shlex.split(open(link_args).read().strip().splitlines()[-1])
    env = dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith("-"):
        k, _, v = words.pop(0).partition("=")
        env[k] = v
    if "-o" not in words:
        sys.exit(f"{link_args}: no -o in the link command")
    words[words.index("-o") + 1] = out
    with tempfile.TemporaryDirectory(prefix="skiff-align.") as tmp:
        if align:
            n = 0
            for i, w in enumerate(words):
                if w.endswith(".o") and os.path.isfile(w):
                    n += 1
                    dst = os.path.join(tmp, f"{n}-{os.path.basename(w)}")
                    subprocess.run(["objcopy", "--set-section-alignment", ".text.*=4096", w,
                                    dst], check=True)
                    words[i] = dst
            print(f"aligned the functions of {n} objects")
        if order:
            words += [f"-Wl,--symbol-ordering-file={order}", "-Wl,--no-warn-symbol-ordering"]
        subprocess.run(words, check=True, env=env)
    print(f"linked {out}")


def main():
    cmds = {"residency": cmd_residency, "order": cmd_order, "relink": cmd_relink}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
