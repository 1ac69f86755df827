"""`thumbs lambda` behind cargo-lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`).

The SQS event is built from real moto notification bodies (received from the stack's queue), as
the event source mapping would deliver them, plus one record whose body is not an S3 event.
"""
import json
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import FIXTURES, ROOT, Proc, account, queue_counts, upload, worker_env

CARGO_LAMBDA = ROOT / ".venv" / "bin" / "cargo-lambda"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def runtime_api(tmp_path):
    """The Runtime API emulator; yields its host:port."""
    if not CARGO_LAMBDA.exists():
        pytest.fail(f"{CARGO_LAMBDA} missing: scripts/setup/venv.sh installs cargo-lambda")
    port = _free_port()
    log = open(tmp_path / "cargo-lambda.log", "wb")
    p = subprocess.Popen([str(CARGO_LAMBDA), "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1",
                          "-P", str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert p.poll() is None and time.monotonic() < deadline, (tmp_path / "cargo-lambda.log").read_text()
            time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    p.terminate()
    p.wait(10)
    log.close()


def _invoke(api, event, timeout=120):
    req = urllib.request.Request(f"http://{api}/2015-03-31/functions/_/invocations",
                                 data=json.dumps(event).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _sqs_record(res, message_id, body):
    return {
        "messageId": message_id,
        "receiptHandle": "handle-" + message_id,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": res["queue_arn"],
        "awsRegion": "us-east-1",
    }


def _notifications(sqs, res, count):
    """The S3 notification messages moto queued (skipping its s3:TestEvent)."""
    found = []
    deadline = time.monotonic() + 20
    while len(found) < count and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=res["queue_url"], MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1).get("Messages", []):
            if "Records" in json.loads(m["Body"]):
                found.append(m)
    assert len(found) == count, found
    return found


def _start_lambda(thumbs_bin, endpoint, res, api, tmp_path, name, **extra):
    env = worker_env(endpoint, res, **extra)
    # cargo-lambda serves the Runtime API under /.rt (it prints this value when it starts)
    env.update(AWS_LAMBDA_RUNTIME_API=f"http://{api}/.rt", AWS_LAMBDA_FUNCTION_NAME="_", AWS_LAMBDA_FUNCTION_VERSION="1",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024")
    return Proc([str(thumbs_bin), "lambda"], env, tmp_path / f"{name}.log")


def test_lambda_partial_batch_and_dlq(aws, endpoint, make_stack, thumbs_bin, runtime_api, tmp_path):
    s3, sqs = aws
    res = make_stack(visibility_timeout=60)
    good, corrupt = "uploads/lambda/good photo ü.jpg", "uploads/lambda/truncated.jpg"
    upload(s3, res, good, (FIXTURES / "landscape.jpg").read_bytes())
    upload(s3, res, corrupt, (FIXTURES / "truncated.jpg").read_bytes())
    msgs = _notifications(sqs, res, 2)
    records = [_sqs_record(res, m["MessageId"], m["Body"]) for m in msgs]
    junk_id = str(uuid.uuid4())
    records.append(_sqs_record(res, junk_id, "hello, I am not an S3 event"))

    fn = _start_lambda(thumbs_bin, endpoint, res, runtime_api, tmp_path, "lambda")
    try:
        result = _invoke(runtime_api, {"Records": records})
    finally:
        fn.stop()
        print(fn.log()[-3000:])
    print("response:", result)
    # permanent failures went to the DLQ at once, so none of the three is left for SQS to retry
    assert result == {"batchItemFailures": []}
    report = account(s3, sqs, res)
    assert report.rendered == {good} and report.ok, report.problems()
    assert [d.kind for d in report.dead[corrupt]] == ["corrupt"]
    assert [(d.kind, d.body) for d in report.stray] == [("malformed_message", "hello, I am not an S3 event")]
    assert report.stray[0].attributes["SourceMessageId"] == junk_id
    renditions = {r["preset"] for r in report.manifests[good]["renditions"]}
    assert renditions == {"thumb", "small", "large"}


def test_lambda_reports_retryable_failures(aws, endpoint, make_stack, thumbs_bin, runtime_api, tmp_path, faultproxy):
    """Every S3 GET answers 503: each record is a retryable failure, reported, not dead-lettered."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=60)
    for i in range(2):
        upload(s3, res, f"uploads/lambda/{i}.jpg", (FIXTURES / "landscape.jpg").read_bytes())
    records = [_sqs_record(res, m["MessageId"], m["Body"]) for m in _notifications(sqs, res, 2)]
    proxy, stats = faultproxy("--fail-rate", "1", "--methods", "GET,HEAD")
    fn = _start_lambda(thumbs_bin, endpoint, res, runtime_api, tmp_path, "lambda-503", s3_endpoint=proxy)
    try:
        result = _invoke(runtime_api, {"Records": records})
    finally:
        fn.stop()
        print(fn.log()[-3000:])
    print("response:", result, "faultproxy:", stats())
    assert stats()["injected"] > 0
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(r["messageId"] for r in records)
    report = account(s3, sqs, res)
    assert not report.rendered and not report.dead and not report.stray


def test_lambda_answers_s3_batch_operations(aws, endpoint, make_stack, thumbs_bin, runtime_api, tmp_path):
    """AWS's documented schema 2.0 and 1.0 events, pointed at this stack: the same function renders the
    task's object and answers in Batch Operations' result format."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=60)
    s3.put_bucket_notification_configuration(Bucket=res["input_bucket"], NotificationConfiguration={})
    key = "uploads/batch/a photo+1.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    v2 = json.loads((FIXTURES / "events" / "batch-operations-2.0.json").read_text())
    task = v2["tasks"][0]
    v2["tasks"] = [dict(task, taskId="ok", s3Bucket=res["input_bucket"], s3Key="uploads/batch/a%20photo%2B1.jpg"),
                   dict(task, taskId="gone", s3Bucket=res["input_bucket"], s3Key="uploads/batch/missing.jpg")]
    v1 = json.loads((FIXTURES / "events" / "batch-operations-1.0.json").read_text())
    v1["tasks"][0].update(s3BucketArn=f"arn:aws:s3:::{res['input_bucket']}", s3VersionId=None,
                          s3Key="uploads/batch/a+photo%2B1.jpg")
    fn = _start_lambda(thumbs_bin, endpoint, res, runtime_api, tmp_path, "lambda-batch-ops")
    try:
        answer2 = _invoke(runtime_api, v2)
        answer1 = _invoke(runtime_api, v1)
    finally:
        fn.stop()
        print(fn.log()[-3000:])
    print("responses:", answer2, answer1)
    assert answer2["invocationSchemaVersion"] == "2.0" and answer2["invocationId"] == v2["invocationId"]
    assert answer2["treatMissingKeysAs"] == "PermanentFailure"
    codes = {r["taskId"]: (r["resultCode"], r["resultString"].split(":")[0]) for r in answer2["results"]}
    assert codes == {"ok": ("Succeeded", "rendered"), "gone": ("PermanentFailure", "not_found")}
    # The 1.0 task names the same object (`+` is a space): already rendered by the 2.0 job, so it
    # succeeds without a render (a misdecoded key would be a PermanentFailure, not_found).
    assert answer1["results"] == [{"taskId": v1["tasks"][0]["taskId"], "resultCode": "Succeeded",
                                   "resultString": "nothing to do"}]
    assert fn.log().count('"outcome":"rendered"') == 1  # JSON logs, as on Lambda
    report = account(s3, sqs, res)
    assert report.rendered == {key} and report.ok, report.problems()
    # Failures are reported to the job, not dead-lettered.
    assert not report.stray and queue_counts(sqs, res["dlq_url"]) == (0, 0)


def test_lambda_tries_the_messages_of_a_crashed_invocation_alone(aws, endpoint, make_stack, thumbs_bin, runtime_api,
                                                                 tmp_path):
    """QUEUE_URL set (as the template does): a message whose invocation ended without an answer
    (receive count 2) is sent back to the queue as a copy marked to be tried alone, untried and
    acknowledged; a copy tried alone that comes back the same way is dead-lettered as `crashed`.
    The copies and letters go through SendMessageBatch with message attributes, against moto."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=60)
    upload(s3, res, "uploads/lambda/crash.jpg", (FIXTURES / "landscape.jpg").read_bytes())
    [notification] = _notifications(sqs, res, 1)
    crashed = _sqs_record(res, notification["MessageId"], notification["Body"])
    crashed["attributes"]["ApproximateReceiveCount"] = "2"
    fn = _start_lambda(thumbs_bin, endpoint, res, runtime_api, tmp_path, "lambda-crash", QUEUE_URL=res["queue_url"])
    try:
        first = _invoke(runtime_api, {"Records": [crashed]})
        copies = []
        deadline = time.monotonic() + 20
        while not copies and time.monotonic() < deadline:
            copies = sqs.receive_message(QueueUrl=res["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                         MessageAttributeNames=["All"]).get("Messages", [])
        assert len(copies) == 1, copies
        [copy] = copies
        attributes = {k: v["StringValue"] for k, v in copy.get("MessageAttributes", {}).items()}
        assert attributes == {"ThumbsAttempts": "0", "ThumbsSolo": "true"}
        assert copy["Body"] == notification["Body"]
        # The copy, tried alone, ended its invocation without an answer too.
        again = _sqs_record(res, copy["MessageId"], copy["Body"])
        again["attributes"]["ApproximateReceiveCount"] = "2"
        again["messageAttributes"] = {k: {"stringValue": v, "dataType": "String"} for k, v in attributes.items()}
        second = _invoke(runtime_api, {"Records": [again]})
    finally:
        fn.stop()
        print(fn.log()[-3000:])
    assert first == second == {"batchItemFailures": []}
    report = account(s3, sqs, res)
    assert not report.rendered
    assert [d.kind for d in report.dead["uploads/lambda/crash.jpg"]] == ["crashed"]
