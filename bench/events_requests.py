#!/usr/bin/env python3
"""PutEvents requests per upload made by the real `thumbs worker`, counted at a proxy, and the events that arrive
through a rule, with the outcome events on and off (issue 21, point 5), on a local moto server.

  eval "$(scripts/local-aws/local-aws.sh up)"
  .venv/bin/python bench/events_requests.py [--bin target/release/thumbs] [--good 40] [--bad 10] [--rounds 2]

Each round: a fresh stack (scripts/local-aws/local_stack.py, with the README's example subscriber), GOOD uploads
of tests/fixtures/grey.jpg and BAD of truncated.jpg, one `thumbs worker --concurrency 1` until every upload is
accounted for. Events on: EVENT_BUS=default with EventBridge reached through scripts/local-aws/faultproxy.py
(AWS_ENDPOINT_URL_EVENTBRIDGE), which counts the PutEvents calls; the events that arrive through the rule are
counted too. Events off: EVENT_BUS unset (the control: nothing may arrive). Rounds alternate off/on. No time is
compared: a round's time is known only to the accounting poll's interval (about a second), far coarser than one
PutEvents round trip (bench/events_cost.py measures that on the emulators).
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "local-aws"))
import accounting  # noqa: E402
import local_stack  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def proxy(upstream):
    p = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "local-aws" / "faultproxy.py"), "--upstream", upstream],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening on "), line
    return p, line.split()[-1]


def one_round(binary, endpoint, good, bad, events_on, workdir):
    res = local_stack.create(endpoint, visibility_timeout=30)
    sub = local_stack.subscribe(res)
    s3, sqs = boto3.client("s3", endpoint_url=endpoint), boto3.client("sqs", endpoint_url=endpoint)
    for i in range(good):
        s3.put_object(Bucket=res["input_bucket"], Key=f"uploads/good-{i}.jpg", Body=(FIXTURES / "grey.jpg").read_bytes())
    for i in range(bad):
        s3.put_object(Bucket=res["input_bucket"], Key=f"uploads/bad-{i}.jpg", Body=(FIXTURES / "truncated.jpg").read_bytes())
    env = dict(os.environ, INPUT_BUCKETS=res["input_bucket"], OUTPUT_BUCKET=res["output_bucket"], DLQ_URL=res["dlq_url"],
               RUST_LOG="warn")
    env.pop("EVENT_BUS", None)
    px = None
    if events_on:
        px, url = proxy(endpoint)
        env.update(EVENT_BUS=sub["bus"], EVENT_SOURCE=sub["source"], AWS_ENDPOINT_URL_EVENTBRIDGE=url)
    log = open(workdir / f"worker-{'on' if events_on else 'off'}-{time.monotonic_ns()}.log", "w")
    started = time.monotonic()
    worker = subprocess.Popen([str(binary), "worker", "--queue-url", res["queue_url"], "--concurrency", "1"],
                              env=env, stdout=log, stderr=log)
    try:
        report = accounting.wait_for(lambda: accounting.account(s3, sqs, res["input_bucket"], "uploads/",
                                                                res["output_bucket"], "thumbnails/", res["dlq_url"]),
                                     300)
        elapsed = time.monotonic() - started
        assert not report.missing, report.summary()
        calls = json.loads(urllib.request.urlopen(url + "/__faultproxy__/stats").read())["requests"] if px else 0
        arrived = len(accounting.drain(sqs, sub["queue_url"], quiet_for=2))
    finally:
        worker.terminate()
        worker.wait(30)
        if px:
            px.terminate()
            px.wait(10)
        local_stack.delete(res)
    return elapsed, calls, arrived


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "thumbs"))
    ap.add_argument("--good", type=int, default=40)
    ap.add_argument("--bad", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    uploads = a.good + a.bad
    with tempfile.TemporaryDirectory(prefix="events-bench-") as tmp:
        for r in range(a.rounds):
            for on in (False, True):
                elapsed, calls, arrived = one_round(a.bin, endpoint, a.good, a.bad, on, Path(tmp))
                calls_text = f"{calls} PutEvents calls ({calls / uploads:.2f} per upload)" if on else "no proxy"
                print(f"round {r + 1}, events {'on ' if on else 'off'}: {uploads} uploads ({a.good} rendered, "
                      f"{a.bad} refused) accounted in about {elapsed:.0f} s; {calls_text}; {arrived} events arrived "
                      "through the rule", flush=True)


if __name__ == "__main__":
    main()
