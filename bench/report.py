"""Turn bench/bench.py's results JSON into docs/benchmarks/README.md and chart.svg."""

import json
import statistics
import sys
from pathlib import Path

# AWS list prices, US East (N. Virginia), as published on aws.amazon.com/lambda/pricing,
# /s3/pricing and /sqs/pricing (2024-2025; not fetched live from here).
PRICE = {"lambda_arm_gb_s": 0.0000133334, "lambda_request": 0.20 / 1e6,
         "s3_get": 0.0004 / 1000, "s3_put": 0.005 / 1000, "sqs_request": 0.40 / 1e6}
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1769 MB, a share in proportion below it
MEMORY_SETTINGS = [128, 256, 384, 512, 640, 768, 1024, 1280, 1536, 1769, 2048, 3008]
SQS_BATCH = 10  # event source mapping batch size assumed for Receive/Delete per image


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))] if xs else float("nan")


def throughput(mode, cores):
    """Per contender: images/s per core from the median round, and ratios to thumbs by round."""
    rows = {}
    base = [r["wall_s"] for r in mode["thumbs"]]
    for name, rounds in mode.items():
        n = len(rounds[0]["ms"])
        walls = [r["wall_s"] for r in rounds]
        ratios = [w / b for w, b in zip(walls, base)]
        rows[name] = {"images": n, "wall": med(walls), "per_core": n / med(walls) / cores,
                      "ms_per_image": med(walls) * 1000 / n, "ratio": med(ratios),
                      "ratio_lo": min(ratios), "ratio_hi": max(ratios),
                      "rss": max(r["peak_rss_kib"] for r in rounds) / 1024}
    return rows


def on_release(name):
    """thumbs itself run against another release's libvips (bench.py names it so)."""
    return name.startswith("thumbs, libvips ")


def other_way(name):
    """Another way of making the thumbnails: not thumbs itself, and not the floor (which makes
    only part of the job)."""
    return name != "thumbs" and not on_release(name) and not name.startswith("floor")


def round_sums(rounds, files):
    """Per round: the sum of the in-process ms of `files` (None if one is missing)."""
    out = []
    for r in rounds:
        ms = dict(r["ms"])
        out.append(sum(ms[f] for f in files) if all(f in ms for f in files) else None)
    return out


def versions_section(results):
    """thumbs on each libvips release beside sharp: per-round ratios of summed per-image times
    (in-process, so neither the loader nor the process start counts) over file sets."""
    mode = results["one_core"]
    host = results["versions"]["vipsthumbnail"] or "host libvips"
    thumbs = ["thumbs"] + [n for n in mode if on_release(n)]
    sharps = [n for n in mode if n.startswith("sharp")]
    common = results["common_files"]
    mp = {c["file"]: float(c["megapixels"]) for c in results["corpus"]}

    def rel(f):
        return "/".join(Path(f).parts[-2:])
    jpegs = [f for f in common if rel(f).startswith("jpeg/")]
    sets = [("the packaged JPEGs (the photo set)", jpegs),
            ("of those, the 12-16 MP ones", [f for f in jpegs if 12 <= mp.get(rel(f), 0) <= 16]),
            ("CMYK JPEG (derived/cmyk.jpg)", [f for f in common if rel(f) == "derived/cmyk.jpg"]),
            ("every file of the run", common)]
    sums = {n: {label: round_sums(mode[n], fs) for label, fs in sets if fs} for n in mode}
    L = ["## thumbs on each libvips version, beside sharp (one core)\n"]
    L.append(f"The same thumbs binary (built against Debian 12's libvips, {host}) run on each "
             "release's libvips: **thumbs** on the host's; the others through "
             "`scripts/setup/libvips-run.sh RELEASE` (that release's own loader and glibc and its "
             "library root from `scripts/setup/libvips-root.sh`, nothing from the host; "
             + ", ".join(f"{rel_} = {v}" for rel_, v in
                         results["versions"].get("libvips_releases", {}).items())
             + "). sharp is the pinned 0.34.5 ("
             + str(results["versions"].get("sharp")) + ") and, as **sharp 0.35**, "
             + str(results["versions"].get("sharp_next")) + ". Same files, same interleaved "
             "rounds as the throughput table, one core. Per round, each contender's per-image "
             "times (measured inside the process) are summed over a set of files; the ratios "
             "below are taken round by round, median (min-max) over "
             f"{len(mode['thumbs'])} rounds.\n")
    for label, fs in sets:
        if not fs:
            continue
        L.append(f"**{label}** ({len(fs)} files):\n")
        head = "| contender | ms per round (median) | time vs thumbs on the host's libvips |"
        head += "".join(f" speed vs {s_} |" for s_ in sharps)
        L.append(head)
        L.append("| --- | ---: | ---: |" + " ---: |" * len(sharps))
        for n in thumbs + sharps:
            mine = sums[n][label]
            cells = []
            for other in ["thumbs"] + sharps:
                rs = [a / b for a, b in zip(mine, sums[other][label]) if a and b]
                if other != "thumbs":
                    rs = [1 / r for r in rs]  # speed: sharp's time / this one's
                cells.append(f"{med(rs):.3f}x ({min(rs):.3f}-{max(rs):.3f})" if rs else "-")
            L.append(f"| {n} | {med([m for m in mine if m]):.0f} | " + " | ".join(cells) + " |")
        L.append("")
    per_file = {n: {} for n in thumbs + sharps}
    for n in per_file:
        for r in mode[n]:
            for f, t in r["ms"]:
                per_file[n].setdefault(f, []).append(t)
    L.append("Per file (median ms over the rounds; last columns: time vs thumbs on the host's "
             "libvips):\n")
    L.append("| file | " + " | ".join(per_file) + " | " +
             " | ".join(f"{n.removeprefix('thumbs, ')} vs host" for n in thumbs[1:]) + " |")
    L.append("| --- |" + " ---: |" * (len(per_file) + len(thumbs) - 1))
    for f in common:
        m = {n: med(per_file[n].get(f, [])) for n in per_file}
        L.append(f"| {rel(f)} | " + " | ".join(f"{m[n]:.0f}" for n in per_file) + " | "
                 + " | ".join(f"{m[n] / m['thumbs']:.2f}" for n in thumbs[1:]) + " |")
    L.append("")
    return L


def single(rounds_by_contender):
    out = {}
    for name, rounds in rounds_by_contender.items():
        ms = [t for r in rounds for _, t in r["ms"]]
        out[name] = {"median": med(ms), "p95": p95(ms), "n": len(ms),
                     "rss": med([r["peak_rss_kib"] for r in rounds]) / 1024,
                     "rss_max": max(r["peak_rss_kib"] for r in rounds) / 1024}
    return out


def lambda_cost(ms_one_core, rss_mb, puts):
    """Cheapest memory setting for a million images, assuming work on one core that slows in
    proportion below 1769 MB and does not speed up above it (one image at a time)."""
    best = None
    table = []
    for mb in MEMORY_SETTINGS:
        if mb < rss_mb * 1.1:  # 10 % headroom over the measured peak RSS
            table.append((mb, None, None))
            continue
        secs = ms_one_core / 1000 * max(1.0, FULL_VCPU_MB / mb)
        compute = 1e6 * (mb / 1024 * secs * PRICE["lambda_arm_gb_s"] + PRICE["lambda_request"])
        table.append((mb, secs, compute))
        if best is None or compute < best[2] - 1e-9:
            best = (mb, secs, compute)
    other = 1e6 * (PRICE["s3_get"] + puts * PRICE["s3_put"]
                   + (1 + 2 / SQS_BATCH) * PRICE["sqs_request"])
    return best, table, other


CHART_WIDTH = 820


def svg_bars(bars, title, unit, y0, goals=None):
    """Horizontal bars, one per (label, value), starting at y0, with a red mark at the bar's goal
    when `goals` {label: value} has one; returns (elements, height)."""
    w, left, bar_h, gap = CHART_WIDTH, 300, 22, 8
    goals = goals or {}
    top = max([v for _, v in bars] + list(goals.values())) or 1
    parts = [f'<text x="10" y="{y0 + 20}" font-size="14" font-weight="bold">{title}</text>']
    for i, (label, v) in enumerate(bars):
        y = y0 + 34 + i * (bar_h + gap)
        bw = (w - left - 90) * v / top
        colour = "#2b7a3d" if label.startswith("thumbs") else "#777"
        parts += [f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{label}</text>',
                  f'<rect x="{left}" y="{y}" width="{bw:.1f}" height="{bar_h}" fill="{colour}"/>',
                  f'<text x="{left + bw + 5:.1f}" y="{y + 15}">{v:.2f} {unit}</text>']
        if label in goals:
            gx = left + (w - left - 90) * goals[label] / top
            parts.append(f'<line x1="{gx:.1f}" y1="{y - 3}" x2="{gx:.1f}" y2="{y + bar_h + 3}" '
                         'stroke="#c00" stroke-width="2"/>')
    return parts, 40 + len(bars) * (bar_h + gap)


def speed_over(results, other, thumbs, mode="one_core"):
    """Per round of `mode`: `other`'s per-image times inside the process summed over the common
    files, over thumbs' (how many times faster thumbs is). Process starts are left out (Node's
    and libvips' module loading would otherwise count once per round); with N images at a time
    the sum is N times the busy wall time, the same N for both."""
    common = results["common_files"]
    mode = results[mode]
    return [x / y for x, y in zip(round_sums(mode[other], common), round_sums(mode[thumbs], common))
            if x and y]


# The goals against the best sharp pipeline and the floor, on the layer's libvips.
GOAL_VS_SHARP = 1.5  # thumbs' throughput per core over sharp's decode-once pipeline, at least
GOAL_VS_FLOOR = 1.2  # thumbs' time over the floor's, at most
EQUAL_BYTES = 0.01  # output bytes within 1 % of thumbs' count as equal


def layer_names(results):
    """Names of (thumbs, sharp original, sharp decode-once, floor) on the layer's libvips, as
    bench.py names them; None where the run has no such contender."""
    lv = (results["versions"].get("layer") or {}).get("libvips")
    modes = [results[m] for m in ("one_core", "all_cores", "probe") if m in results]
    have = set().union(*(m.keys() for m in modes)) if modes else set()
    names = (f"thumbs, libvips {lv}", f"sharp, libvips {lv}", f"sharp decode-once, libvips {lv}",
             f"floor, libvips {lv}")
    return tuple(n if n in have else None for n in names)


def median_bytes(rounds):
    return med([r["out_bytes"] for r in rounds if "out_bytes" in r])


def bytes_cells(n, base):
    """Output bytes and their difference from `base` ("-" for runs from before they were kept)."""
    if n != n or base != base:
        return ["-", "-"]
    return [f"{n:,.0f}", f"{n / base - 1:+.2%}"]


def layer_section(results):
    """thumbs against the best sharp pipeline and the floor, all on the layer's libvips: the
    issue-20 goals, with output bytes per contender."""
    lay = results["versions"].get("layer") or {}
    thumbs, sharp_orig, sharp_once, floor = layer_names(results)
    L = [f"## Against the best sharp pipeline and the floor, on the layer's libvips "
         f"({lay.get('libvips')})\n"]
    if not thumbs or not (sharp_once or floor):
        L.append("Not in this run (bench/sharp-global or the floor was not built: "
                 "scripts/bench/layer-contenders.sh).\n")
        return L
    L.append(
        f"All on Debian {lay.get('release')}'s libvips {lay.get('libvips')}, the library root "
        "the Lambda layer is built from (each run through `scripts/setup/libvips-run.sh "
        f"{lay.get('release')}`): **{thumbs}**; **{sharp_orig}**, the original's way (one "
        f"pipeline per preset, three decodes); **{sharp_once}**, the best sharp pipeline: one "
        "decode shrinking on load to the largest preset, the pixels kept raw, the presets derived "
        "from them, the three encodes at once (bench/sharp-render.js `--way once`), both sharps "
        f"being {lay.get('sharp')} built from source against that libvips (bench/sharp-global, "
        f"scripts/bench/layer-contenders.sh); and **{floor}** (bench/floor.c): per image one "
        "decode at the scale the largest preset needs (libjpeg's shrink-on-load or libwebp's "
        "scaled decode, by libvips' own thumbnail rule) plus the three WebP encodes, nothing "
        "else timed (colour, rotation, resizes and the crop are done untimed, the way thumbs "
        "does them, so it encodes thumbs' own pictures). The floor's time is its timed work "
        "summed per image (over the images at a time), not its process's wall time. sharp's "
        "default `fastShrinkOnLoad` lets libjpeg shrink by up to the whole factor (2 for a 1/3.7 "
        "resize), where libvips' thumbnail rule, which thumbs and the floor follow, leaves a "
        "factor of two for the resize (1 there): on such JPEGs sharp decodes a quarter of the "
        "pixels.\n")
    L.append("| contender | one core: ms/image | time vs thumbs | all cores: images/s per core | "
             "time vs thumbs | output bytes per round | bytes vs thumbs |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    modes = {m: throughput(results[m], results["versions"]["cores"] if m == "all_cores" else 1)
             for m in ("one_core", "all_cores") if m in results}
    src = results.get("one_core") or results.get("all_cores") or results["probe"]
    tb = median_bytes(src[thumbs])
    for n in (thumbs, sharp_orig, sharp_once, floor):
        if not n:
            continue
        cells = []
        for m, unit, digits in (("one_core", "ms_per_image", 0), ("all_cores", "per_core", 2)):
            if m in modes:
                a, base = modes[m][n], modes[m][thumbs]
                cells += [f"{a[unit]:.{digits}f}", f"{a['wall'] / base['wall']:.2f}x"]
            else:
                cells += ["-", "-"]
        cells += bytes_cells(median_bytes(src[n]), tb)
        L.append(f"| {n} | " + " | ".join(cells) + " |")
    L.append("")
    for n in (sharp_orig, sharp_once, floor):
        mine, base = (src[x][0].get("out_bytes_by_file") for x in (n, thumbs)) if n else ({}, {})
        diffs = sorted(((mine[f] / base[f] - 1, f) for f in mine if base.get(f)),
                       key=lambda d: -abs(d[0]))
        if diffs:
            L.append(f"{n}: output bytes per file vs thumbs, the largest differences (first "
                     "round): " + ", ".join(f"{Path(f).name} {d:+.1%}" for d, f in diffs[:4])
                     + f"; {sum(abs(d) <= EQUAL_BYTES for d, _ in diffs)} of {len(diffs)} files "
                     f"within {EQUAL_BYTES:.0%}.\n")
    L.append("Goals (issue 20):\n")
    common = results["common_files"]
    if sharp_once:
        b = median_bytes(src[sharp_once]) / tb - 1
        equal = abs(b) <= EQUAL_BYTES
        for m in modes:
            rs = speed_over(results, sharp_once, thumbs, m)
            how = f"per-image times inside the process, summed over the {len(common)} files"
            L.append(f"- Throughput per core >= {GOAL_VS_SHARP}x {sharp_once}, "
                     f"{m.replace('_', ' ')} ({how}): **{med(rs):.2f}x** "
                     f"({min(rs):.2f}-{max(rs):.2f} over {len(rs)} rounds; "
                     f"{'met' if med(rs) >= GOAL_VS_SHARP and equal else 'missed'}); its output "
                     f"bytes {b:+.2%} of thumbs' ({'equal' if equal else 'NOT equal'} within "
                     f"{EQUAL_BYTES:.0%}).")
    if floor and "one_core" in results:
        rs = [1 / r for r in speed_over(results, floor, thumbs)]
        if rs:
            L.append(f"- Within {GOAL_VS_FLOOR}x of the floor (one core; per-image times inside "
                     f"the process, summed over the {len(common)} files): thumbs takes "
                     f"**{med(rs):.2f}x** the floor's time ({min(rs):.2f}-{max(rs):.2f}; "
                     f"{'met' if med(rs) <= GOAL_VS_FLOOR else 'missed'}).")
        parts = [r.get("parts") or {} for r in results["one_core"][floor]]
        parts = [p for p in parts if p]
        if parts:
            dec = med([sum(x["decode_ms"] for x in p.values()) for p in parts])
            enc = med([sum(x["encode_ms"] for x in p.values()) for p in parts])
            L.append(f"- The floor per round (one core): decode {dec:.0f} ms, three encodes "
                     f"{enc:.0f} ms ({enc / (dec + enc):.0%} encoding). Where thumbs' time "
                     "over it goes, preset by preset: `scripts/bench/profile.sh`.")
    L.append("")
    return L


def run_time(results):
    """One line: how long bench.py's sections took (the run's wall time, setup left out)."""
    sec = results.get("section_s")
    if not sec:
        return []
    return [f"bench.py took {sum(sec.values()) / 60:.1f} min: "
            + ", ".join(f"{k.replace('_', ' ')} {v / 60:.1f}" for k, v in sec.items())
            + " (setup and builds before it not counted).\n"]


def versions_page(results, docs):
    """A run of the one-core mode alone (bench.py --modes one_core --single-rounds 0
    --startup-trials 0): the libvips versions page, README.md left as it is."""
    v = results["versions"]
    one = throughput(results["one_core"], 1)
    la = results.get("loadavg", {})
    L = ["# thumbs on each libvips version beside sharp (one core)\n",
         f"Run {v['date']} on {v['cpu']}, {v['cores']} cores, {v['os']}; thumbs at commit "
         f"{v['thumbs_commit']}, Node {v['node']}. Load average (1/5/15 min) at the start: "
         f"{' / '.join(la.get('start', ['?']))}; at the end: {' / '.join(la.get('end', ['?']))}. "
         f"Settings: {json.dumps({k: results['settings'][k] for k in ('rounds', 'modes')})}; "
         f"{len(results['common_files'])} files per round. Raw figures: "
         "[libvips-versions.json](libvips-versions.json).\n",
         "| contender | one core: ms/image (wall, median round) | time vs thumbs (min-max) | peak RSS MiB |",
         "| --- | ---: | ---: | ---: |"]
    for name, a in one.items():
        L.append(f"| {name} | {a['ms_per_image']:.0f} | {a['ratio']:.2f}x "
                 f"({a['ratio_lo']:.2f}-{a['ratio_hi']:.2f}) | {a['rss']:.0f} |")
    L.append("")
    L += run_time(results)
    L += layer_section(results)
    L += versions_section(results)
    (docs / "libvips-versions.md").write_text("\n".join(L))


def main():
    results = json.loads(Path(sys.argv[1]).read_text())
    docs = Path(sys.argv[2])
    docs.mkdir(parents=True, exist_ok=True)
    if "all_cores" not in results or not results.get("single"):
        versions_page(results, docs)
        return
    v = results["versions"]
    one = throughput(results["one_core"], 1)
    allc = throughput(results["all_cores"], v["cores"])
    singles = {k: single(r) for k, r in results["single"].items()}
    mp = {c["file"].split("/")[-1].removesuffix(".jpg"): c for c in results["corpus"]}

    L = []
    L.append("# Benchmark: thumbs vs Node.js/sharp vs vipsthumbnail vs the floor\n")
    L.append(f"Run {v['date']} on {v['cpu']}, {v['cores']} cores, {v['memory']} RAM, "
             f"{v['os']}, kernel {v['kernel']}. thumbs at commit {v['thumbs_commit']} "
             f"({v['thumbs']}), Debian {v['vipsthumbnail']} (thumbs and vipsthumbnail), Node {v['node']}, "
             f"{v['sharp']} (npm, prebuilt).\n")
    la = results.get("loadavg")
    if la:
        L.append(f"Load average (1/5/15 min) when the run started: {' / '.join(la['start'])}; "
                 f"when it ended: {' / '.join(la.get('end', ['?']))} (the machine is shared; "
                 "other work running at the same time slows every contender, unevenly).\n")
    L += run_time(results)
    L.append("Reproduce: `make bench` (= `scripts/bench/bench.sh`: builds the corpus, installs the npm "
             "contender from bench/package-lock.json, builds target/release/thumbs, runs "
             "`bench/bench.py`, writes this page with `bench/report.py`). Raw figures: "
             "[results.json](results.json).\n")
    L.append("## The job\n")
    L.append("Three renditions per image - thumb 150x150 cover with attention crop, small 480 wide, "
             "large 1080 wide, never upscaled - as WebP q=80, metadata stripped, EXIF orientation "
             "applied. Contenders:\n")
    L.append("- **thumbs**: `thumbs render --jobs N` (default strategy: one decode feeds all "
             "three presets).\n- **thumbs per-preset**: one libvips shrink-on-load thumbnail call per "
             "preset and image: `thumbs render` once per preset over the batch, each time with that "
             "preset alone, per-image times summed (not `THUMBS_STRATEGY=per-preset`, which also "
             "pays for the shared decode).\n- **sharp**: the original system's way, "
             "`sharp(buffer).rotate().resize(...).webp({quality: 80})` once per preset "
             "(bench/sharp-render.js), one warm Node process.\n- **vipsthumbnail**: Debian's CLI "
             "once per preset (`-s 150x150> -m attention`, `-s 480x>`, `-s 1080x>`, "
             "`[Q=80,strip]`), so three processes per image.\n- **sharp decode-once**: the best "
             "sharp pipeline, what a sharp user who knows better writes: one decode shrinking on "
             "load to the largest preset (`resize({width: 1080})`), `.raw()` pixels kept in memory, "
             "the three presets derived from them and encoded at once (`--way once`).\n"
             "- **..., libvips X**: the same on another libvips: thumbs through "
             "`scripts/setup/libvips-run.sh RELEASE`; sharp and the floor on the Lambda layer's "
             "libvips (see the section on the layer's libvips below).\n"
             "- **floor**: bench/floor.c, only the decode at the needed scale and the three "
             "encodes timed (see below).\n")
    L.append("One core: `taskset -c 0` and `VIPS_CONCURRENCY=1`, one image at a time. All cores: "
             f"{v['cores']} images at a time (`--jobs`/`--parallel`/parallel processes), libvips "
             "threads at their default. Rounds are interleaved (each contender in turn over the "
             "same files, repeated), and ratios are taken round by round, so drift cancels. "
             "thumbs and sharp per-image times are measured inside the process (read, decode, "
             "three encodes, writes); vipsthumbnail's include its three process starts.\n")

    L.append("## Corpus\n")
    n12 = sum(1 for c in results["corpus"] if c["file"].startswith("jpeg/")
              and float(c["megapixels"]) >= 12)
    L.append(f"`scripts/build/corpus.sh` -> target/bench-corpus/ ({len(results['corpus'])} files; "
             f"{n12} packaged JPEGs of 12 MP or more, copied byte for byte, nothing upscaled). "
             "Debian 12's wallpaper packages hold only four camera photos of 12 MP or more "
             "(kleiber, seeding, dragonfly, sunset); the other eight are a photographed painting, "
             "a photo composite and six pieces of digital art shipped as large JPEGs. Derived "
             "cases are made from the CC0 photo at full size.\n")
    L.append("| file | MP | bytes | source package | kind, author, licence |\n| --- | ---: | ---: | --- | --- |")
    for c in results["corpus"]:
        L.append(f"| {c['file']} | {c['megapixels']} | {int(c['bytes']):,} | {c['package']} "
                 f"{c['version']} | {c['kind, author, licence']} |")
    L.append("")
    if results.get("probe_failures"):
        L.append("Files a contender could not render (left out of all timings so every "
                 "contender does the same work):\n")
        for name, errs in results["probe_failures"].items():
            for f, e in errs.items():
                L.append(f"- {name}: `{Path(f).name}`: {e[:160]}")
        L.append("")

    L.append("## Throughput\n")
    L.append(f"{len(results['common_files'])} files per round, "
             f"{results['settings']['rounds']} rounds per mode.\n")
    L.append("| contender | one core: images/s | ms/image | time vs thumbs (min-max) | peak RSS MiB "
             "| all cores: images/s per core | time vs thumbs (min-max) | peak RSS MiB "
             "| output bytes per round | bytes vs thumbs |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base_bytes = median_bytes(results["one_core"]["thumbs"])
    for name in one:
        a, b = one[name], allc[name]
        nb = median_bytes(results["one_core"][name])
        L.append(f"| {name} | {a['per_core']:.2f} | {a['ms_per_image']:.0f} | {a['ratio']:.2f}x "
                 f"({a['ratio_lo']:.2f}-{a['ratio_hi']:.2f}) | {a['rss']:.0f} | "
                 f"{b['per_core']:.2f} | {b['ratio']:.2f}x ({b['ratio_lo']:.2f}-{b['ratio_hi']:.2f})"
                 f" | {b['rss']:.0f} | " + " | ".join(bytes_cells(nb, base_bytes)) + " |")
    L.append("")
    L.append("The floor's figures are its timed work only (decode at the needed scale and three "
             "encodes), not a process's wall time. Output bytes: the WebP renditions one round "
             "wrote (median over the rounds).")
    L.append("")

    per_file = {n: {} for n in one}
    for n, rounds in results["one_core"].items():
        for r in rounds:
            for f, t in r["ms"]:
                per_file[n].setdefault(f, []).append(t)
    L.append("Per file, one core (median ms over the rounds, measured as in the single-image "
             "section):\n")
    L.append("| file | " + " | ".join(per_file) + " |\n| --- |" + " ---: |" * len(per_file))
    for f in results["common_files"]:
        L.append(f"| {'/'.join(Path(f).parts[-2:])} | "
                 + " | ".join(f"{med(per_file[n].get(f, [])):.0f}" for n in per_file) + " |")
    jpegs = [f for f in results["common_files"] if "/jpeg/" in f]
    jpeg_sum = {n: sum(med(per_file[n][f]) for f in jpegs) for n in per_file}
    L.append("")
    L.append(f"On the {len(jpegs)} packaged JPEGs alone (sum of per-file medians): "
             + ", ".join(f"{n} {jpeg_sum[n] / 1000:.1f} s ({jpeg_sum[n] / jpeg_sum['thumbs']:.2f}x "
                         "thumbs)" for n in per_file) + ".\n")

    L += layer_section(results)
    if any(on_release(n) for n in results["one_core"]):
        L += versions_section(results)

    L.append("## One image at a time, one core (12, 18 and 20 MP JPEGs)\n")
    L.append(f"Each round each contender's process renders the image "
             f"{results['settings']['single_repeat']} times; "
             f"{results['settings']['single_rounds']} interleaved rounds. Peak RSS is the "
             "median over rounds of the whole process's maximum resident set (wait4 ru_maxrss), "
             "for vipsthumbnail the largest of its three processes.\n")
    L.append("| image | contender | median ms | p95 ms | samples | peak RSS MiB (max) |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for img, rows in singles.items():
        for name, s in rows.items():
            L.append(f"| {img} ({mp[img]['megapixels']} MP, {int(mp[img]['bytes']) / 1e6:.1f} MB) "
                     f"| {name} | {s['median']:.0f} | {s['p95']:.0f} | {s['n']} | "
                     f"{s['rss']:.0f} ({s['rss_max']:.0f}) |")
    L.append("")

    st = results.get("startup")
    if st and "thumbs" in st:  # results from before the test-event trial: image event only
        st = {"image_event": st}
    if st:
        L.append("## Start-up under a local Lambda Runtime API\n")
        L.append("Process start to the first event's response POSTed to a Runtime API emulator "
                 "in bench/bench.py, the way Lambda sees a cold start: the process is started, "
                 "initialises, asks for an event (GET .../invocation/next; *ready* below) and "
                 "POSTs the answer (*answered*). Node runs bench/node-lambda.js (sharp and "
                 "@aws-sdk/client-s3 loaded at start as in the original, a minimal runtime loop); "
                 "thumbs runs `thumbs lambda` twice over: **thumbs** with `VIPSHOME` pointing at a "
                 "folder holding only the libvips modules the Lambda layer ships ("
                 + ", ".join(results.get("startup_layer_modules") or ["?"])
                 + "), as deployed, and **thumbs (Debian's 5 modules)** with everything Debian's "
                 "libvips loads at start on this host (heif, jxl, magick, openslide, poppler and "
                 "their libraries). The targets use the first. Each trial gets a fresh Runtime "
                 "API. Two first events, interleaved trial by trial:\n")
        L.append("- **test event**: an SQS message whose body is an `s3:TestEvent` (what S3 sends "
                 "when a bucket notification is set up). Both handlers acknowledge it with "
                 "`{\"batchItemFailures\":[]}` and do no S3 call and no image work, so this is "
                 "the runtime's own cold start: load, initialise, one Runtime API round trip. "
                 "A good answer has no batch item failure and writes nothing.\n"
                 "- **image event**: an S3 ObjectCreated record for tests/fixtures/landscape.jpg "
                 "(1200x800) in a local moto S3, so the answer also holds a GetObject, three "
                 "renditions and the PutObjects (the cold start to the first rendered image). "
                 "A good answer has no batch item failure and the renditions are in the output "
                 "bucket.\n")
        L.append("| first event | runtime | ready: median ms | answered: median ms | p95 ms | "
                 "good answers | answered vs Node |")
        L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, by_runtime in st.items():
            node = med([t["ms"] for t in by_runtime.get("node+sharp", []) if t["ok"]])
            for name, trials in by_runtime.items():
                ms = [t["ms"] for t in trials if t["ok"]]
                ready = [t["ready_ms"] for t in trials if t["ok"] and t.get("ready_ms")]
                L.append(f"| {kind.replace('_', ' ')} | {name} | "
                         f"{f'{med(ready):.0f}' if ready else '-'} | {med(ms):.0f} | {p95(ms):.0f} | "
                         f"{len(ms)}/{len(trials)} | {med(ms) / node:.2f}x |")
        L.append("")
        for kind, by_runtime in st.items():
            for name, trials in by_runtime.items():
                bad = [t for t in trials if not t["ok"]]
                if bad:
                    L.append(f"{kind.replace('_', ' ')}, {name}: {len(bad)} trial(s) gave no good "
                             f"answer; the first one's answer `{bad[0]['answer']}`, "
                             f"{bad[0]['outputs']} output(s), stderr tail:\n\n```\n"
                             f"{bad[0]['stderr'].strip()[-400:]}\n```\n")

    L.append("## Cost per million images on Lambda arm64 (model)\n")
    L.append(f"Prices (US East, AWS public price lists, 2024-2025, not fetched live): Lambda arm64 "
             f"${PRICE['lambda_arm_gb_s']:.10f} per GB-s and $0.20 per million requests; S3 Standard "
             f"GET $0.0004 and PUT $0.005 per 1,000; SQS standard $0.40 per million requests "
             f"(one SendMessage from S3 plus Receive/Delete shared by a batch of {SQS_BATCH}). "
             "Model: the one-core time per image measured here (corpus average) stands for one "
             "vCPU of Graviton (not verified: this machine is x86_64); below 1769 MB Lambda gives "
             "a proportional share of a vCPU, so time grows as 1769/MB; above it one image at a "
             "time gets no faster. The setting must exceed the 18 MP peak RSS by 10 %. Below 1769 "
             "MB the GB-seconds are the same for every setting that fits, so the cheapest is a "
             "tie broken here by the smallest; latency is best at 1769 MB. Free tiers and "
             "cold-start (init) time are left out.\n")
    L.append("| contender | ms/image (1 vCPU) | 18 MP peak RSS MiB | cheapest setting | "
             "s/image there | Lambda $ / M images | S3 + SQS $ / M | total $ / M |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    costs = {}
    for name, puts in (("thumbs", 4), ("sharp", 3)):
        ms = one[name]["ms_per_image"]
        rss = singles["elephants"][name]["rss_max"]
        best, table, other = lambda_cost(ms, rss, puts)
        costs[name] = (best, table, other)
        L.append(f"| {name} | {ms:.0f} | {rss:.0f} | {best[0]} MB | {best[1]:.2f} | "
                 f"{best[2]:.2f} | {other:.2f} | {best[2] + other:.2f} |")
    sharp_ms = one["sharp"]["ms_per_image"]
    secs128 = sharp_ms / 1000 * FULL_VCPU_MB / 128
    cost128 = 1e6 * (128 / 1024 * secs128 * PRICE["lambda_arm_gb_s"] + PRICE["lambda_request"])
    rss18 = singles["elephants"]["sharp"]["rss_max"]
    L.append("")
    L.append(f"The original at 128 MB: {secs128:.1f} s per image by this model and "
             f"${cost128:.2f} per million images for Lambda alone, but its measured peak RSS for "
             f"the 18 MP JPEG is {rss18:.0f} MiB, so at 128 MB it "
             f"{'would be killed for lack of memory on such images' if rss18 > 128 else 'fits'}. "
             "Per memory setting (Lambda $ per million images; - = does not fit):\n")
    L.append("| MB | " + " | ".join(str(m) for m in MEMORY_SETTINGS) + " |")
    L.append("| --- |" + " ---: |" * len(MEMORY_SETTINGS))
    for name, (_, table, _) in costs.items():
        L.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.2f}"
                                             for _, _, c in table) + " |")
    L.append("")

    L.append("## Against the targets\n")
    t1, s1 = one["thumbs"], one["sharp"]
    thr = s1["ms_per_image"] / t1["ms_per_image"]
    L.append(f"- Throughput per core >= 2x sharp: **{thr:.2f}x** on one core "
             f"({'met' if thr >= 2 else 'missed'}); all cores "
             f"{allc['sharp']['ms_per_image'] / allc['thumbs']['ms_per_image']:.2f}x.")
    r18 = singles["elephants"]["thumbs"]["rss_max"] / singles["elephants"]["sharp"]["rss_max"]
    L.append(f"- The same on the packaged JPEGs alone: **{jpeg_sum['sharp'] / jpeg_sum['thumbs']:.2f}x**"
             f" ({'met' if jpeg_sum['sharp'] >= 2 * jpeg_sum['thumbs'] else 'missed'}); "
             f"vs the fastest other libvips way there: thumbs takes "
             f"{jpeg_sum['thumbs'] / min(v for k, v in jpeg_sum.items() if other_way(k)):.2f}x.")
    L.append(f"- Peak memory for an 18 MP JPEG <= 0.5x sharp: **{r18:.2f}x** "
             f"({'met' if r18 <= 0.5 else 'missed'}).")
    labels = {"test_event": "cold start to first answer (test event)",
              "image_event": "cold start to first rendered image (image event)"}
    for kind, by_runtime in (st or {}).items():
        if all(any(t["ok"] for t in trials) for trials in by_runtime.values()):
            tm = med([t["ms"] for t in by_runtime["thumbs"] if t["ok"]])
            nm = med([t["ms"] for t in by_runtime["node+sharp"] if t["ok"]])
            L.append(f"- Start-up <= 1/5 of Node, {labels.get(kind, kind)}: **{tm / nm:.2f}x** "
                     f"({tm:.0f} vs {nm:.0f} ms; {'met' if tm <= nm / 5 else 'missed'}).")
        else:
            L.append(f"- Start-up, {labels.get(kind, kind)}: no good answer from a runtime in "
                     "this run (see the start-up section).")
    if not st:
        L.append("- Start-up: not measured in this run.")
    libvips_ways = {k: one[k]["ms_per_image"] for k in one if other_way(k)}
    fastest = min(libvips_ways, key=libvips_ways.get)
    rel = t1["ms_per_image"] / libvips_ways[fastest]
    L.append(f"- Within 1.25x of the fastest other libvips-based way ({fastest}, "
             f"{libvips_ways[fastest]:.0f} ms/image): thumbs takes **{rel:.2f}x** its time "
             f"({'met' if rel <= 1.25 else 'missed'}).")
    L.append("")
    L.append("Why targets are missed, and what this run can and cannot show: "
             "[NOTES.md](NOTES.md).\n")
    L.append("![throughput and memory](chart.svg)\n")
    (docs / "README.md").write_text("\n".join(L))

    bars = [(f"{n} (1 core)", one[n]["per_core"]) for n in one]
    bars += [(f"{n} (all cores)", allc[n]["per_core"]) for n in allc]
    first, h1 = svg_bars(bars, "Images per second per core (higher is better; the floor: its timed "
                         "work only)", "img/s", 0)
    second, h2 = svg_bars([(n, s["rss_max"]) for n, s in singles["elephants"].items()],
                          "Peak RSS, 18 MP JPEG, one core (lower is better)", "MiB", h1)
    thumbs, sharp_orig, sharp_once, floor = layer_names(results)
    third, h3 = [], 0
    if thumbs and (sharp_once or floor):
        goals = {sharp_once: GOAL_VS_SHARP, floor: 1 / GOAL_VS_FLOOR}
        layer = [(n, med(speed_over(results, n, thumbs))) for n in (sharp_orig, sharp_once, floor)
                 if n]
        third, h3 = svg_bars(layer, f"{thumbs}: speed over each, one core (red: the goal)", "x",
                             h1 + h2, {n: g for n, g in goals.items() if n})
    (docs / "chart.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{h1 + h2 + h3}" '
        'font-family="sans-serif" font-size="12">\n' + "\n".join(first + second + third)
        + "\n</svg>\n")


if __name__ == "__main__":
    main()
