#!/usr/bin/env python3
"""Drive the arm64 bootstrap as Lambda would, for scripts/check/hermetic-test.sh.

Sets up buckets and queues on a moto server (AWS_ENDPOINT_URL), uploads fixtures under
uploads/, lets moto's own S3 -> SQS notification make the message bodies, wraps them into
Lambda SQS events, serves those through a minimal Lambda Runtime API on 127.0.0.1, starts the
command after `--` (the sandboxed bootstrap) with AWS_LAMBDA_RUNTIME_API, INPUT_BUCKETS, OUTPUT_BUCKET and
DLQ_URL added to its environment, and checks the responses, the output bucket and the DLQ.

  hermetic_lambda.py --fixtures DIR -- COMMAND...
"""
import argparse
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-1")
PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    """The subset of the Lambda Runtime API a custom runtime uses: next, response, error."""

    def __init__(self):
        self.events = queue.Queue()
        self.results = {}  # request id -> ("response" | "error", parsed body)
        self.done = threading.Condition()
        self.init_error = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code, body=b"{}", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                rid, payload = api.events.get()
                deadline = int((time.time() + 60) * 1000)
                self._reply(200, payload, [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", rid),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn",
                     f"arn:aws:lambda:{REGION}:123456789012:function:thumbs"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                ])

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                try:
                    parsed = json.loads(body or b"null")
                except ValueError:
                    parsed = body.decode(errors="replace")
                if parts == ["init", "error"]:
                    api.init_error = parsed
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    with api.done:
                        api.results[parts[1]] = (parts[2], parsed)
                        api.done.notify_all()
                else:
                    return self._reply(404)
                self._reply(202)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, proc, timeout):
        rid = str(uuid.uuid4())
        self.events.put((rid, json.dumps(event).encode()))
        end = time.time() + timeout
        with self.done:
            while rid not in self.results:
                if proc.poll() is not None:
                    raise SystemExit(f"bootstrap exited with {proc.returncode}; init error: {self.init_error}")
                if time.time() > end:
                    raise SystemExit(f"no answer to invocation {rid} within {timeout} s")
                self.done.wait(0.5)
        return self.results[rid]


def webp_size(data):
    """(width, height) of a WebP file, from its VP8/VP8L/VP8X header; None if not WebP."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = int.from_bytes(data[21:25], "little")
        return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    return None


def sqs_records(sqs, queue_url, queue_arn, count):
    """Receive `count` S3 notifications from moto and shape them as Lambda SQS records."""
    records = {}
    end = time.time() + 30
    while len(records) < count and time.time() < end:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"])
        for m in resp.get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            if body.get("Event") == "s3:TestEvent":
                continue
            # S3 sends keys form-urlencoded (moto even encodes "/")
            key = urllib.parse.unquote_plus(body["Records"][0]["s3"]["object"]["key"])
            records[key] = {
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"], "attributes": m.get("Attributes", {}),
                "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION,
            }
    if len(records) < count:
        raise SystemExit(f"moto delivered {len(records)} of {count} S3 notifications")
    return records


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    tag = uuid.uuid4().hex[:8]
    src_bucket, out_bucket = f"hermetic-in-{tag}", f"hermetic-out-{tag}"
    for b in (src_bucket, out_bucket):
        s3.create_bucket(Bucket=b)
    q_url = sqs.create_queue(QueueName=f"hermetic-events-{tag}")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"hermetic-dlq-{tag}")["QueueUrl"]
    q_arn = sqs.get_queue_attributes(QueueUrl=q_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=src_bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": q_arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})

    good = {"uploads/landscape.jpg": "landscape.jpg", "uploads/alpha.png": "alpha.png",
            "uploads/photo.heic": "photo.heic", "uploads/nested dir/alpha+copy.png": "alpha.png"}
    bad = {"uploads/truncated.jpg": "truncated.jpg"}
    for key, name in {**good, **bad}.items():
        with open(os.path.join(args.fixtures, name), "rb") as f:
            s3.put_object(Bucket=src_bucket, Key=key, Body=f.read())
    records = sqs_records(sqs, q_url, q_arn, len(good) + len(bad))

    api = RuntimeApi()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server.server_port}",
               INPUT_BUCKETS=src_bucket, OUTPUT_BUCKET=out_bucket, DLQ_URL=dlq_url)
    failures = []
    proc = subprocess.Popen(args.command, env=env)
    try:
        started = time.time()
        # 1: a batch of good uploads (JPEG, PNG with alpha, HEIC via the heif module, an encoded key).
        kind, resp = api.invoke({"Records": [records[k] for k in good]}, proc, timeout=300)
        print(f"hermetic: batch of {len(good)} good uploads -> {kind} {json.dumps(resp)} "
              f"({time.time() - started:.1f} s, includes start-up under qemu)")
        if kind != "response" or (resp or {}).get("batchItemFailures"):
            failures.append(f"good batch not fully successful: {kind} {resp}")
        for key in good:
            rel = key[len("uploads/"):]
            listed = s3.list_objects_v2(Bucket=out_bucket, Prefix=f"thumbnails/{rel}/").get("Contents", [])
            names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed)
            if "manifest.json" not in names or len([n for n in names if n.endswith(".webp")]) < 3:
                failures.append(f"{key}: expected manifest.json and 3 WebP renditions, found {names}")
                continue
            manifest = json.loads(s3.get_object(Bucket=out_bucket, Key=f"thumbnails/{rel}/manifest.json")["Body"].read())
            # Renditions are named by a content digest; the manifest says where each is.
            thumb_key = next(r["key"] for r in manifest["renditions"] if r["preset"] == "thumb")
            thumb = s3.get_object(Bucket=out_bucket, Key=thumb_key)
            size = webp_size(thumb["Body"].read())
            print(f"hermetic: {key} -> {names}; {thumb_key.rsplit('/', 1)[1]} {size}, {thumb.get('ContentType')}")
            if size != (150, 150):
                failures.append(f"{key}: {thumb_key} is {size}, expected (150, 150)")

        # 2: a corrupt upload goes to the DLQ at once with its reason.
        bad_key = next(iter(bad))
        started = time.time()
        kind, resp = api.invoke({"Records": [records[bad_key]]}, proc, timeout=120)
        print(f"hermetic: corrupt upload -> {kind} {json.dumps(resp)} ({time.time() - started:.1f} s)")
        failed_ids = [f.get("itemIdentifier") for f in (resp or {}).get("batchItemFailures", [])]
        dlq = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        print(f"hermetic: DLQ holds {len(dlq)} message(s): "
              f"{[(m['Body'][:120], sorted(m.get('MessageAttributes', {}))) for m in dlq]}")
        # DLQ_URL is set, so a permanent failure goes to the DLQ at once, with its kind, and the
        # message is acknowledged (not a batch item failure, which would only redeliver it).
        letters = [m for m in dlq if "truncated.jpg" in m["Body"]]
        kinds = [m.get("MessageAttributes", {}).get("ErrorKind", {}).get("StringValue") for m in letters]
        if kind != "response" or failed_ids or kinds != ["corrupt"]:
            failures.append(f"corrupt upload: expected one DLQ letter of kind corrupt and no batch item failure, "
                            f"got {kind} {resp}, letters of kinds {kinds}")
        # A first upload that fails for good leaves only a failure manifest (no renditions), so
        # `backfill --only-missing` does not enqueue it again until the key changes.
        folder = "thumbnails/truncated.jpg/"
        leftover = [o["Key"] for o in s3.list_objects_v2(Bucket=out_bucket, Prefix=folder).get("Contents", [])]
        if leftover != [folder + "manifest.json"]:
            failures.append(f"corrupt upload: expected only its failure manifest, found {leftover}")
        else:
            failed = json.loads(s3.get_object(Bucket=out_bucket, Key=folder + "manifest.json")["Body"].read())
            if failed.get("renditions") or [f.get("kind") for f in failed.get("failures", [])] != ["corrupt"]:
                failures.append(f"corrupt upload: its manifest is not a failure manifest of kind corrupt: {failed}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in failures:
        print(f"hermetic: FAIL {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
