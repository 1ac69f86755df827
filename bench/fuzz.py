#!/usr/bin/env python3
"""Fuzz `thumbs render`: mutated and header-edited copies of the fixtures, one process each.

Every case is made from one seed file (the fixtures of each accepted input format) by one or
more mutations: bit flips, byte overwrites with boundary values, truncation, a duplicated or
deleted span, and header edits that rewrite the encoded width or height (found in the header
as 16/32-bit big/little-endian numbers; PNG's IHDR CRC is fixed so the edit is not refused
for the checksum alone). Each case runs `thumbs render -j 1` under a time limit and its peak
RSS is read from getrusage (through /usr/bin/time). A case is a finding when it
  - panics or crashes: exit code other than 0 (rendered) and 1 (refused), or no
    `[1/1] OK|FAIL` line (a panic must still be reported as that file's failure);
  - hangs: killed at the time limit;
  - goes over the memory budget.
Case N of seed S is made from random.Random(f"{S}-{N}") alone, so `--only N` rebuilds it.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib

FORMATS = (".jpg", ".png", ".webp", ".gif", ".tiff", ".heic", ".avif")
BOUNDARY = [0, 1, 0x7F, 0x80, 0xFF]
SIZES = [0, 1, 2, 255, 256, 4096, 8000, 16383, 16384, 32767, 32768, 65535, 65536, 1 << 24]


def seeds(folder):
    """(name, bytes, (width, height)) of each fixture in an accepted format that renders."""
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(FORMATS) or name.startswith(("bomb", "empty", "text", "truncated")):
            continue
        path = os.path.join(folder, name)
        dims = []
        for field in ("width", "height"):
            r = subprocess.run(["vipsheader", "-f", field, path], capture_output=True, text=True)
            dims.append(int(r.stdout.strip() or 0))
        with open(path, "rb") as f:
            out.append((name, f.read(), tuple(dims)))
    return out


def made_seeds(folder):
    """Seeds the fixtures lack, made with Debian's vips CLI from landscape.jpg: a TIFF with
    RGB + alpha + one more channel (as libvips itself writes), a CMYK TIFF, a tiled 16-bit TIFF
    and a grey + alpha PNG."""
    os.makedirs(folder, exist_ok=True)
    photo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                         "landscape.jpg")
    small = os.path.join(folder, "small.v")

    def vips(*args):
        subprocess.run(["vips", *map(str, args)], check=True, capture_output=True)

    vips("thumbnail", photo, small, 400)
    band = os.path.join(folder, "band.v")
    vips("extract_band", small, band, 0)
    makers = {
        "extra-channels.tiff": lambda p: vips("bandjoin", f"{small} {band} {band}", f"{p}[compression=lzw]"),
        "cmyk.tiff": lambda p: vips("icc_export", small, p, "--output-profile", "cmyk"),
        "tiled16.tiff": lambda p: (vips("cast", small, p + ".v", "ushort"),
                                   vips("copy", p + ".v", f"{p}[tile,compression=deflate]")),
        "grey-alpha.png": lambda p: vips("bandjoin", f"{band} {band}", p),
    }
    for name, make in makers.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            make(path)
    return folder


def fix_png_crcs(data):
    """Recompute the CRC of every PNG chunk we can walk (so header edits reach the decoder)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out = bytearray(data)
    pos = 8
    while pos + 12 <= len(out):
        length = struct.unpack(">I", out[pos : pos + 4])[0]
        end = pos + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[pos + 4 : end]))
        pos = end + 4
    return bytes(out)


def header_edit(rng, data, dims):
    """Rewrite one encoded occurrence of the width or height in the first or last 4 KB (a
    TIFF's IFD often follows its pixels)."""
    spots = []
    tail = max(0, len(data) - 4096)

    def find(needle, fmt):
        for base in sorted({0, tail}):
            start = data.find(needle, base, base + 4096)
            while start != -1:
                spots.append((start, fmt))
                start = data.find(needle, start + 1, base + 4096)

    for value in {d for d in dims if d}:
        for fmt in (">H", "<H", ">I", "<I"):
            if value < 1 << (8 * struct.calcsize(fmt)):
                find(struct.pack(fmt, value), fmt)
        # WebP VP8L/VP8X store width-1 / height-1 in 14 or 24 bits, little-endian.
        for width in (3, 2):
            find((value - 1).to_bytes(4, "little")[:width], f"<{width}")
    if not spots:
        return data
    pos, fmt = rng.choice(spots)
    value = rng.choice(SIZES)
    if fmt.startswith("<") and fmt[1:].isdigit():
        width = int(fmt[1:])
        new = (value % (1 << (8 * width))).to_bytes(width, "little")
    else:
        new = struct.pack(fmt, value % (1 << (8 * struct.calcsize(fmt))))
    return fix_png_crcs(data[:pos] + new + data[pos + len(new) :])


def mutate(rng, data, dims):
    data = bytearray(data)
    kind = rng.choice(["flip", "boundary", "truncate", "span", "header", "header", "header"])
    if kind == "flip":
        # Mostly in the first KB, where headers and tables live.
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(len(data), 1024) if rng.random() < 0.7 else len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "boundary":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] = rng.choice(BOUNDARY)
    elif kind == "truncate":
        data = data[: rng.randrange(1, len(data))]
    elif kind == "span":
        a = rng.randrange(len(data))
        b = min(len(data), a + rng.randint(1, 512))
        if rng.random() < 0.5:
            data[b:b] = data[a:b]  # duplicate
        else:
            del data[a:b]
    else:
        return kind, header_edit(rng, bytes(data), dims)
    return kind, bytes(data)


def make_case(seed, index, seed_files):
    rng = random.Random(f"{seed}-{index}")
    name, data, dims = rng.choice(seed_files)
    kinds = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        kind, data = mutate(rng, data, dims)
        kinds.append(kind)
    return name, "+".join(kinds), data


def run_case(thumbs, path, timeout):
    out = tempfile.mkdtemp(prefix="fuzz-out-")
    stats = path + ".time"
    started = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-o", stats, "-f", "%M", "timeout", "-s", "KILL", str(timeout),
         thumbs, "render", "-j", "1", "-o", out, path],
        capture_output=True,
        text=True,
        errors="replace",
    )
    seconds = time.monotonic() - started
    subprocess.run(["rm", "-rf", out], check=False)
    with open(stats) as f:
        # /usr/bin/time writes "Command exited with non-zero status N" before the number.
        kb = int(f.read().split()[-1])
    os.remove(stats)
    lines = (proc.stdout + proc.stderr).splitlines()
    verdict = next((line for line in lines if line.startswith("[1/1] ")), "")
    return proc.returncode, seconds, kb // 1024, verdict, lines[-3:]


def classify(code, seconds, mb, verdict, budget_mb):
    found = []
    if code in (137, -9) or code == 124:
        found.append("hang")
    elif code not in (0, 1) or not verdict:
        found.append("panic" if code == 101 else f"crash(exit {code})" if code else "no-verdict")
    if mb > budget_mb:
        found.append("memory")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--thumbs", default="target/release/thumbs")
    ap.add_argument("--fixtures", default="tests/fixtures")
    ap.add_argument("--made-seeds", default="target/fuzz/seeds", help="where made seeds are cached")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once")
    ap.add_argument("--timeout", type=float, default=20, help="seconds before a case is a hang")
    ap.add_argument("--budget-mb", type=int, default=512, help="peak RSS over this is a finding")
    ap.add_argument("--max-minutes", type=float, default=30, help="stop starting cases after this")
    ap.add_argument("--keep", default="target/fuzz/findings", help="where findings are copied")
    ap.add_argument("--only", type=int, help="write case N to --keep and exit (reproduce)")
    ap.add_argument("--out", default="target/fuzz/results.json")
    args = ap.parse_args()
    seed_files = seeds(args.fixtures) + seeds(made_seeds(args.made_seeds))
    os.makedirs(args.keep, exist_ok=True)
    if args.only is not None:
        name, kinds, data = make_case(args.seed, args.only, seed_files)
        path = os.path.join(args.keep, f"case-{args.seed}-{args.only}-{name}")
        with open(path, "wb") as f:
            f.write(data)
        print(path)
        return
    work = tempfile.mkdtemp(prefix="fuzz-cases-")
    deadline = time.monotonic() + args.max_minutes * 60
    findings, verdicts, per_seed_max = [], collections.Counter(), {}
    slowest = []

    def one(index):
        if time.monotonic() > deadline:
            return None
        name, kinds, data = make_case(args.seed, index, seed_files)
        path = os.path.join(work, f"case-{index}-{name}")
        with open(path, "wb") as f:
            f.write(data)
        result = run_case(args.thumbs, path, args.timeout)
        return index, name, kinds, path, data, result

    done = 0
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for item in pool.map(one, range(args.cases)):
            if item is None:
                continue
            index, name, kinds, path, data, (code, seconds, mb, verdict, tail) = item
            done += 1
            outcome = "rendered" if code == 0 else verdict.rsplit("(", 1)[-1].rstrip(")") if verdict else "-"
            verdicts[outcome] += 1
            per_seed_max[name] = max(per_seed_max.get(name, 0), mb)
            slowest.append((seconds, index, name))
            found = classify(code, seconds, mb, verdict, args.budget_mb)
            if found:
                kept = os.path.join(args.keep, f"case-{args.seed}-{index}-{name}")
                with open(kept, "wb") as f:
                    f.write(data)
                findings.append({
                    "case": index, "seed_file": name, "mutations": kinds, "found": found,
                    "exit": code, "seconds": round(seconds, 2), "peak_rss_mb": mb,
                    "verdict": verdict, "tail": tail, "kept": kept,
                })
                print(f"case {index} ({name}, {kinds}): {found} exit {code} {mb} MB "
                      f"{seconds:.1f} s {verdict or tail}", flush=True)
            os.remove(path)
            if done % 250 == 0:
                print(f"... {done} cases, {len(findings)} findings", flush=True)
    os.rmdir(work)
    slowest.sort(reverse=True)
    summary = {
        "command": " ".join(sys.argv),
        "seed": args.seed,
        "cases_run": done,
        "wall_seconds": round(time.monotonic() - started),
        "timeout_s": args.timeout,
        "budget_mb": args.budget_mb,
        "outcomes": dict(verdicts.most_common()),
        "findings_by_kind": dict(collections.Counter(k.split("(")[0] for f in findings for k in f["found"])),
        "peak_rss_mb_by_seed_file": per_seed_max,
        "slowest": [{"seconds": round(s, 2), "case": i, "seed_file": n} for s, i, n in slowest[:5]],
        "findings": findings,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}, indent=2))
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
