#!/usr/bin/env python3
"""Check that every upload ended exactly once: rendered (one manifest.json) or dead-lettered.

Lists the input bucket under its prefix, the output bucket's manifests and every DLQ message
(received, then made visible again at once, so the check leaves the DLQ as it found it). A DLQ
message names its upload by the `Key`/`Bucket` attributes thumbs sets, or by the S3 record in
its body (messages moved by SQS redrive carry only the original body).

Prints "uploads=N rendered=R dead_lettered=D missing=M" and exits 1 when an upload is missing,
both rendered and dead-lettered, dead-lettered twice, or has a manifest that does not describe
it. A manifest that records a failure for good (no renditions, its failure) is not a render:
that upload must be dead-lettered. With --wait S it polls until nothing is missing (or S seconds
pass).
"""
import argparse
import json
import sys
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field

import boto3


@dataclass
class DeadLetter:
    message_id: str
    body: str
    attributes: dict  # message attributes, String values only
    keys: list  # (bucket, key) of the uploads this message stands for

    @property
    def kind(self):
        return self.attributes.get("ErrorKind", "redriven (no ErrorKind: retryable failure moved by SQS)")


@dataclass
class Report:
    uploads: dict  # key -> {"etag", "size"}
    manifests: dict  # key -> parsed manifest.json (None when unreadable)
    dead: dict = field(default_factory=lambda: defaultdict(list))  # key -> [DeadLetter]
    stray: list = field(default_factory=list)  # DLQ messages naming no upload of this bucket
    bad_manifest: dict = field(default_factory=dict)  # key -> reason
    # key -> manifest recording that the upload failed for good (no renditions, its failure):
    # not rendered; the upload must be dead-lettered.
    failed: dict = field(default_factory=dict)

    @property
    def rendered(self):
        return {k for k in self.uploads if k in self.manifests}

    @property
    def missing(self):
        return {k for k in self.uploads if k not in self.manifests and k not in self.dead}

    @property
    def both(self):
        return {k for k in self.uploads if k in self.manifests and k in self.dead}

    @property
    def dlq_duplicates(self):
        return {k for k, v in self.dead.items() if len(v) > 1}

    @property
    def ok(self):
        return not (self.missing or self.both or self.dlq_duplicates or self.bad_manifest)

    def summary(self):
        return (
            f"uploads={len(self.uploads)} rendered={len(self.rendered)} "
            f"dead_lettered={len([k for k in self.uploads if k in self.dead])} missing={len(self.missing)}"
        )

    def problems(self):
        lines = [f"missing: {k}" for k in sorted(self.missing)]
        lines += [f"rendered and dead-lettered: {k}" for k in sorted(self.both)]
        lines += [f"dead-lettered {len(self.dead[k])} times: {k}" for k in sorted(self.dlq_duplicates)]
        lines += [f"bad manifest for {k}: {why}" for k, why in sorted(self.bad_manifest.items())]
        return lines


def s3_key_from_record(raw):
    """S3 notification keys are form-urlencoded ('+' is a space)."""
    return urllib.parse.unquote_plus(raw)


def keys_in_body(body):
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    records = doc.get("Records") if isinstance(doc, dict) else None
    out = []
    for r in records if isinstance(records, list) else []:
        try:
            out.append((r["s3"]["bucket"]["name"], s3_key_from_record(r["s3"]["object"]["key"])))
        except (KeyError, TypeError):
            continue
    return out


def peek_queue(sqs, url):
    """Every message of the queue, leaving them all visible again."""
    seen, handles = {}, []
    while True:
        resp = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            seen[m["MessageId"]] = m
            handles.append(m["ReceiptHandle"])
    for i in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0} for j, h in enumerate(handles[i : i + 10])],
        )
    return list(seen.values())


def drain(sqs, url, quiet_for):
    """Receive and delete until the queue has been empty for `quiet_for` seconds; returns the bodies."""
    bodies = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_for:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if msgs:
            quiet_since = time.monotonic()
    return bodies


def dead_letters(sqs, url):
    out = []
    for m in peek_queue(sqs, url):
        attrs = {k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()}
        keys = [(attrs.get("Bucket", ""), attrs["Key"])] if "Key" in attrs else keys_in_body(m["Body"])
        out.append(DeadLetter(m["MessageId"], m["Body"], attrs, keys))
    return out


def list_objects(s3, bucket, prefix):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = {"etag": o["ETag"].strip('"'), "size": o["Size"]}
    return out


def check_manifest(key, upload, manifest, outputs, manifest_key):
    if manifest is None:
        return "not valid JSON"
    src = manifest.get("source", {})
    if src.get("key") != key:
        return f"source.key is {src.get('key')!r}"
    if src.get("etag", "").strip('"') != upload["etag"]:
        return f"source.etag {src.get('etag')!r} != upload etag {upload['etag']!r}"
    rends = manifest.get("renditions") or []
    if not rends:
        return "no renditions"
    base = manifest_key.rsplit("/", 1)[0] + "/"
    for r in rends:
        rk = r.get("key", "")
        if rk not in outputs and base + rk not in outputs:
            return f"rendition {rk!r} not in the output bucket"
    return None


def is_failure_manifest(manifest):
    """The manifest of an upload that failed for good: no renditions, only its failure."""
    return isinstance(manifest, dict) and not manifest.get("renditions") and bool(manifest.get("failures"))


def account(s3, sqs, input_bucket, input_prefix, output_bucket, output_prefix, dlq_url, read_manifests=True):
    uploads = list_objects(s3, input_bucket, input_prefix)
    outputs = list_objects(s3, output_bucket, output_prefix)
    # Without reading manifests, a folder holding only manifest.json is a failure's (renditions
    # are written before the manifest that lists them).
    with_renditions = {k.rsplit("/", 1)[0] for k in outputs if not k.endswith("/manifest.json")}
    report = Report(uploads=uploads, manifests={})
    for key, meta in uploads.items():
        mkey = output_prefix + key[len(input_prefix) :] + "/manifest.json"
        if mkey not in outputs:
            continue
        manifest = None
        if not read_manifests and mkey.rsplit("/", 1)[0] not in with_renditions:
            report.failed[key] = None
            continue
        if read_manifests:
            try:
                manifest = json.loads(s3.get_object(Bucket=output_bucket, Key=mkey)["Body"].read())
            except ValueError:
                pass
            if is_failure_manifest(manifest):
                report.failed[key] = manifest
                continue
            why = check_manifest(key, meta, manifest, outputs, mkey)
            if why:
                report.bad_manifest[key] = why
        report.manifests[key] = manifest
    for dl in dead_letters(sqs, dlq_url):
        mine = [k for b, k in dl.keys if b in (input_bucket, "") and k in uploads]
        if not mine:
            report.stray.append(dl)
        for k in set(mine):
            report.dead[k].append(dl)
    return report


def wait_for(fetch, timeout, interval=1.0, log=print):
    """Poll fetch() until nothing is missing; returns the last report (check .missing)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        report = fetch()
        if not report.missing:
            return report
        if report.summary() != last:
            log(f"waiting: {report.summary()}")
            last = report.summary()
        if time.monotonic() >= deadline:
            return report
        time.sleep(interval)


def stack_arguments(description):
    """A parser with the arguments that locate a pipeline: endpoint, buckets, prefixes, DLQ."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--input-bucket", required=True)
    ap.add_argument("--input-prefix", default="uploads/")
    ap.add_argument("--output-bucket", required=True)
    ap.add_argument("--output-prefix", default="thumbnails/")
    ap.add_argument("--dlq-url", required=True)
    return ap


def main():
    ap = stack_arguments(__doc__)
    ap.add_argument("--wait", type=float, default=0, help="poll up to this many seconds until nothing is missing")
    ap.add_argument("--no-manifest-check", action="store_true", help="do not download and check each manifest")
    ap.add_argument("--region", default="us-east-1")
    a = ap.parse_args()
    kw = dict(endpoint_url=a.endpoint, region_name=a.region)
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)

    def fetch():
        return account(
            s3, sqs, a.input_bucket, a.input_prefix, a.output_bucket, a.output_prefix, a.dlq_url,
            read_manifests=not a.no_manifest_check,
        )

    report = wait_for(fetch, a.wait, log=lambda s: print(s, file=sys.stderr)) if a.wait else fetch()
    if report.missing and a.wait:
        print(f"timed out after {a.wait:g}s with uploads unaccounted for", file=sys.stderr)
    for line in report.problems():
        print(line, file=sys.stderr)
    for dl in report.stray:
        print(f"note: DLQ message {dl.message_id} names no upload of {a.input_bucket}: {dl.body[:120]!r}", file=sys.stderr)
    print(report.summary())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
