#!/usr/bin/env python3
"""Time `thumbs backfill` listing and enqueueing N originals on the local AWS (moto).

  scripts/bench/backfill_bench.py [N]   (AWS_ENDPOINT_URL from `scripts/local-aws/local-aws.sh up`; default N=10000)

Creates a uuid-named stack, puts N small objects with the notification off (as if they predated
the pipeline), runs target/release/thumbs backfill once, checks the queue holds exactly N
messages, prints the figures as JSON and deletes the stack. Rendering them is measured by
scripts/bench/backfill-bench.sh (the exactly-once e2e test with a worker).
"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "local-aws"))
import local_stack  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    s3, sqs, _ = local_stack.clients()
    res = local_stack.create(visibility_timeout=60)
    try:
        s3.put_bucket_notification_configuration(Bucket=res["input_bucket"], NotificationConfiguration={})
        sqs.purge_queue(QueueUrl=res["queue_url"])
        keys = [f"uploads/bench/{i // 1000:02d}/photo {i:05d}.jpg" for i in range(n)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket=res["input_bucket"], Key=k, Body=b"x"), keys))
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
        cmd = [str(ROOT / "target/release/thumbs"), "backfill", "--bucket", res["input_bucket"],
               "--queue-url", res["queue_url"]]
        t0 = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - t0
        queued = int(sqs.get_queue_attributes(QueueUrl=res["queue_url"], AttributeNames=["ApproximateNumberOfMessages"])
                     ["Attributes"]["ApproximateNumberOfMessages"])
        figures = {"objects": n, "summary": done.stdout.strip(), "exit": done.returncode,
                   "seconds": round(seconds, 2), "per_second": round(n / seconds, 1), "queued": queued}
        print(json.dumps(figures))
        assert done.returncode == 0 and queued == n, done.stderr[-2000:]
    finally:
        local_stack.delete(res)


if __name__ == "__main__":
    main()
