"""`thumbs worker` against moto: mixed batches, S3 throttling, mixed outcomes in one message,
SIGKILL and SIGTERM."""
import json
import signal
import time
import urllib.parse

from conftest import FIXTURES, account, queue_counts, upload, wait_accounted, wait_until

import accounting

GOOD = {
    "uploads/landscape.jpg": "landscape.jpg",
    "uploads/phone/summer trip/dogs.jpg": "orient6.jpg",
    "uploads/brushes café ü.png": "alpha.png",
    "uploads/phone/IMG 0001.heic": "photo.heic",
    "uploads/a+b=c&d.jpg": "progressive.jpg",
    "uploads/grey.jpg": "grey.jpg",
}
BAD = {  # key -> (fixture, ErrorKind)
    "uploads/bad/truncated.jpg": ("truncated.jpg", "corrupt"),
    "uploads/bad/not an image.jpg": ("text.jpg", "unsupported"),
    "uploads/bad/empty.jpg": ("empty.jpg", "empty"),
    "uploads/bad/bomb.gif": ("bomb.gif", "too_many_pixels"),
}


def _upload_all(s3, res, files):
    for key, name in files.items():
        upload(s3, res, key, (FIXTURES / name).read_bytes())


def _settled(sqs, res):
    """The work queue is empty: nothing waiting, nothing in flight."""
    return queue_counts(sqs, res["queue_url"]) == (0, 0)


def test_mixed_batch_only_bad_uploads_are_dead_lettered(aws, make_stack, start_worker):
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    worker = start_worker(res)
    _upload_all(s3, res, GOOD)
    _upload_all(s3, res, {k: v[0] for k, v in BAD.items()})
    report = wait_accounted(s3, sqs, res, timeout=120)
    assert report.ok, report.problems()
    assert report.rendered == set(GOOD)
    assert {k: [d.kind for d in v] for k, v in report.dead.items()} == {k: [v[1]] for k, v in BAD.items()}
    for key, letters in report.dead.items():
        d = letters[0]
        assert d.attributes["Bucket"] == res["input_bucket"] and d.attributes["ErrorMessage"]
        assert d.attributes["SourceMessageId"]
        # the body is the failed record, so a redrive reprocesses just that upload
        assert [k for _, k in d.keys] == [key] and len(json.loads(d.body)["Records"]) == 1
    for key in GOOD:
        m = report.manifests[key]
        assert m["source"]["width"] > 0 and m["placeholder"]
        assert sorted(r["preset"] for r in m["renditions"]) == ["large", "small", "thumb"]
        thumb = next(r for r in m["renditions"] if r["preset"] == "thumb")
        obj = s3.head_object(Bucket=res["output_bucket"], Key=thumb["key"])
        assert obj["ContentType"] == "image/webp"
        # S3 metadata is ASCII only: a non-ASCII key must arrive encoded, and decode back
        assert urllib.parse.unquote(obj["Metadata"]["source-key"]) == key
    wait_until(lambda: _settled(sqs, res), 30, what="the work queue to drain")
    assert worker.running()


def test_s3_throttling_is_retried_until_everything_renders(aws, make_stack, start_worker, faultproxy):
    """S3 (through the proxy) answers 503 SlowDown for the first 6 s; SQS is direct."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=5)
    proxy, stats = faultproxy("--fail-window", "0", "6")
    start_worker(res, s3_endpoint=proxy)
    files = {f"uploads/throttled/{i:02d}.jpg": "landscape.jpg" for i in range(8)}
    _upload_all(s3, res, files)
    report = wait_accounted(s3, sqs, res, timeout=120)
    print("faultproxy:", stats())
    assert stats()["injected"] > 0, "no fault was injected: the test proved nothing"
    assert report.ok, report.problems()
    assert report.rendered == set(files) and not report.dead


def test_sigkill_mid_batch_then_restart_loses_nothing(aws, make_stack, start_worker, faultproxy):
    s3, sqs = aws
    res = make_stack(visibility_timeout=5)
    s3.put_bucket_versioning(Bucket=res["output_bucket"], VersioningConfiguration={"Status": "Enabled"})
    proxy, _ = faultproxy("--latency-ms", "150")  # slow S3 so the kill lands mid-batch
    files = {f"uploads/kill/{i:02d} ü.jpg": "landscape.jpg" for i in range(20)}
    first = start_worker(res, s3_endpoint=proxy)
    _upload_all(s3, res, files)
    wait_until(lambda: 2 <= len(account(s3, sqs, res, read_manifests=False).rendered), 60,
               interval=0.1, what="the first renders")
    first.signal(signal.SIGKILL)
    first.wait(10)
    at_kill = account(s3, sqs, res, read_manifests=False)
    held = queue_counts(sqs, res["queue_url"])[1]
    print(f"killed with {len(at_kill.rendered)} rendered, {held} messages in flight")
    assert len(at_kill.rendered) < len(files), "the kill came too late to test anything"
    start_worker(res, s3_endpoint=proxy)
    report = wait_accounted(s3, sqs, res, timeout=120)
    assert report.ok, report.problems()
    assert report.rendered == set(files) and not report.dead
    wait_until(lambda: _settled(sqs, res), 30, what="the work queue to drain")
    writes = sum(
        1 for page in s3.get_paginator("list_object_versions").paginate(Bucket=res["output_bucket"])
        for v in page.get("Versions", []) if v["Key"].endswith("/manifest.json")
    )
    # at-least-once: uploads in flight at the kill may be rendered again (same keys, same bytes)
    print(f"manifest writes: {writes} for {len(files)} uploads")
    assert len(files) <= writes <= len(files) + held + 1


def test_sigterm_finishes_what_it_holds_and_exits_0(aws, make_stack, start_worker, faultproxy):
    s3, sqs = aws
    res = make_stack(visibility_timeout=120)  # anything left unfinished would stay in flight
    proxy, _ = faultproxy("--latency-ms", "400")
    worker = start_worker(res, concurrency=4, s3_endpoint=proxy)
    files = {f"uploads/term/{i:02d}.jpg": "landscape.jpg" for i in range(12)}
    _upload_all(s3, res, files)
    wait_until(lambda: queue_counts(sqs, res["queue_url"])[1] >= 2, 60, interval=0.1,
               what="the worker to hold messages")
    # this order counts no upload twice: one finishing in between is rendered and no longer held
    rendered_before = len(account(s3, sqs, res, read_manifests=False).rendered)
    held = queue_counts(sqs, res["queue_url"])[1]
    t = time.monotonic()
    worker.signal(signal.SIGTERM)
    rc = worker.wait(60)
    print(f"SIGTERM with {held} in flight, {rendered_before} rendered; exit {rc} after {time.monotonic() - t:.1f}s")
    assert rc == 0
    after = account(s3, sqs, res)
    waiting, in_flight = queue_counts(sqs, res["queue_url"])
    assert in_flight == 0, "the worker exited holding messages it did not finish"
    assert not after.dead and not after.bad_manifest
    assert len(after.rendered) >= rendered_before + held - 1  # -1: moto's s3:TestEvent may be among them
    assert len(after.rendered) + waiting >= len(files)
    start_worker(res, s3_endpoint=proxy)  # the rest is still queued, nothing lost
    report = wait_accounted(s3, sqs, res, timeout=120)
    assert report.ok and report.rendered == set(files)


def test_persistent_s3_outage_ends_in_the_dlq_with_its_reason(aws, make_stack, start_worker, faultproxy):
    """S3 GETs always fail: a retryable failure, so the message comes back; on its last receive
    (the queue's maxReceiveCount, MAX_RECEIVES) thumbs dead-letters it itself, with the reason,
    instead of leaving SQS to move it without one."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=2)
    proxy, stats = faultproxy("--fail-rate", "1", "--methods", "GET,HEAD")
    start_worker(res, s3_endpoint=proxy)
    key = "uploads/outage/landscape ü.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    report = wait_accounted(s3, sqs, res, timeout=90)
    print("faultproxy:", stats())
    assert report.ok and not report.rendered, report.problems()
    [letter] = report.dead[key]
    assert letter.attributes.get("ErrorKind") == "storage_unavailable", letter.attributes
    assert "gave up after 3 receives" in letter.attributes["ErrorMessage"]
    assert stats()["injected"] >= 3  # at least one failed GET per receive


def test_a_render_longer_than_the_visibility_timeout_is_done_once(aws, make_stack, start_worker, faultproxy):
    """Every S3 call takes 1.5 s, so one upload takes several times the 2 s visibility timeout:
    the worker's heartbeat keeps the message invisible, so it is not delivered (and rendered)
    again meanwhile."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=2)
    proxy, _ = faultproxy("--latency-ms", "1500")
    key = "uploads/slow/landscape.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    worker = start_worker(res, s3_endpoint=proxy, RUST_LOG="info,thumbs=debug")
    report = wait_accounted(s3, sqs, res, timeout=90)
    assert report.ok and report.rendered == {key}, report.problems()
    wait_until(lambda: _settled(sqs, res), 30, what="the work queue to drain")
    log = worker.log()
    # Handled once: one render, and no second delivery (which would retry on the manifest
    # conflict or find the upload unchanged).
    assert log.count('outcome="rendered"') == 1, log
    assert 'outcome="retry"' not in log and "unchanged" not in log, log
    assert "visibility extended" in log, log


def test_sigterm_during_a_long_poll_strands_no_message(aws, make_stack, start_worker):
    """SIGTERM while the worker waits in a long poll, then an upload: the poll is let finish, so
    the message it receives is handled, not left invisible for the visibility timeout."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=300)
    worker = start_worker(res)
    wait_until(lambda: "worker started" in worker.log(), 30, what="the worker to start")
    # take out the TestEvent so the worker is idle in its long poll
    wait_until(lambda: _settled(sqs, res), 30, what="the setup message to be handled")
    time.sleep(1)
    worker.signal(signal.SIGTERM)
    time.sleep(0.5)
    key = "uploads/term/late.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    rc = worker.wait(40)
    assert rc == 0
    waiting, in_flight = queue_counts(sqs, res["queue_url"])
    rendered = account(s3, sqs, res, read_manifests=False).rendered
    print(f"after exit: waiting={waiting} in_flight={in_flight} rendered={sorted(rendered)}")
    assert in_flight == 0, "a message was left invisible in the abandoned poll"
    assert key in rendered or waiting == 1


def test_a_permanent_failure_beside_a_retryable_one_is_dead_lettered_once(
    aws, make_stack, start_worker, faultproxy
):
    """One message, two records: one outside INPUT_PREFIX (permanent, no S3 call) and one whose
    first receive meets S3 503s (retryable). The message must come back without sending the
    permanent one's dead letter, and send it once, on the receive where the other succeeds."""
    s3, sqs = aws
    # Longer than the SDK's three GET attempts with backoff (at most about 3 s): with a shorter
    # one SQS hands the message out again while the first receive is still retrying, and the
    # second receive takes one of the injected 503s.
    res = make_stack(visibility_timeout=10)
    # The worker's prefix is one the bucket notification does not watch, so the only message
    # in the queue is the one this test sends.
    held = "held/"
    s3.put_object(Bucket=res["input_bucket"], Key=held + "ok.jpg", Body=(FIXTURES / "landscape.jpg").read_bytes())
    event = json.loads((FIXTURES / "events" / "s3-multi-record.json").read_text())
    first, second = event["Records"][:2]
    for record, key in ((first, held + "ok.jpg"), (second, "elsewhere/x.jpg")):
        record["s3"]["bucket"] = {"name": res["input_bucket"], "arn": f"arn:aws:s3:::{res['input_bucket']}"}
        record["s3"]["object"]["key"] = urllib.parse.quote_plus(key, safe="/")
        record["s3"]["object"]["size"] = (FIXTURES / "landscape.jpg").stat().st_size
    event["Records"] = [first, second]
    # Take out what setting up the stack queued (the s3:TestEvent; moto may not filter by prefix).
    while msgs := sqs.receive_message(QueueUrl=res["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for m in msgs:
            assert "held/" not in m["Body"] or "TestEvent" in m["Body"], m["Body"]
            sqs.delete_message(QueueUrl=res["queue_url"], ReceiptHandle=m["ReceiptHandle"])
    sqs.send_message(QueueUrl=res["queue_url"], MessageBody=json.dumps(event))
    # The SDK tries a GET three times: all three attempts of the first receive fail.
    proxy, stats = faultproxy("--fail-first", "3", "--methods", "GET")
    worker = start_worker(res, s3_endpoint=proxy, INPUT_PREFIX=held)
    manifest = "thumbnails/ok.jpg/manifest.json"
    wait_until(
        lambda: _settled(sqs, res) and "Contents" in s3.list_objects_v2(Bucket=res["output_bucket"], Prefix=manifest),
        60,
        what="the message to be settled and ok.jpg rendered",
    )
    assert stats()["injected"] == 3, stats()
    letters = [d for d in accounting.dead_letters(sqs, res["dlq_url"]) if d.attributes.get("Key") == "elsewhere/x.jpg"]
    assert len(letters) == 1, [d.attributes for d in letters]
    assert letters[0].attributes["ErrorKind"] == "outside_prefix"
    assert "permanent failures wait" in worker.log(), "the message never came back with a held dead letter"


# --- issue 17 (helper 17d): the worker counts attempts, not receives ---


def test_receives_of_killed_workers_are_no_attempts(aws, make_stack, start_worker, faultproxy):
    """Two workers were killed while holding the message (the test receives it twice and lets
    it come back), then S3 GETs fail for good: the worker sends it again as a copy marked
    ThumbsSolo (untried, unblamed) and it is tried MAX_RECEIVES (3) times before it is
    dead-lettered with its reason, instead of on its first try (receive 3 counted as the
    third attempt)."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=2)
    key = "uploads/killed/landscape.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    held = []

    def receive_and_die():
        msgs = sqs.receive_message(QueueUrl=res["queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=1,
                                   WaitTimeSeconds=1).get("Messages", [])
        ours = [m["MessageId"] for m in msgs if (res["input_bucket"], key) in accounting.keys_in_body(m["Body"])]
        held.extend(ours)
        return bool(ours)

    for _ in range(2):  # two "workers" receive it and are killed (it is never deleted)
        wait_until(receive_and_die, 30, interval=0, what="the upload's message")
        time.sleep(1.5)
    [original] = set(held)
    proxy, _ = faultproxy("--fail-rate", "1", "--methods", "GET,HEAD")
    worker = start_worker(res, s3_endpoint=proxy)
    report = wait_accounted(s3, sqs, res, timeout=90)
    assert report.ok and not report.rendered, report.problems()
    [letter] = report.dead[key]
    assert letter.attributes.get("ErrorKind") == "storage_unavailable", letter.attributes
    assert "gave up after 3 receives" in letter.attributes["ErrorMessage"]
    tries = worker.log().count('kind="storage_unavailable"')
    assert tries == 3, f"{tries} attempt(s) before the dead letter, not 3:\n{worker.log()}"
    assert letter.attributes["SourceMessageId"] != original, "the original was dead-lettered, not a copy"
