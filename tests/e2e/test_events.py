"""Events when an upload is settled (issue 21), seen as an app sees them: a rule on the bus
sends them to an SQS queue. Every detail received is checked against docs/events/v1/'s JSON
Schemas. EVENTS_EXAMPLES=1 rewrites docs/events/v1/examples/ from what these runs receive."""
import json
import os

from conftest import FIXTURES, account, local_stack, upload, wait_accounted
from eventbus import event_sink, of_type, one_per_key, summary, validate, write_example  # noqa: F401
from test_lambda import _invoke, _notifications, _sqs_record, _start_lambda, runtime_api  # noqa: F401

READY, REFUSED, DELETED = "Thumbnails Ready", "Upload Refused", "Thumbnails Deleted"
GOOD = {"uploads/ev/a.jpg": "landscape.jpg", "uploads/ev/b c.png": "alpha.png"}
BAD = {"uploads/ev/bad.jpg": "truncated.jpg", "uploads/ev/empty.jpg": None}


def put_all(s3, res, files):
    for key, fixture in files.items():
        upload(s3, res, key, (FIXTURES / fixture).read_bytes() if fixture else b"")


def check_all(events, sink):
    for e in events:
        assert e["source"] == sink.source, e
        validate(e)


def letters_by_key(report):
    return {key: letters for key, letters in report.dead.items()}


def test_each_outcome_is_announced_once_and_again_with_the_same_id(aws, make_stack, start_worker, event_sink):
    s3, sqs = aws
    res = make_stack(visibility_timeout=10)
    sink = event_sink()
    start_worker(res, **sink.env())
    put_all(s3, res, {**GOOD, **BAD})
    report = wait_accounted(s3, sqs, res, timeout=120)
    assert set(report.rendered) == set(GOOD) and set(report.dead) == set(BAD), report.summary()
    sink.wait_for(lambda ev: len(ev) >= 4, what="4 events")
    events = sink.drain()
    check_all(events, sink)
    assert summary(events) == {READY: 2, REFUSED: 2}, summary(events)
    ready, refused = one_per_key(events, READY), one_per_key(events, REFUSED)
    assert set(ready) == set(GOOD) and set(refused) == set(BAD)
    for e in of_type(events, READY):
        d = e["detail"]
        manifest = report.manifests[d["key"]]
        assert d["renditions"] == manifest["renditions"], "enough that the app needs no GET of the manifest"
        assert (d["etag"], d["settings"], d["placeholder"]) == (
            manifest["source"]["etag"], manifest["settings"], manifest["placeholder"])
        assert d["manifest_key"] == "thumbnails/" + d["key"][len("uploads/"):] + "/manifest.json"
    for e in of_type(events, REFUSED):
        d = e["detail"]
        [letter] = report.dead[d["key"]]
        assert (d["kind"], d["final"]) == (letter.kind, True)
        assert d["reason"][:1000] == letter.attributes["ErrorMessage"], "the dead letter's words"
    if os.environ.get("EVENTS_EXAMPLES"):
        write_example(of_type(events, READY)[0], "thumbnails-ready.json")
        write_example(of_type(events, REFUSED)[0], "upload-refused.json")

    # Redelivery: the good upload's S3 event again (unchanged), the bad one's dead letter
    # redriven (refused again): the same ids.
    good = of_type(events, READY)[0]["detail"]
    announced = {"key": good["key"].replace(" ", "+"), "eTag": good["etag"].strip('"')}
    if "sequencer" in good:
        announced["sequencer"] = good["sequencer"]
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": res["input_bucket"]}, "object": announced}}
    sqs.send_message(QueueUrl=res["queue_url"], MessageBody=json.dumps({"Records": [record]}))
    bad_key = sorted(BAD)[0]
    sqs.send_message(QueueUrl=res["queue_url"], MessageBody=report.dead[bad_key][0].body)
    sink.wait_for(lambda ev: len(ev) >= 6, what="the redeliveries' events")
    events = sink.drain()
    check_all(events, sink)
    assert summary(events) == {READY: 3, REFUSED: 3}, summary(events)
    assert one_per_key(events, READY) == ready and one_per_key(events, REFUSED) == refused


def test_a_publishing_outage_ends_with_every_outcome_published(aws, make_stack, start_worker, event_sink, faultproxy):
    """Every PutEvents fails for the first 6 s (500 InternalException through faultproxy, S3 and
    SQS untouched): the records are retried (a copy after the 5 s visibility timeout), find their
    manifests current and publish; the refusal's message is handed back and its letter sent again."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=5)
    sink = event_sink()
    proxy, stats = faultproxy("--targets", "AWSEvents.PutEvents", "--fail-window", "0", "6")
    worker = start_worker(res, AWS_ENDPOINT_URL_EVENTBRIDGE=proxy, **sink.env())
    good = {f"uploads/outage/{i}.jpg": "landscape.jpg" for i in range(4)}
    bad = {"uploads/outage/bad.jpg": "truncated.jpg"}
    put_all(s3, res, {**good, **bad})
    wait_accounted(s3, sqs, res, timeout=120)
    sink.wait_for(lambda ev: len(of_type(ev, READY)) >= 4 and len(of_type(ev, REFUSED)) >= 1, timeout=90,
                  what="every outcome's event after the outage")
    events = sink.drain(quiet=3)
    check_all(events, sink)
    assert stats()["injected"] > 0, stats()
    assert 'kind="event_not_published"' in worker.log(), "the outage was seen and retried"
    assert set(one_per_key(events, READY)) == set(good)
    assert set(one_per_key(events, REFUSED)) == set(bad)
    report = account(s3, sqs, res)
    assert set(report.dead) == set(bad), "no upload dead-lettered for the outage"
    assert all(letter.kind == "corrupt" for letter in report.dead["uploads/outage/bad.jpg"])


def test_a_synced_deletion_announces_the_renditions_removed(aws, make_stack, start_worker, event_sink):
    s3, sqs = aws
    res = make_stack(visibility_timeout=10)
    local_stack.notify(res, removals=True)
    sink = event_sink()
    start_worker(res, SYNC_DELETES="true", **sink.env())
    key = "uploads/ev/gone.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    [ready] = of_type(sink.wait_for(lambda ev: of_type(ev, READY), what="Ready"), READY)
    s3.delete_object(Bucket=res["input_bucket"], Key=key)
    events = sink.wait_for(lambda ev: of_type(ev, DELETED), what="Deleted")
    events = sink.drain()
    check_all(events, sink)
    [deleted] = of_type(events, DELETED)
    assert deleted["detail"]["key"] == key
    assert sorted(deleted["detail"]["renditions"]) == sorted(r["key"] for r in ready["detail"]["renditions"])
    left = s3.list_objects_v2(Bucket=res["output_bucket"], Prefix="thumbnails/ev/gone.jpg/").get("Contents", [])
    assert [o["Key"] for o in left] == ["thumbnails/ev/gone.jpg/manifest.json"]
    if os.environ.get("EVENTS_EXAMPLES"):
        write_example(deleted, "thumbnails-deleted.json")


def test_the_lambda_function_announces_through_the_same_core(aws, endpoint, make_stack, thumbs_bin, runtime_api,
                                                              tmp_path, event_sink):
    """`thumbs lambda` behind the Runtime API emulator: the invocation's good upload is announced as
    Ready and its corrupt one as Refused (after its letter), before the function answers."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=60)
    sink = event_sink()
    put_all(s3, res, {"uploads/fn/good.jpg": "landscape.jpg", "uploads/fn/bad.jpg": "truncated.jpg"})
    records = [_sqs_record(res, m["MessageId"], m["Body"]) for m in _notifications(sqs, res, 2)]
    fn = _start_lambda(thumbs_bin, endpoint, res, runtime_api, tmp_path, "lambda-events", **sink.env())
    try:
        result = _invoke(runtime_api, {"Records": records})
    finally:
        fn.stop()
        print(fn.log()[-3000:])
    assert result == {"batchItemFailures": []}
    events = sink.drain()
    check_all(events, sink)
    assert set(one_per_key(events, READY)) == {"uploads/fn/good.jpg"}
    assert set(one_per_key(events, REFUSED)) == {"uploads/fn/bad.jpg"}
    assert summary(events) == {READY: 1, REFUSED: 1}
