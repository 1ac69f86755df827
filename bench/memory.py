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
import zlib

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


def flat_png(path, width, height, alpha=False, bits=8, interlace=False):
    """A PNG of one colour, written here (libvips 8.14 crashes making 16-bit PNGs this wide):
    any shape costs kilobytes, as a decoder's memory follows the declared size."""
    bands = 4 if alpha else 3
    sample = (200, 120, 40, 200)[:bands]
    pixel = bytes(sample) if bits == 8 else b"".join(struct.pack(">H", v * 257) for v in sample)
    # Adam7's passes (x0, y0, dx, dy), or one pass of every pixel.
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    z = zlib.compressobj(9)
    data = []
    for x0, y0, dx, dy in passes if interlace else [(0, 0, 1, 1)]:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w <= 0 or h <= 0:
            continue
        row = b"\0" + pixel * w
        batch = max(1, min(h, (1 << 22) // len(row)))
        for done in range(0, h, batch):
            data.append(z.compress(row * min(batch, h - done)))
    data.append(z.flush())

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    head = struct.pack(">IIBBBBB", width, height, bits, 6 if alpha else 2, 0, 0, int(interlace))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", b"".join(data)))
        f.write(chunk(b"IEND", b""))


# Extreme shapes: (name, format, file suffix, maker(path, width, height), most pixels, most a side).
# The other formats are converted from a flat PNG by libvips (one colour, so kilobytes).
def converted(options, alpha=False):
    def make(path, width, height):
        with tempfile.TemporaryDirectory() as t:
            flat_png(f"{t}/a.png", width, height, alpha)
            vips("copy", f"{t}/a.png", f"{path}[{options}]")

    return make


SHAPE_FORMATS = [
    ("png-rgb", "png", "png", lambda p, w, h: flat_png(p, w, h), "pixels", None),
    ("png-rgba", "png", "png", lambda p, w, h: flat_png(p, w, h, True), "pixels", None),
    ("png-rgba16", "png", "png", lambda p, w, h: flat_png(p, w, h, True, 16), "pixels", None),
    (
        "png-rgba16-interlaced",
        "png",
        "png",
        lambda p, w, h: flat_png(p, w, h, True, 16, True),
        "interlaced",
        None,
    ),
    ("tiff-deflate-rgb", "tiff", "tif", converted("compression=deflate,predictor=horizontal"), "pixels", None),
    (
        "tiff-deflate-rgba",
        "tiff",
        "tif",
        converted("compression=deflate,predictor=horizontal", True),
        "pixels",
        None,
    ),
    ("jpeg", "jpeg", "jpg", converted("Q=90"), "pixels", 65535),
    ("jpeg-progressive", "jpeg", "jpg", converted("Q=90,interlace"), "interlaced", 65535),
    ("webp-rgba", "webp", "webp", converted("Q=75,effort=0", True), "pixels", 16383),
    ("gif", "gif", "gif", converted("effort=1"), "gif", 65535),
    ("heic", "heic", "heic", converted("compression=hevc,Q=50,effort=0"), "heif", 16384),
    ("avif-rgba", "avif", "avif", converted("compression=av1,Q=50,effort=0", True), "heif", 16384),
]


def shape_cases(folder, limits, heavy=True):
    """Every format at its widest and tallest accepted side, over short sides up to the pixel
    limit (599, 1199 and 2399 are just under 4, 8 and 16 times the default cover preset's 150,
    where libvips' reduce is widest), then the shapes just over the side limits and the issue's
    extremes (refused from the header)."""
    os.makedirs(folder, exist_ok=True)
    cases = []
    for name, fmt, suffix, maker, kind, most in SHAPE_FORMATS:
        pixels = min(limits[kind], limits["pixels"])
        # HEIC/AVIF encode slowly: their largest shapes only with --heavy.
        slow = fmt in ("heic", "avif")
        shapes = []
        for long, limit in ((min(limits["width"], most or 1 << 30), "width"), (min(limits["height"], most or 1 << 30), "height")):
            shorts = {1, 150, 599, 1199, 2399, pixels // long}
            for s in sorted(x for x in shorts if x * long <= pixels and (heavy or not slow or x <= 599)):
                shapes.append((long, s) if limit == "width" else (s, long))
        if most is None or most > limits["width"]:
            shapes.append((limits["width"] + 1, 64))
        if most is None or most > limits["height"]:
            shapes.append((64, limits["height"] + 1))
        if most is None and name in ("png-rgb", "tiff-deflate-rgb"):
            shapes += [(1_000_000, 64), (64, 1_000_000), (200_000, 320)]
        for w, h in dict.fromkeys(shapes):
            path = os.path.join(folder, f"shape-{name}-{w}x{h}.{suffix}")
            if not os.path.exists(path):
                tmp = f"{path}.part.{suffix}"
                try:
                    maker(tmp, w, h)
                except subprocess.CalledProcessError as e:
                    # An encoder that cannot make the shape (x265 below 2 pixels a side, ...).
                    print(f"{os.path.basename(path)}: not made: {e.stderr.decode()[:200]}", file=sys.stderr)
                    continue
                os.replace(tmp, path)
            cases.append((os.path.basename(path), fmt, path))
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
            " 'kb': r.ru_maxrss, 'out': (p.stdout + p.stderr).strip().splitlines()[-3:]}))\n"
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
        "formats), interlaced (progressive JPEG, Adam7 PNG), heif, gif; width, height (each side)",
    )
    ap.add_argument(
        "--shapes",
        action="store_true",
        help="extreme shapes instead: every format at the longest side accepted, wide and tall, "
        "and the shapes just over it",
    )
    ap.add_argument("--light", action="store_true", help="with --shapes: no HEIC/AVIF over 599 on the short side")
    ap.add_argument("--files", nargs="*", default=[], help="measure these files instead of made inputs")
    ap.add_argument("--only", default="", help="only the cases whose name contains this")
    ap.add_argument("--runner", default="", help="prefix command, e.g. scripts/setup/libvips-run.sh sid")
    ap.add_argument(
        "--rules",
        default="",
        help="render with these settings: one THUMBS_RULES rule without its NAME=PREFIX "
        "(e.g. 'presets=w400=400,w1600=1600 formats=avif,webp,jpeg'), applied to every input",
    )
    ap.add_argument("--label", default="")
    ap.add_argument("--out", required=True, help="JSON results file")
    args = ap.parse_args()
    limits = dict.fromkeys(["pixels", "interlaced", "heif", "gif"], 64_000_000)
    limits.update(width=16384, height=65535)
    for item in args.limit:
        fmt, pixels = item.split("=")
        limits[fmt] = int(pixels)
    if args.files:
        cases = [(os.path.basename(p), os.path.splitext(p)[1].lstrip("."), p) for p in args.files]
    elif args.shapes:
        cases = shape_cases(os.path.join(args.inputs, "shapes"), limits, heavy=not args.light)
    else:
        cases = make_inputs(args.inputs, limits)
    cases = [c for c in cases if args.only in c[0]]
    runner = args.runner.split()
    env = dict(os.environ)
    if args.rules:
        # `thumbs render FILE` places a file under its own name: key uploads/<name>.
        env["THUMBS_RULES"] = f"bench=uploads/ {args.rules}"
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
            # The refusal's reason when there is one, else the summary line.
            "result": next((o for o in worst["out"] if "FAIL" in o), worst["out"][-1] if worst["out"] else ""),
        }
        rows.append(row)
        print(
            f"{name:44} {fmt:5} {row['peak_rss_mb']:6} MB {row['seconds']:6.2f} s  {row['result']}",
            flush=True,
        )
    doc = {
        "label": args.label,
        "thumbs": args.thumbs,
        "runner": args.runner,
        "rules": args.rules,
        "limits": limits,
        "rounds": args.rounds,
        "cases": rows,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
