#!/usr/bin/env python3
"""Whose is the enqueue rate: `thumbs backfill`'s or the emulator's? Same server, same count, same idle queue.

  scripts/bench/backfill_bench.py [N]   (AWS_ENDPOINT_URL from `scripts/local-aws/local-aws.sh up`; default N=1000)

Puts N small objects into a uuid-named stack with the notification off (as if they predated the
pipeline), then times, each into an empty queue that nothing consumes:
  - `target/release/thumbs backfill` listing and enqueueing the N objects;
  - boto3 sending N messages of the same size with SendMessageBatch from 8 threads (the backfill's
    8 batches in flight), without any listing: the least any client can do;
  - 20 SendMessageBatch calls while the queue is empty and 20 when it holds N messages.
If the two totals are close and a batch costs more in a deeper queue, the rate is the emulator's.
Prints the figures as JSON and deletes what it created. The end-to-end figure (listed, enqueued and
rendered exactly once) is scripts/bench/backfill-bench.sh.
"""
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "local-aws"))
import local_stack  # noqa: E402


def queued(sqs, url):
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def send_batch(sqs, url, body):
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)])


def ms_per_batch(sqs, url, body, calls=20):
    t = time.monotonic()
    for _ in range(calls):
        send_batch(sqs, url, body)
    return round((time.monotonic() - t) / calls * 1000, 1)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    s3, sqs, _ = local_stack.clients()
    res = local_stack.create(visibility_timeout=60, notification=False)
    plain = sqs.create_queue(QueueName=f"thumbs-bench-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    try:
        keys = [f"uploads/bench/{i // 1000:02d}/photo {i:05d}.jpg" for i in range(n)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket=res["input_bucket"], Key=k, Body=b"x"), keys))
        sqs.purge_queue(QueueUrl=res["queue_url"])
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
        cmd = [str(ROOT / "target/release/thumbs"), "backfill", "--bucket", res["input_bucket"],
               "--queue-url", res["queue_url"]]
        t0 = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        thumbs_seconds = time.monotonic() - t0
        assert done.returncode == 0 and queued(sqs, res["queue_url"]) == n, done.stderr[-2000:]
        # The backfill's own message, so boto3 sends the same bytes.
        body = sqs.receive_message(QueueUrl=res["queue_url"], VisibilityTimeout=600)["Messages"][0]["Body"]

        empty_ms = ms_per_batch(sqs, plain, body)
        sqs.purge_queue(QueueUrl=plain)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: send_batch(sqs, plain, body), range(n // 10)))
        boto3_seconds = time.monotonic() - t0
        full_ms = ms_per_batch(sqs, plain, body)
        figures = {"objects": n, "summary": done.stdout.strip(),
                   "thumbs_backfill_seconds": round(thumbs_seconds, 2),
                   "thumbs_per_second": round(n / thumbs_seconds, 1),
                   "boto3_send_only_seconds": round(boto3_seconds, 2),
                   "boto3_per_second": round(n / boto3_seconds, 1),
                   "thumbs_over_boto3": round(thumbs_seconds / boto3_seconds, 2),
                   "ms_per_batch_queue_empty": empty_ms, f"ms_per_batch_queue_holding_{n}": full_ms}
        print(json.dumps(figures))
    finally:
        sqs.delete_queue(QueueUrl=plain)
        local_stack.delete(res)


if __name__ == "__main__":
    main()
