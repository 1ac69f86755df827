#!/usr/bin/env python3
"""Download what the pipeline produced and write a self-contained HTML page about it.

  scripts/demo/demo_page.py --endpoint URL --input-bucket B --output-bucket B --dlq-url URL --out demo-out
      [--before SNAPSHOT] [--backfilled KEY]... [--deleted KEY]... [--transcript FILE]... [--events-queue URL]
  scripts/demo/demo_page.py ... --snapshot FILE     (record manifests and dead letters now, for --before)

For every upload: the original beside its renditions (keys, sizes and bytes from manifest.json)
and its ThumbHash placeholder decoded into a small PNG, or, for a dead-lettered upload, its
ErrorKind and ErrorMessage. Each card says how the upload got there: backfilled (named by
--backfilled), redriven (dead-lettered in the --before snapshot, rendered now), rendered (from
its own S3 event) or dead-lettered; a --deleted key's card lists what its manifest in the
snapshot named and checks each is gone now, and that its manifest.json is a tombstone. Files are downloaded into OUT/ and
referenced relatively; the page loads nothing from the network. Exit 1 when an upload is
unaccounted for or a deleted original left something behind.

--events-queue: the queue an EventBridge rule fills with the stack's outcome events (issue 21); they are
received (and deleted) when the page is written, not for --snapshot, and listed in each upload's card. Exit 1
too when an upload's outcome has no event of its type.
"""
import html
import json
import sys
from pathlib import Path
from urllib.parse import quote

import boto3

import thumbhash

# The exactly-once accounting is the local AWS tools' (scripts/local-aws/accounting.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local-aws"))
import accounting  # noqa: E402

BROWSER_FORMATS = {"jpg", "jpeg", "png", "gif", "webp", "avif", "svg"}

CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.1em;margin:0 0 .4em;word-break:break-all}
.card{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}
.row{display:flex;gap:1.2em;align-items:flex-end;flex-wrap:wrap}
figure{margin:0} figcaption{font-size:12px;color:#555}
img{max-width:280px;max-height:200px;border:1px solid #eee;background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}
.dead{border-color:#d66;background:#fff6f6} .kind{font-weight:600;color:#a00}
.gone{border-color:#999;background:#f6f6f6}
.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:3px;padding:0 .4em;margin-right:.4em;color:#fff}
.b-rendered{background:#2a7} .b-backfilled{background:#36c} .b-redriven{background:#c70}
.b-dead-lettered{background:#c33} .b-deleted{background:#666}
img.placeholder{width:128px;height:auto;max-height:none;image-rendering:auto;border:0;background:none}
pre{background:#f4f4f4;padding:.6em;font-size:12px;white-space:pre-wrap}
code{background:#f4f4f4;padding:0 .2em;word-break:break-all} .note{color:#777;font-size:12px}
.events{margin:.6em 0 0;padding:.4em .8em;border-left:3px solid #88a;background:#f7f7fc;font-size:13px}
.events ul{margin:.2em 0;padding-left:1.2em} .e-ready{background:#2a7} .e-refused{background:#c33}
.e-deleted{background:#666}
"""


# For scripts/check/browser_check.py: after the load event (every <img> has loaded or failed; none
# is lazy), write which pictures did not load, and the page's height, into the DOM, where
# chromium --dump-dom shows them.
CHECK_SCRIPT = """<script>
addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src").slice(0, 120));
  const pre = document.createElement("pre");
  pre.id = "browser-check";
  pre.textContent = JSON.stringify({images: imgs.length, failed: bad,
                                    height: document.documentElement.scrollHeight});
  const h = document.createElement("h2");
  h.textContent = "Images loaded in this browser (for scripts/check/browser_check.py)";
  document.body.append(h, pre);
});
</script>"""


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
    # Not loading="lazy": the browser check in `make test` needs every picture loaded.
    return f'<img src="{html.escape(quote(rel))}" alt="{html.escape(alt)}">'


BADGE_TEXT = {  # in the order of the demo's story
    "backfilled": "in the bucket before the notification existed; enqueued by <code>thumbs backfill</code>",
    "rendered": "rendered from its own S3 event",
    "redriven": "dead-lettered first, then moved back by <code>thumbs dlq redrive</code> after its cause was fixed",
    "dead-lettered": "in the dead-letter queue with its reason",
    "deleted": "original deleted; the worker (<code>SYNC_DELETES=true</code>) removed its renditions and left a tombstone",
}


ORDER = ["problem", *BADGE_TEXT]


def badge(outcome):
    return f'<p><span class="badge b-{outcome}">{outcome}</span><span class="note">{BADGE_TEXT[outcome]}</span></p>'


def placeholder_fig(manifest):
    """The ThumbHash decoded to a PNG (data: URI), shown at 4x: what a page paints before the thumbnail."""
    ph = manifest.get("placeholder")
    if not ph:
        return '<figure><p class="note">no placeholder in the manifest</p></figure>'
    uri, w, h = thumbhash.data_uri(ph)
    return (
        f'<figure><img class="placeholder" src="{uri}" alt="ThumbHash placeholder" width="{w * 4}" height="{h * 4}">'
        f"<figcaption>ThumbHash placeholder &middot; {w}&times;{h} px decoded from "
        f"{len(ph)} base64 chars, shown at 4&times;</figcaption></figure>"
    )


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


def rendered_card(s3, a, key, meta, manifest, out, outcome, before_letters=()):
    orig, cap = original_html(s3, a, key, meta, out)
    src = manifest.get("source", {})
    if src.get("width"):
        cap += f" &middot; {src['width']}&times;{src['height']} {html.escape(str(src.get('format', '')))}"
    if manifest.get("rule"):  # THUMBS_RULES: the rule that chose these renditions
        cap += f" &middot; rule <code>{html.escape(manifest['rule'])}</code>"
    figs = [f"<figure>{orig}<figcaption>{cap}</figcaption></figure>"]
    base = a.output_prefix + key[len(a.input_prefix):] + "/"
    for r in manifest.get("renditions", []):
        rel = fetch(s3, a.output_bucket, r["key"], out)  # names come from the manifest, never guessed
        figs.append(
            f"<figure>{img(rel, r.get('preset', ''))}<figcaption>{html.escape(str(r.get('preset')))} "
            f"&middot; {r.get('width')}&times;{r.get('height')} {html.escape(str(r.get('format')))} "
            f"&middot; {human(r.get('bytes', 0))}</figcaption></figure>"
        )
    figs.append(placeholder_fig(manifest))
    mrel = fetch(s3, a.output_bucket, base + "manifest.json", out)
    history = "".join(
        f'<p class="note">before: <span class="kind">{html.escape(d["kind"])}</span> {html.escape(d["message"])}</p>'
        for d in before_letters
    )
    return (
        f'<div class="card" data-outcome="{outcome}"><h2>{html.escape(key)}</h2>{badge(outcome)}{history}'
        f'<div class="row">{"".join(figs)}</div>'
        f'<p class="note"><a href="{html.escape(quote(mrel))}">manifest.json</a> &middot; renditions: '
        + ", ".join(f"<code>{html.escape(r['key'])}</code>" for r in manifest.get("renditions", []))
        + "</p></div>"
    )


def dead_card(s3, a, key, meta, letters, out):
    orig, cap = original_html(s3, a, key, meta, out, rejected=True)
    rows = "".join(
        f'<p><span class="kind">{html.escape(d.kind)}</span> {html.escape(d.attributes.get("ErrorMessage", ""))}</p>'
        for d in letters
    )
    return (
        f'<div class="card dead" data-outcome="dead-lettered"><h2>{html.escape(key)} &rarr; dead-letter queue</h2>'
        f'{badge("dead-lettered")}<div class="row"><figure>{orig}<figcaption>{cap}</figcaption></figure><div>{rows}</div></div></div>'
    )


def exists(s3, bucket, key):
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def deleted_card(s3, a, key, before):
    """What the snapshot's manifest named for KEY, each checked gone now. Returns (html, leftovers)."""
    manifest = before["manifests"].get(key)
    if not manifest:
        return (f'<div class="card dead"><h2>{html.escape(key)}</h2><p class="kind">deleted, but the snapshot '
                "has no manifest for it: nothing to check</p></div>"), [key]
    folder = a.output_prefix + key[len(a.input_prefix):] + "/"
    rows, left = [], []
    # The manifest stays, as a tombstone recording the deletion (a plain DELETE could race a re-upload).
    tomb = folder + "manifest.json"
    try:
        body = json.loads(s3.get_object(Bucket=a.output_bucket, Key=tomb)["Body"].read())
    except s3.exceptions.NoSuchKey:
        body = {}
    if "deleted" not in body:
        left.append(f"s3://{a.output_bucket}/{tomb} (not a tombstone)")
    state = "a tombstone now" if "deleted" in body else '<span class="kind">NOT A TOMBSTONE</span>'
    rows.append(f"<li><code>s3://{html.escape(a.output_bucket)}/{html.escape(tomb)}</code> &middot; {state}</li>")
    objects = [(a.input_bucket, key)]
    objects += [(a.output_bucket, r["key"]) for r in manifest.get("renditions", [])]
    for bucket, k in objects:
        there = exists(s3, bucket, k)
        if there:
            left.append(f"s3://{bucket}/{k}")
        state = '<span class="kind">STILL THERE</span>' if there else "gone (HEAD: 404)"
        rows.append(f"<li><code>s3://{html.escape(bucket)}/{html.escape(k)}</code> &middot; {state}</li>")
    return (
        f'<div class="card gone" data-outcome="deleted"><h2>{html.escape(key)}</h2>{badge("deleted")}'
        f'<div class="row">{placeholder_fig(manifest)}<div><p class="note">rendered before the delete; its manifest '
        f"named these objects, each checked now:</p><ul>{''.join(rows)}</ul></div></div></div>"
    ), left


def snapshot(report):
    return {
        "manifests": {k: m for k, m in report.manifests.items() if m is not None},
        "dead": {k: [{"kind": d.kind, "message": d.attributes.get("ErrorMessage", "")} for d in v]
                 for k, v in report.dead.items()},
    }


# The event each outcome must have published (issue 21), and its badge's colour.
EVENT_OF_OUTCOME = {"rendered": "Thumbnails Ready", "backfilled": "Thumbnails Ready", "redriven": "Thumbnails Ready",
                    "dead-lettered": "Upload Refused", "deleted": "Thumbnails Deleted"}
EVENT_CLASS = {"Thumbnails Ready": "e-ready", "Upload Refused": "e-refused", "Thumbnails Deleted": "e-deleted"}


def received_events(sqs, url, quiet_for=2.0):
    """Every EventBridge event in the queue (received and deleted until it stays empty for `quiet_for` s), by
    detail.key, in arrival order."""
    by_key = {}
    for body in accounting.drain(sqs, url, quiet_for):
        event = json.loads(body)
        by_key.setdefault(event.get("detail", {}).get("key", ""), []).append(event)
    return by_key


def event_line(event):
    d, kind = event["detail"], event["detail-type"]
    what = {
        "Thumbnails Ready": lambda: f"{len(d.get('renditions', []))} renditions, manifest "
                                    f"<code>{html.escape(d.get('manifest_key', ''))}</code>",
        "Upload Refused": lambda: f'<span class="kind">{html.escape(str(d.get("kind")))}</span> '
                                  f"{html.escape(str(d.get('reason')))} &middot; final: {str(d.get('final')).lower()}",
        "Thumbnails Deleted": lambda: f"{len(d.get('renditions', []))} renditions removed",
    }.get(kind, lambda: "")()
    cut = f" &middot; truncated, {d.get('renditions_omitted')} omitted" if d.get("truncated") else ""
    return (f'<li><span class="badge {EVENT_CLASS.get(kind, "")}">{html.escape(kind)}</span>'
            f"outcome_id <code>{html.escape(str(d.get('outcome_id', ''))[:16])}</code> &middot; {what}{cut}</li>")


def with_events(card, events):
    """The card with the events received for its upload listed at its end."""
    items = "".join(event_line(e) for e in events) or '<li class="kind">no event received</li>'
    block = (f'<div class="events"><p class="note">EventBridge events received for this upload '
             f"(source <code>{html.escape(events[0]['source'] if events else '')}</code>, "
             f"through a rule to an SQS queue)</p><ul>{items}</ul></div>")
    cut = card.rindex("</div>")
    return card[:cut] + block + card[cut:]


def add_events(cards, outcomes, events):
    """Each card with its upload's events, and the problems: an outcome without its event."""
    problems = []
    for i, (outcome, key, card) in enumerate(cards):
        if key is None:
            continue
        mine = events.get(key, [])
        cards[i] = (outcome, key, with_events(card, mine))
        want = EVENT_OF_OUTCOME.get(outcome)
        if want and want not in {e["detail-type"] for e in mine}:
            problems.append(f"{outcome} but no {want} event: {key}")
    return problems


def main():
    ap = accounting.stack_arguments(__doc__)
    ap.add_argument("--out", default="demo-out")
    ap.add_argument("--snapshot", help="only write the manifests and dead letters now to this JSON file")
    ap.add_argument("--before", help="a --snapshot taken earlier: its dead letters that are rendered now are 'redriven'")
    ap.add_argument("--backfilled", action="append", default=[], help="a key enqueued by thumbs backfill")
    ap.add_argument("--deleted", action="append", default=[], help="a key whose original was deleted")
    ap.add_argument("--transcript", action="append", default=[], help="a command's output to show (first line: the command)")
    ap.add_argument("--events-queue", help="the SQS queue a rule sends the stack's outcome events to")
    a = ap.parse_args()
    kw = dict(endpoint_url=a.endpoint, region_name="us-east-1")
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    report = accounting.account(s3, sqs, a.input_bucket, a.input_prefix, a.output_bucket, a.output_prefix, a.dlq_url)
    if a.snapshot:
        Path(a.snapshot).write_text(json.dumps(snapshot(report), indent=2, ensure_ascii=False))
        print(report.summary())
        return
    before = json.loads(Path(a.before).read_text()) if a.before else {"manifests": {}, "dead": {}}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    cards, outcomes, leftovers = [], {}, []
    for key in sorted(report.uploads):
        meta = report.uploads[key]
        if key in report.manifests and report.manifests[key] is not None:
            earlier = before["dead"].get(key, [])
            outcome = "redriven" if earlier else "backfilled" if key in a.backfilled else "rendered"
            outcomes[key] = outcome
            cards.append((outcome, key, rendered_card(s3, a, key, meta, report.manifests[key], out, outcome, earlier)))
        if key in report.dead:
            outcomes[key] = "dead-lettered"
            cards.append(("dead-lettered", key, dead_card(s3, a, key, meta, report.dead[key], out)))
        if key in report.missing:
            cards.append(("problem", None, f'<div class="card dead"><h2>{html.escape(key)}</h2><p class="kind">missing: '
                         "neither rendered nor dead-lettered</p></div>"))
    for d in report.stray:
        cards.append(("problem", None, f'<div class="card dead"><h2>DLQ message {html.escape(d.message_id)}</h2>'
                     f'<p><span class="kind">{html.escape(d.kind)}</span> '
                     f'{html.escape(d.attributes.get("ErrorMessage", ""))}</p>'
                     f"<p><code>{html.escape(d.body[:500])}</code></p></div>"))
    for key in a.deleted:
        card, left = deleted_card(s3, a, key, before)
        outcomes[key] = "deleted"
        cards.append(("deleted", key, card))
        leftovers += left
    problem_list = report.problems() + [f"left behind after a delete: {k}" for k in leftovers]
    problem_list += [f"backfilled but {outcomes.get(k, 'missing')}: {k}" for k in a.backfilled
                     if outcomes.get(k) != "backfilled"]
    events = received_events(sqs, a.events_queue) if a.events_queue else None
    if events is not None:
        problem_list += add_events(cards, outcomes, events)
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in problem_list)
    counts = " &middot; ".join(
        f'<span class="badge b-{o}">{o}</span>{sum(1 for v in outcomes.values() if v == o)}'
        for o in BADGE_TEXT
    )
    transcripts = "".join(
        f"<h2>{html.escape(lines[0])}</h2><pre>{html.escape(''.join(lines[1:]))}</pre>"
        for lines in (Path(t).read_text().splitlines(keepends=True) for t in a.transcript)
        if lines
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>thumbs demo</title>'
        f"<style>{CSS}</style></head><body><h1>thumbs demo</h1>"
        f"<p><code>{html.escape(report.summary())}</code> &middot; input <code>s3://{html.escape(a.input_bucket)}/"
        f"{html.escape(a.input_prefix)}</code> &middot; output <code>s3://{html.escape(a.output_bucket)}/"
        f"{html.escape(a.output_prefix)}</code></p><p>{counts}</p>"
        + (f"<ul class=kind>{problems}</ul>" if problems else "")
        # Problems first, then the story's order (BADGE_TEXT); by key within each (a stable sort).
        + "".join(c for _, _, c in sorted(cards, key=lambda c: ORDER.index(c[0])))
        + (f"<h1>What the demo ran</h1>{transcripts}" if transcripts else "")
        + CHECK_SCRIPT
        + "</body></html>\n"
    )
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / "report.json").write_text(json.dumps({
        "summary": report.summary(),
        "rendered": sorted(report.rendered),
        "dead_lettered": {k: [d.kind for d in v] for k, v in sorted(report.dead.items())},
        "missing": sorted(report.missing),
        "outcomes": dict(sorted(outcomes.items())),
        "problems": problem_list,
        "events": None if events is None else {k: [e["detail-type"] for e in v] for k, v in sorted(events.items())},
    }, indent=2, ensure_ascii=False))
    print(report.summary())
    sys.exit(0 if not problem_list else 1)


if __name__ == "__main__":
    main()
