"""1,000 small uploads through one `thumbs worker`: nothing missing, nothing rendered twice.

Throughput is printed (and written to target/e2e/load.json), not asserted: it measures moto as
much as thumbs. LOAD_UPLOADS overrides the count. Each upload's `Thumbnails Ready` event is
counted through a rule on a bus of its own (tests/e2e/eventbus.py).
"""
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import FIXTURES, ROOT, account, queue_counts, upload, wait_accounted, wait_until
from eventbus import event_sink, one_per_key, summary  # noqa: F401

N = int(os.environ.get("LOAD_UPLOADS", "1000"))


def small_jpeg(thumbs_bin, tmp_path):
    """A 160 px JPEG made from landscape.jpg by `thumbs render` (no image library needed here)."""
    env = dict(os.environ, THUMBS_PRESETS="small=160", THUMBS_FORMATS="jpeg")
    subprocess.run([str(thumbs_bin), "render", "--out", str(tmp_path / "small"), str(FIXTURES / "landscape.jpg")],
                   env=env, check=True, capture_output=True)
    found = list((tmp_path / "small").rglob("small.*"))
    assert len(found) == 1, found
    return found[0].read_bytes()


def test_thousand_uploads_exactly_once(aws, make_stack, start_worker, thumbs_bin, tmp_path, event_sink):
    s3, sqs = aws
    body = small_jpeg(thumbs_bin, tmp_path)
    assert body[:3] == b"\xff\xd8\xff" and len(body) < 20_000
    res = make_stack(visibility_timeout=60)
    sink = event_sink()
    worker = start_worker(res, concurrency=int(os.environ.get("LOAD_CONCURRENCY", "4")), **sink.env())
    keys = [f"uploads/load/{i // 100:02d}/img {i:04d}.jpg" for i in range(N)]

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: upload(s3, res, k, body), keys))
    t_uploaded = time.monotonic()
    # poll cheaply (no manifest downloads) while the worker runs, then check everything once;
    # the events are received meanwhile
    with sink.collecting():
        wait_accounted(s3, sqs, res, timeout=max(300, N // 2), read_manifests=False)
    t_done = time.monotonic()
    report = account(s3, sqs, res)

    assert report.ok, report.problems()[:20]
    assert report.rendered == set(keys) and not report.dead and not report.stray
    outputs = sum(len(p.get("Contents", [])) for p in
                  s3.get_paginator("list_objects_v2").paginate(Bucket=res["output_bucket"]))
    assert outputs == 4 * N  # thumb, small, large, manifest.json per upload: no strays, no extras
    wait_until(lambda: queue_counts(sqs, res["queue_url"]) == (0, 0), 60, what="the queue to drain")
    assert queue_counts(sqs, res["dlq_url"]) == (0, 0)
    # Exactly once means renders, not only final objects: a duplicate render rewrites the same
    # keys and would hide in the counts above. The worker logs one line per render.
    renders = worker.log().count('outcome="rendered"')
    assert renders == N, f"{renders} renders for {N} uploads"
    # One `Thumbnails Ready` per rendered upload (a duplicate would carry the same id), and no
    # `Upload Refused` with an empty DLQ. The events reached their queue before the messages
    # were deleted, so a last drain finds the rest.
    t_events = time.monotonic()
    events = sink.drain(quiet=2)
    assert summary(events) == {"Thumbnails Ready": N}, summary(events)
    assert set(one_per_key(events, "Thumbnails Ready")) == set(keys)
    t_drained = time.monotonic()

    figures = {
        "uploads": N,
        "upload_seconds": round(t_uploaded - t0, 1),
        "first_upload_to_all_rendered_seconds": round(t_done - t0, 1),
        "uploads_per_second": round(N / (t_done - t0), 1),
        "input_bytes": len(body),
        "events": len(events),
        "events_drain_seconds": round(t_drained - t_events, 1),
    }
    print("load:", json.dumps(figures))
    out = ROOT / "target" / "e2e"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(figures, indent=2) + "\n")
