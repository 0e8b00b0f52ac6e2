#!/usr/bin/env python3
"""Check the guest images in compose-examples/images/ (no wabt needed).

- every C guest (NAME.wasm / NAME.newlibc.wasm built from compose-examples/guests/c) imports
  env.memory with min 2 and max 64 pages, exports memory and _start, and, when it uses the
  event helper, exports timer_callback and message_callback;
- every image imports only from env and wasi_snapshot_preview1.
Prints one line per image; exits 1 on the first class of problem found.
"""
import os
import sys

IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compose-examples", "images")
C_GUESTS = {"publisher", "subscriber", "publisher_inside", "publisher_outside",
            "subscriber_temp", "sensor_rng", "hello_c", "idle_subscriber", "heap_check",
            "sensor_sdk"}


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def name(b, i):
    n, i = leb(b, i)
    return b[i:i + n].decode(), i + n


def limits(b, i):
    flags, i = leb(b, i)
    lo, i = leb(b, i)
    hi = None
    if flags & 1:
        hi, i = leb(b, i)
    return (lo, hi), i


def parse(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\0asm\1\0\0\0", "not a wasm module"
    i, imports, exports, memories = 8, [], [], []
    while i < len(b):
        sid = b[i]
        size, j = leb(b, i + 1)
        end = j + size
        if sid == 2:
            n, j = leb(b, j)
            for _ in range(n):
                mod, j = name(b, j)
                fld, j = name(b, j)
                kind = b[j]
                j += 1
                if kind == 0:
                    _, j = leb(b, j)
                    imports.append((mod, fld, "func", None))
                elif kind == 1:
                    j += 1
                    _, j = limits(b, j)
                    imports.append((mod, fld, "table", None))
                elif kind == 2:
                    lim, j = limits(b, j)
                    imports.append((mod, fld, "memory", lim))
                else:
                    j += 2
                    imports.append((mod, fld, "global", None))
        elif sid == 5:
            n, j = leb(b, j)
            for _ in range(n):
                lim, j = limits(b, j)
                memories.append(lim)
        elif sid == 7:
            n, j = leb(b, j)
            for _ in range(n):
                nm, j = name(b, j)
                j += 1
                _, j = leb(b, j)
                exports.append(nm)
        i = end
    return imports, exports, memories


def main():
    bad = 0
    files = sorted(f for f in os.listdir(IMAGES) if f.endswith(".wasm"))
    if not files:
        print("no images: run scripts/build-guests.sh first", file=sys.stderr)
        return 1
    for f in files:
        imports, exports, memories = parse(os.path.join(IMAGES, f))
        problems = []
        mods = {m for m, _, _, _ in imports}
        if not mods <= {"env", "wasi_snapshot_preview1"}:
            problems.append(f"unexpected import modules {sorted(mods)}")
        for want in ("memory", "_start"):
            if want not in exports:
                problems.append(f"no export {want}")
        base = f.split(".")[0]
        mem = [lim for m, n, k, lim in imports if k == "memory"]
        if base in C_GUESTS:
            if mem != [(2, 64)] or ("env", "memory") not in [(m, n) for m, n, k, _ in imports if k == "memory"]:
                problems.append(f"memory import {mem}, want env.memory (2, 64)")
            if base not in ("hello_c", "sensor_sdk"):  # no event loop in these two
                for want in ("timer_callback", "message_callback"):
                    if want not in exports:
                        problems.append(f"no export {want}")
        env = sorted(n for m, n, k, _ in imports if m == "env" and k == "func")
        memdesc = f"imports memory {mem[0]}" if mem else f"own memory {memories}"
        status = "ok  " if not problems else "FAIL"
        print(f"{status} {f}: {memdesc}; env: {', '.join(env) or '-'}")
        for p in problems:
            print(f"     {p}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
