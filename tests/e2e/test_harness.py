"""The harness checks itself: stack setup, accounting and faultproxy, against moto, no binary."""
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import account, queue_counts

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def test_stack_notifies_only_under_the_prefix(aws, make_stack):
    s3, sqs = aws
    res = make_stack(visibility_timeout=5)
    s3.put_object(Bucket=res["input_bucket"], Key="elsewhere/x.jpg", Body=b"x")
    s3.put_object(Bucket=res["input_bucket"], Key="uploads/dir/a b+ü.jpg", Body=b"x")
    bodies = []
    for _ in range(3):
        msgs = sqs.receive_message(QueueUrl=res["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [json.loads(m["Body"]) for m in msgs.get("Messages", [])]
    keys = [urllib.parse.unquote_plus(r["s3"]["object"]["key"]) for b in bodies for r in b.get("Records", [])]
    assert keys == ["uploads/dir/a b+ü.jpg"]
    attrs = sqs.get_queue_attributes(QueueUrl=res["queue_url"], AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "5"
    assert int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"]) == 3


def _put_rendered(s3, res, key, etag):
    base = "thumbnails/" + key[len("uploads/"):] + "/"
    manifest = {
        "source": {"bucket": res["input_bucket"], "key": key, "etag": etag},
        "renditions": [{"preset": "thumb", "key": base + "thumb.webp"}],
    }
    s3.put_object(Bucket=res["output_bucket"], Key=base + "thumb.webp", Body=b"img")
    s3.put_object(Bucket=res["output_bucket"], Key=base + "manifest.json", Body=json.dumps(manifest).encode())


def _dead_letter(sqs, res, key, by_attribute):
    record = {"s3": {"bucket": {"name": res["input_bucket"]}, "object": {"key": urllib.parse.quote_plus(key)}}}
    attrs = {}
    if by_attribute:
        attrs = {name: {"DataType": "String", "StringValue": value}
                 for name, value in (("Key", key), ("Bucket", res["input_bucket"]), ("ErrorKind", "corrupt"))}
    sqs.send_message(QueueUrl=res["dlq_url"], MessageBody=json.dumps({"Records": [record]}), MessageAttributes=attrs)


def test_accounting_finds_every_kind_of_defect(aws, make_stack):
    s3, sqs = aws
    res = make_stack()
    keys = {name: f"uploads/{name} ü.jpg" for name in ("ok", "dead", "missing", "both", "twice", "stale")}
    etags = {n: s3.put_object(Bucket=res["input_bucket"], Key=k, Body=n.encode())["ETag"].strip('"')
             for n, k in keys.items()}
    for name in ("ok", "both"):
        _put_rendered(s3, res, keys[name], etags[name])
    _put_rendered(s3, res, keys["stale"], "0" * 32)  # a manifest for an older version of the upload
    _dead_letter(sqs, res, keys["dead"], by_attribute=True)
    _dead_letter(sqs, res, keys["both"], by_attribute=False)  # as SQS redrive moves it: body only
    _dead_letter(sqs, res, keys["twice"], by_attribute=True)
    _dead_letter(sqs, res, keys["twice"], by_attribute=False)
    sqs.send_message(QueueUrl=res["dlq_url"], MessageBody="not json at all")

    report = account(s3, sqs, res)
    assert report.missing == {keys["missing"]}
    assert report.both == {keys["both"]}
    assert report.dlq_duplicates == {keys["twice"]}
    assert set(report.bad_manifest) == {keys["stale"]}
    assert [d.body for d in report.stray] == ["not json at all"]
    assert report.dead[keys["dead"]][0].kind == "corrupt"
    assert report.summary() == "uploads=6 rendered=3 dead_lettered=3 missing=1"
    assert not report.ok
    # the check leaves the DLQ as it found it: all five visible, and a second look sees the same
    assert queue_counts(sqs, res["dlq_url"]) == (5, 0)
    assert account(s3, sqs, res).summary() == report.summary()


class _Recorder(BaseHTTPRequestHandler):
    """An upstream that records what reached it."""
    protocol_version = "HTTP/1.1"
    seen = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Recorder.seen.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_faultproxy_forwards_unchanged_after_injected_503s(faultproxy):
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        url, stats = faultproxy("--fail-first", "2", upstream=f"http://127.0.0.1:{upstream.server_address[1]}")
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=NO_RETRY)
        codes = []
        for _ in range(3):
            try:
                s3.put_object(Bucket="b", Key="uploads/a b/ü.jpg", Body=b"payload")
                codes.append("ok")
            except ClientError as e:
                codes.append(e.response["Error"]["Code"])
        assert codes == ["SlowDown", "SlowDown", "ok"]
        assert (stats()["injected"], stats()["forwarded"]) == (2, 1)
        path, headers, body = _Recorder.seen[-1]
        assert (path, body) == ("/b/uploads/a%20b/%C3%BC.jpg", b"payload")
        assert headers["Host"] == url.split("//")[1]  # the Host the client signed, not the upstream's
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    finally:
        upstream.shutdown()


def test_faultproxy_window_latency_and_runtime_config(endpoint, faultproxy):
    url, stats = faultproxy("--fail-window", "0", "1.0", "--latency-ms", "100")
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=NO_RETRY)
    outcomes = []
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        t = time.monotonic()
        try:
            s3.list_buckets()
            outcomes.append("ok")
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            outcomes.append("503")
        assert time.monotonic() - t >= 0.1
    first_ok = outcomes.index("ok")
    assert first_ok > 0 and set(outcomes[first_ok:]) == {"ok"}, outcomes
    assert stats()["injected"] == first_ok
    req = urllib.request.Request(url + "/__faultproxy__/config", data=b'{"fail_first": 1}', method="POST")
    urllib.request.urlopen(req, timeout=5).read()
    try:
        s3.list_buckets()
        raise AssertionError("the reconfigured proxy did not fail the first request")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "SlowDown"
    s3.list_buckets()


def test_faultproxy_targets_fail_only_the_listed_json_calls(endpoint, faultproxy):
    """--targets AWSEvents.PutEvents: PutEvents gets EventBridge's 500 InternalException (a JSON
    error botocore parses), other EventBridge calls and S3 pass untouched."""
    url, stats = faultproxy("--targets", "AWSEvents.PutEvents", "--fail-first", "1")
    kw = dict(endpoint_url=url, region_name="us-east-1", config=NO_RETRY)
    events, s3 = boto3.client("events", **kw), boto3.client("s3", **kw)
    s3.list_buckets()
    events.list_event_buses()
    entry = {"Source": "thumbs.harness", "DetailType": "Harness", "Detail": "{}"}
    try:
        events.put_events(Entries=[entry])
        raise AssertionError("the first PutEvents was not faulted")
    except ClientError as e:
        assert (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]) == (
            500, "InternalException")
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    assert stats()["injected"] == 1 and stats()["forwarded"] == 1, stats()
