#!/usr/bin/env python3
"""Download what the pipeline produced and write a self-contained HTML page about it.

  scripts/demo_page.py --endpoint URL --input-bucket B --output-bucket B --dlq-url URL --out demo-out

For every upload: the original beside its renditions (size and bytes from manifest.json), or,
for a dead-lettered upload, its ErrorKind and ErrorMessage. Files are downloaded into OUT/ and
referenced relatively; the page loads nothing from the network.
"""
import html
import json
import sys
from pathlib import Path
from urllib.parse import quote

import boto3

import accounting

BROWSER_FORMATS = {"jpg", "jpeg", "png", "gif", "webp", "avif", "svg"}

CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.1em;margin:0 0 .4em;word-break:break-all}
.card{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
.row{display:flex;gap:1.2em;align-items:flex-end;flex-wrap:wrap}
figure{margin:0} figcaption{font-size:12px;color:#555}
img{max-width:360px;max-height:260px;border:1px solid #eee;background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}
.dead{border-color:#d66;background:#fff6f6} .kind{font-weight:600;color:#a00}
code{background:#f4f4f4;padding:0 .2em;word-break:break-all} .note{color:#777;font-size:12px}
"""


def human(n):
    return f"{n:,} B" if n < 10_000 else f"{n / 1024:,.1f} KiB"


def local_name(key):
    """A safe relative file name for an S3 key (keeps the key readable)."""
    return "/".join(part.replace("..", "_") for part in key.split("/") if part not in ("", ".", ".."))


def fetch(s3, bucket, key, out):
    """Download to OUT/<key> (uploads/... and thumbnails/... keep their own trees)."""
    dest = out / local_name(key)
    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(dest))
    return dest.relative_to(out).as_posix()


def img(rel, alt):
    return f'<img src="{html.escape(quote(rel))}" alt="{html.escape(alt)}" loading="lazy">'


def original_html(s3, a, key, meta, out, rejected=False):
    rel = fetch(s3, a.input_bucket, key, out)
    ext = key.rsplit(".", 1)[-1].lower() if "." in key else ""
    cap = f"original &middot; {human(meta['size'])}"
    link = f'<a href="{html.escape(quote(rel))}">download</a>'
    if rejected:  # never inline what thumbs refused: it may be a decompression bomb
        body = f'<p class="note">not shown; {link}</p>'
    elif ext in BROWSER_FORMATS:
        body = img(rel, key)
    else:
        body = f'<p class="note">browsers cannot show .{html.escape(ext)}; {link}</p>'
    return body, cap


def rendered_card(s3, a, key, meta, manifest, out):
    orig, cap = original_html(s3, a, key, meta, out)
    src = manifest.get("source", {})
    if src.get("width"):
        cap += f" &middot; {src['width']}&times;{src['height']} {html.escape(str(src.get('format', '')))}"
    figs = [f"<figure>{orig}<figcaption>{cap}</figcaption></figure>"]
    base = a.output_prefix + key[len(a.input_prefix):] + "/"
    for r in manifest.get("renditions", []):
        rkey = r["key"] if r["key"].startswith(a.output_prefix) else base + r["key"]
        rel = fetch(s3, a.output_bucket, rkey, out)
        figs.append(
            f"<figure>{img(rel, r.get('preset', ''))}<figcaption>{html.escape(str(r.get('preset')))} "
            f"&middot; {r.get('width')}&times;{r.get('height')} {html.escape(str(r.get('format')))} "
            f"&middot; {human(r.get('bytes', 0))}</figcaption></figure>"
        )
    mrel = fetch(s3, a.output_bucket, base + "manifest.json", out)
    return (
        f'<div class="card"><h2>{html.escape(key)}</h2><div class="row">{"".join(figs)}</div>'
        f'<p class="note"><a href="{html.escape(quote(mrel))}">manifest.json</a> &middot; placeholder (thumbhash) '
        f'<code>{html.escape(str(manifest.get("placeholder", "")))}</code></p></div>'
    )


def dead_card(s3, a, key, meta, letters, out):
    orig, cap = original_html(s3, a, key, meta, out, rejected=True)
    rows = "".join(
        f'<p><span class="kind">{html.escape(d.kind)}</span> {html.escape(d.attributes.get("ErrorMessage", ""))}</p>'
        for d in letters
    )
    return (
        f'<div class="card dead"><h2>{html.escape(key)} &rarr; dead-letter queue</h2>'
        f'<div class="row"><figure>{orig}<figcaption>{cap}</figcaption></figure><div>{rows}</div></div></div>'
    )


def main():
    ap = accounting.stack_arguments(__doc__)
    ap.add_argument("--out", default="demo-out")
    a = ap.parse_args()
    kw = dict(endpoint_url=a.endpoint, region_name="us-east-1")
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report = accounting.account(s3, sqs, a.input_bucket, a.input_prefix, a.output_bucket, a.output_prefix, a.dlq_url)

    cards = []
    for key in sorted(report.uploads):
        meta = report.uploads[key]
        if key in report.manifests and report.manifests[key] is not None:
            cards.append(rendered_card(s3, a, key, meta, report.manifests[key], out))
        if key in report.dead:
            cards.append(dead_card(s3, a, key, meta, report.dead[key], out))
        if key in report.missing:
            cards.append(f'<div class="card dead"><h2>{html.escape(key)}</h2><p class="kind">missing: '
                         "neither rendered nor dead-lettered</p></div>")
    for d in report.stray:
        cards.append(f'<div class="card dead"><h2>DLQ message {html.escape(d.message_id)}</h2>'
                     f'<p><span class="kind">{html.escape(d.kind)}</span> '
                     f'{html.escape(d.attributes.get("ErrorMessage", ""))}</p>'
                     f"<p><code>{html.escape(d.body[:500])}</code></p></div>")
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report.problems())
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>thumbs demo</title>'
        f"<style>{CSS}</style></head><body><h1>thumbs demo</h1>"
        f"<p><code>{html.escape(report.summary())}</code> &middot; input <code>s3://{html.escape(a.input_bucket)}/"
        f"{html.escape(a.input_prefix)}</code> &middot; output <code>s3://{html.escape(a.output_bucket)}/"
        f"{html.escape(a.output_prefix)}</code></p>"
        + (f"<ul class=kind>{problems}</ul>" if problems else "")
        + "".join(cards)
        + "</body></html>\n"
    )
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / "report.json").write_text(json.dumps({
        "summary": report.summary(),
        "rendered": sorted(report.rendered),
        "dead_lettered": {k: [d.kind for d in v] for k, v in sorted(report.dead.items())},
        "missing": sorted(report.missing),
        "problems": report.problems(),
    }, indent=2, ensure_ascii=False))
    print(report.summary())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
