#!/usr/bin/env python3
"""Worst-case peak memory of `thumbs render` per input format, at the limits.

Makes one input per case (cached under --inputs), each as large as the limits let it be for its
format (the pixel count the binary accepts for that format, as square as possible), renders
each once per round in a fresh process (`thumbs render -j 1`) and reads the process' peak RSS
from getrusage (ru_maxrss of the waited-for child). Reports the worst round per case as JSON
and a Markdown table. Not a timed test: a benchmark, run by `make bench-memory`.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

def side(pixels):
    """The side of the largest square within `pixels`."""
    s = int(pixels**0.5)
    while s * s > pixels:
        s -= 1
    return s


def vips(*args):
    subprocess.run(["vips", *map(str, args)], check=True, capture_output=True)


def tiny_gif(width, height):
    """A ~30-byte GIF that declares width x height and holds one pixel of data."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    # LZW minimum code size 2, one sub-block: clear, pixel 0, end of information.
    data = b"\x02\x02\x44\x01\x00"
    return head + palette + image + data + b"\x3b"


def make_inputs(folder, limits):
    """Write one input per case at its format's limit; return [(case, format, path)]."""
    os.makedirs(folder, exist_ok=True)
    cases = []

    def case(name, fmt, maker):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            tmp = path + ".part" + os.path.splitext(name)[1]
            maker(tmp)
            os.replace(tmp, path)
        cases.append((name, fmt, path))

    # A photo-like source: a real photo stretched to size, plus noise so encoders cannot
    # shrink it to nothing (memory follows the pixel count, file size follows the content).
    # Lossless formats get the photo without noise, or they would not fit under the byte limit.
    def source(s, noise=12):
        base = os.path.join(folder, f"source-{s}-{noise}.v")
        if not os.path.exists(base):
            here = os.path.dirname(os.path.abspath(__file__))
            photo = os.path.join(here, "..", "tests", "fixtures", "landscape.jpg")
            with tempfile.TemporaryDirectory() as t:
                vips("thumbnail", photo, f"{t}/a.v", s, "--height", s, "--size", "force")
                vips("gaussnoise", f"{t}/n.v", s, s, "--sigma", max(noise, 1), "--mean", 0)
                vips("linear", f"{t}/n.v", f"{t}/m.v", 1 if noise else 0, 0)
                vips("add", f"{t}/a.v", f"{t}/m.v", f"{t}/b.v")
                vips("cast", f"{t}/b.v", base, "uchar")
        return base

    def at(kind):
        return side(min(limits[kind], limits["pixels"]))

    s = at("pixels")
    case(f"baseline-{s}.jpg", "jpeg", lambda p: vips("copy", source(s), f"{p}[Q=90]"))
    s = at("interlaced")
    case(
        f"progressive-{s}.jpg",
        "jpeg",
        lambda p: vips("copy", source(s), f"{p}[Q=90,interlace]"),
    )
    s = at("pixels")
    case(f"rgb8-{s}.png", "png", lambda p: vips("copy", source(s, 0), f"{p}[compression=9]"))

    def png16(p, s):
        # 16-bit RGBA (8 bytes a pixel, the most PNG can declare), Adam7-interlaced, so the
        # decoder must hold the whole image; flat content keeps it under the byte limit (the
        # decoder's memory follows the declared size, not the content).
        with tempfile.TemporaryDirectory() as t:
            vips("black", f"{t}/b.v", s, s, "--bands", 4)
            vips("linear", f"{t}/b.v", f"{t}/w.v", 1, 40000)
            vips("cast", f"{t}/w.v", f"{t}/x.v", "ushort")
            vips("copy", f"{t}/x.v", f"{p}[compression=9,interlace,bitdepth=16]")

    s = at("interlaced")
    case(f"rgba16-interlaced-{s}.png", "png", lambda p: png16(p, s))
    s = min(at("pixels"), 16383)
    case(f"photo-{s}.webp", "webp", lambda p: vips("copy", source(s), f"{p}[Q=75,effort=0]"))
    s = at("gif")
    case(f"photo-{s}.gif", "gif", lambda p: vips("copy", source(s), f"{p}[effort=1]"))
    case(f"tiny-declares-{s}.gif", "gif", lambda p: open(p, "wb").write(tiny_gif(s, s)))
    s = at("pixels")
    case(f"strips-{s}.tiff", "tiff", lambda p: vips("copy", source(s, 0), f"{p}[compression=deflate,predictor=horizontal]"))
    s = at("heif")
    case(
        f"photo-{s}.heic",
        "heic",
        lambda p: vips("copy", source(s), f"{p}[compression=hevc,Q=50,effort=0]"),
    )
    case(
        f"photo-{s}.avif",
        "avif",
        lambda p: vips("copy", source(s), f"{p}[compression=av1,Q=50,effort=0]"),
    )
    return cases


def measure(thumbs, runner, path, env):
    """Peak RSS (MB) of one `thumbs render` of path, via a fresh wrapper process."""
    out = tempfile.mkdtemp(prefix="bench-memory-")
    try:
        cmd = [*runner, thumbs, "render", "-j", "1", "-o", out, path]
        # A fresh Python per run, so RUSAGE_CHILDREN holds exactly this one render.
        probe = (
            "import resource, subprocess, sys, time, json\n"
            "t = time.monotonic()\n"
            "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(json.dumps({'code': p.returncode, 'seconds': time.monotonic() - t,"
            " 'kb': r.ru_maxrss, 'out': (p.stdout + p.stderr).strip().splitlines()[-2:]}))\n"
        )
        res = subprocess.run(
            [sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(res.stdout)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--thumbs", default="target/release/thumbs")
    ap.add_argument("--inputs", default="target/bench-memory")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="FORMAT=PIXELS",
        help="the limits the inputs are made at, as in the binary's Limits: pixels (all "
        "formats), interlaced (progressive JPEG, Adam7 PNG), heif, gif",
    )
    ap.add_argument("--runner", default="", help="prefix command, e.g. scripts/setup/libvips-run.sh sid")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", required=True, help="JSON results file")
    args = ap.parse_args()
    limits = dict.fromkeys(["pixels", "interlaced", "heif", "gif"], 64_000_000)
    for item in args.limit:
        fmt, pixels = item.split("=")
        limits[fmt] = int(pixels)
    cases = make_inputs(args.inputs, limits)
    runner = args.runner.split()
    env = dict(os.environ)
    rows = []
    for name, fmt, path in cases:
        runs = [measure(args.thumbs, runner, path, env) for _ in range(args.rounds)]
        worst = max(runs, key=lambda r: r["kb"])
        row = {
            "case": name,
            "format": fmt,
            "file_bytes": os.path.getsize(path),
            "peak_rss_mb": round(worst["kb"] / 1024),
            "seconds": round(max(r["seconds"] for r in runs), 2),
            "exit": worst["code"],
            "result": worst["out"][-1] if worst["out"] else "",
        }
        rows.append(row)
        print(
            f"{name:32} {fmt:5} {row['peak_rss_mb']:6} MB {row['seconds']:6.2f} s  {row['result']}",
            flush=True,
        )
    doc = {
        "label": args.label,
        "thumbs": args.thumbs,
        "runner": args.runner,
        "limits": limits,
        "rounds": args.rounds,
        "cases": rows,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
