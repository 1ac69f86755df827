#!/usr/bin/env python3
"""What the outcome events (issue 21) add per upload: entry sizes (EventBridge bills each 64 KB chunk of an entry
as one event) and the round-trip time of one PutEvents on a local emulator.

  .venv/bin/python bench/events_cost.py [--endpoint URL] [--calls 300]

Sizes are computed the way EventBridge counts a PutEvents entry (Source + DetailType + Detail in UTF-8 bytes; AWS
docs, "Calculating PutEvents event entry size") for a `Thumbnails Ready` detail shaped as the contract says, with
keys as long as the demo's. The round trip is measured against the emulator at --endpoint (moto or LocalStack):
it is the emulator's time on this machine, not AWS's.
"""
import argparse
import json
import os
import statistics
import time

import boto3

CHUNK = 64 * 1024
LIMIT = 256 * 1024
SOURCE = "thumbs.thumbs"  # thumbs.<stack name>, for a stack called thumbs


def rendition(i, folder):
    preset = ["thumb", "small", "large"][i % 3] + (str(i // 3) if i >= 3 else "")
    return {"preset": preset, "format": "webp", "content_type": "image/webp", "width": 1080, "height": 720,
            "bytes": 123456, "key": f"{folder}{preset}.1167554f69b56a0c.webp"}


def ready(n, key="uploads/phone/summer trip/dogs at the window.jpg"):
    folder = "thumbnails/" + key[len("uploads/"):] + "/"
    return {"schema_version": "1", "outcome_id": "9f2c" * 8, "bucket": "thumbs-input-123456789012-eu-west-1",
            "key": key, "etag": "0123456789abcdef0123456789abcdef", "sequencer": "0062E99A88DC407460",
            "settings": "4f1c2a9b7d3e5f60", "manifest_key": folder + "manifest.json",
            "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "renditions": [rendition(i, folder) for i in range(n)]}


def entry_size(detail_type, detail):
    return len(SOURCE.encode()) + len(detail_type.encode()) + len(json.dumps(detail, separators=(",", ":")).encode())


def chunks(size):
    return -(-size // CHUNK)


def sizes():
    print("== entry sizes (Source + DetailType + Detail, bytes) and billed 64 KB chunks")
    for n in (3, 6, 30, 100):
        s = entry_size("Thumbnails Ready", ready(n))
        print(f"   Thumbnails Ready, {n:>3} renditions: {s:>7,} B  -> {chunks(s)} event(s) billed")
    refused = {"schema_version": "1", "outcome_id": "9f2c" * 8, "bucket": "thumbs-input-123456789012-eu-west-1",
               "key": "uploads/bad/truncated.jpg", "etag": "0123456789abcdef0123456789abcdef",
               "sequencer": "0062E99A88DC407460", "kind": "corrupt",
               "reason": "corrupt or truncated image: Premature end of input file", "final": True}
    print(f"   Upload Refused:                {entry_size('Upload Refused', refused):>7,} B  -> 1 event billed")
    per = entry_size("Thumbnails Ready", ready(2)) - entry_size("Thumbnails Ready", ready(1))
    for limit in (CHUNK, 2 * CHUNK, LIMIT):
        n = 1
        while entry_size("Thumbnails Ready", ready(n + 1)) <= limit:
            n += 1
        print(f"   renditions that fit {limit // 1024:>3} KB: {n} (about {per} B each with these keys)")


def latency(endpoint, calls):
    events = boto3.client("events", endpoint_url=endpoint, region_name="us-east-1")
    detail = json.dumps(ready(3))
    entry = {"Source": SOURCE, "DetailType": "Thumbnails Ready", "Detail": detail, "EventBusName": "default"}
    events.put_events(Entries=[entry])  # connection set up, not timed
    ms = []
    for _ in range(calls):
        t = time.perf_counter()
        out = events.put_events(Entries=[entry])
        ms.append((time.perf_counter() - t) * 1000)
        assert out["FailedEntryCount"] == 0, out
    ms.sort()
    print(f"== one PutEvents (1 entry, {len(detail):,} B detail) on {endpoint}, {calls} calls, boto3:")
    print(f"   median {statistics.median(ms):.2f} ms, p90 {ms[int(0.9 * calls)]:.2f} ms, min {ms[0]:.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    ap.add_argument("--calls", type=int, default=300)
    a = ap.parse_args()
    sizes()
    if a.endpoint:
        latency(a.endpoint, a.calls)


if __name__ == "__main__":
    main()
