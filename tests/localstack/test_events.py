"""Outcome events (issue 21) of S3's own uploads, through an EventBridge rule: the README's example subscriber
(cloudformation/examples/refused-to-sqs.yaml) deployed beside the stack on the default bus, `thumbs worker`
publishing with the EVENT_BUS and EVENT_SOURCE the template gives the function. Each event is checked field by
field against the contract (README, "Events") and against what the pipeline stored: the manifest, the
renditions in the output bucket, the dead letter. LocalStack's stack has SyncDeletes off, so `Thumbnails Deleted`
is left to the moto e2e suite."""
import json
import time

from conftest import FIXTURES, account, client, wait_accounted

COMMON = {"schema_version", "outcome_id", "bucket", "key", "version_id", "etag", "sequencer"}
READY = COMMON | {"settings", "rule", "manifest_key", "placeholder", "renditions", "failures", "truncated",
                  "renditions_omitted"}
REFUSED = COMMON | {"kind", "reason", "final"}
RENDITION = {"preset", "format", "content_type", "width", "height", "bytes", "key"}


def received_events(sqs, url, folder, want, timeout, linger=3):
    """The EventBridge events in the subscriber's queue whose detail.key is under `folder`: those that arrived by
    `linger` seconds after every key of `want` had one (so a duplicate would be seen too). Other tests' events in
    the same queue are taken off and left out."""
    found, deadline, done_at = [], time.monotonic() + timeout, None
    while done_at is None or time.monotonic() < done_at + linger:
        assert time.monotonic() < deadline, \
            f"no event within {timeout}s for {sorted(want - {e['detail']['key'] for e in found})}; got {found}"
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            event = json.loads(m["Body"])
            if event["detail"].get("key", "").startswith(folder):
                found.append(event)
        if done_at is None and want <= {e["detail"]["key"] for e in found}:
            done_at = time.monotonic()
    return found


def unquoted(etag):
    return etag.strip('"')


def test_stack_outputs_name_the_event_source_and_bus(stack, endpoint):
    [desc] = client("cloudformation", endpoint).describe_stacks(StackName=stack["stack"])["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc["Outputs"]}
    assert outputs["EventSource"] == stack["event_source"] == f"thumbs.{stack['stack']}"
    assert outputs["EventBusArn"] == "arn:aws:events:us-east-1:000000000000:event-bus/default"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in desc["Parameters"]}
    assert params["EventBus"] == stack["event_bus"] == "default"


def test_subscriber_rule_applied_as_the_example_says(stack, subscriber, endpoint):
    events, sqs = client("events", endpoint), client("sqs", endpoint)
    name = subscriber["rule_arn"].rsplit("/", 1)[-1]
    rule = events.describe_rule(Name=name, EventBusName="default")
    assert json.loads(rule["EventPattern"]) == {
        "source": [stack["event_source"]],
        "detail-type": ["Thumbnails Ready", "Upload Refused", "Thumbnails Deleted"]}
    [target] = events.list_targets_by_rule(Rule=name, EventBusName="default")["Targets"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=subscriber["queue_url"], AttributeNames=["QueueArn"])
    assert target["Arn"] == queue_arn["Attributes"]["QueueArn"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=subscriber["queue_url"],
                                                 AttributeNames=["Policy"])["Attributes"]["Policy"])
    [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": subscriber["rule_arn"]}}


def test_ready_and_refused_events_arrive_through_the_rule(stack, subscriber, run_prefix, worker, endpoint):
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    good, bad = run_prefix["input_prefix"] + "holiday photo.jpg", run_prefix["input_prefix"] + "broken scan.jpg"
    s3.put_object(Bucket=stack["input_bucket"], Key=good, Body=(FIXTURES / "landscape.jpg").read_bytes())
    s3.put_object(Bucket=stack["input_bucket"], Key=bad, Body=(FIXTURES / "truncated.jpg").read_bytes())
    report = wait_accounted(s3, sqs, run_prefix, timeout=120)
    assert report.ok, report.problems()
    found = received_events(sqs, subscriber["queue_url"], run_prefix["input_prefix"], {good, bad}, timeout=60)
    # Exactly one event per outcome (nothing failed here, so nothing was published twice).
    assert sorted((e["detail-type"], e["detail"]["key"]) for e in found) == [
        ("Thumbnails Ready", good), ("Upload Refused", bad)], found
    by_key = {e["detail"]["key"]: e for e in found}

    for event in found:  # the envelope EventBridge wraps around what the worker put
        assert event["source"] == stack["event_source"]
        assert event["account"] == "000000000000" and event["region"] == "us-east-1"

    ready = by_key[good]["detail"]
    assert set(ready) <= READY and COMMON - {"version_id"} <= set(ready), set(ready) ^ READY
    assert ready["schema_version"] == "1"
    assert isinstance(ready["outcome_id"], str) and len(ready["outcome_id"]) >= 16
    assert ready["bucket"] == stack["input_bucket"]
    assert "version_id" not in ready or ready["version_id"] is None  # the input bucket is not versioned
    assert unquoted(ready["etag"]) == unquoted(s3.head_object(Bucket=stack["input_bucket"], Key=good)["ETag"])
    assert ready["manifest_key"] == run_prefix["output_prefix"] + "holiday photo.jpg/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=stack["output_bucket"], Key=ready["manifest_key"])["Body"].read())
    # Enough that the app needs no GET of the manifest: the event says what it says.
    assert ready["settings"] == manifest["settings"] and ready["rule"] == manifest["rule"] == "default"
    assert ready["placeholder"] == manifest["placeholder"] and ready["placeholder"]
    assert ready["sequencer"] == manifest["source"]["sequencer"] and ready["sequencer"]
    assert unquoted(ready["etag"]) == unquoted(manifest["source"]["etag"])
    assert ready["renditions"] == manifest["renditions"] and len(ready["renditions"]) == 3
    assert "truncated" not in ready and "renditions_omitted" not in ready and not ready.get("failures")
    for rendition in ready["renditions"]:
        assert set(rendition) == RENDITION
        head = s3.head_object(Bucket=stack["output_bucket"], Key=rendition["key"])
        assert head["ContentLength"] == rendition["bytes"] and head["ContentType"] == rendition["content_type"]
        assert rendition["width"] > 0 and rendition["height"] > 0
    assert {r["preset"] for r in ready["renditions"]} == {"thumb", "small", "large"}

    refused = by_key[bad]["detail"]
    assert set(refused) <= REFUSED and (COMMON - {"version_id"}) | {"kind", "reason", "final"} <= set(refused)
    [letter] = report.dead[bad]
    assert refused["schema_version"] == "1" and refused["bucket"] == stack["input_bucket"]
    assert refused["kind"] == letter.kind == "corrupt"
    # The uploader's words, the same text as the dead letter; a damaged file is refused for good.
    assert refused["reason"] == letter.attributes["ErrorMessage"]
    assert refused["final"] is True
    assert unquoted(refused["etag"]) == unquoted(s3.head_object(Bucket=stack["input_bucket"], Key=bad)["ETag"])
    assert refused["outcome_id"] != ready["outcome_id"]


def test_unchanged_reupload_still_publishes_ready(stack, subscriber, run_prefix, worker, endpoint):
    """The same bytes uploaded again find the work done (`unchanged`) and still publish: every delivery of an
    outcome has its event. (Whether its outcome_id is new depends on S3's sequencer, which LocalStack gives the
    same for every event, so it is not checked here.)"""
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    key = run_prefix["input_prefix"] + "again.jpg"
    body = (FIXTURES / "grey.jpg").read_bytes()
    s3.put_object(Bucket=stack["input_bucket"], Key=key, Body=body)
    [first] = received_events(sqs, subscriber["queue_url"], run_prefix["input_prefix"], {key}, timeout=90)
    s3.put_object(Bucket=stack["input_bucket"], Key=key, Body=body)
    [second] = received_events(sqs, subscriber["queue_url"], run_prefix["input_prefix"], {key}, timeout=90)
    assert first["detail-type"] == second["detail-type"] == "Thumbnails Ready"
    assert first["detail"]["renditions"] == second["detail"]["renditions"]
    assert first["detail"]["etag"] == second["detail"]["etag"]
    report = account(s3, sqs, run_prefix)
    assert report.ok, report.problems()
