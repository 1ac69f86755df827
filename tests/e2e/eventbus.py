"""Events on the bus, as an app would subscribe to them: a uuid-named EventBridge bus with a
rule (source = this test's EVENT_SOURCE) whose target is an SQS queue, on moto.

moto 5.2.5's events backend (moto/events/models.py, `EventsBackend.put_events` and
`Rule.send_to_targets`) matches the rule's pattern and sends the event envelope as JSON to an
SQS target; it does not enforce the 256 KB entry limit (thumbs' own unit tests cover that).
"""
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import jsonschema
import pytest

from conftest import ROOT

SCHEMAS = ROOT / "docs" / "events" / "v1"
FILES = {
    "Thumbnails Ready": "thumbnails-ready.schema.json",
    "Upload Refused": "upload-refused.schema.json",
    "Thumbnails Deleted": "thumbnails-deleted.schema.json",
}


def validate(event):
    """Check one received event's `detail` against its published JSON Schema (draft 2020-12)."""
    schema = json.loads((SCHEMAS / FILES[event["detail-type"]]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(event["detail"])


class Sink:
    def __init__(self, endpoint):
        kw = dict(endpoint_url=endpoint, region_name="us-east-1")
        self.events, self.sqs = boto3.client("events", **kw), boto3.client("sqs", **kw)
        tag = uuid.uuid4().hex[:12]
        self.bus, self.source, self.rule = f"thumbs-e2e-{tag}", f"thumbs.e2e-{tag}", f"all-{tag}"
        self.events.create_event_bus(Name=self.bus)
        self.queue_url = self.sqs.create_queue(QueueName=f"events-{tag}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.events.put_rule(Name=self.rule, EventBusName=self.bus,
                             EventPattern=json.dumps({"source": [self.source]}))
        self.events.put_targets(Rule=self.rule, EventBusName=self.bus, Targets=[{"Id": "queue", "Arn": arn}])
        self.received = []
        self.lock = threading.Lock()

    def env(self):
        """What the worker needs to publish here."""
        return {"EVENT_BUS": self.bus, "EVENT_SOURCE": self.source}

    def receive_once(self):
        """One receive of up to ten events, kept; they stay in flight (hidden for 15 min), which
        spares the deletes: the queue goes with the test."""
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=900).get("Messages", [])
        with self.lock:
            self.received.extend(json.loads(m["Body"]) for m in got)
        return len(got)

    def drain(self, quiet=2.0, timeout=60):
        """Receive until the queue stays empty for `quiet` seconds; returns every event so far."""
        deadline, last = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < quiet:
            if self.receive_once():
                last = time.monotonic()
            else:
                time.sleep(0.2)
        return self.received

    @contextlib.contextmanager
    def collecting(self):
        """Receive in a thread while the body runs (so a large test spends no time on it after)."""
        stop = threading.Event()

        def run():
            while not stop.is_set():
                if not self.receive_once():
                    stop.wait(0.5)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(30)

    def wait_for(self, cond, timeout=60, what="events"):
        """Drain until `cond(events)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond(self.drain(quiet=0.5, timeout=5)):
                return self.received
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {summary(self.received)}")

    def delete(self):
        self.events.remove_targets(Rule=self.rule, EventBusName=self.bus, Ids=["queue"])
        self.events.delete_rule(Name=self.rule, EventBusName=self.bus)
        self.events.delete_event_bus(Name=self.bus)
        self.sqs.delete_queue(QueueUrl=self.queue_url)


def of_type(events, detail_type):
    return [e for e in events if e["detail-type"] == detail_type]


def summary(events):
    return dict(Counter(e["detail-type"] for e in events))


def one_per_key(events, detail_type):
    """{key: outcome_id} of `detail_type`, checking that every key's events share one id."""
    ids = {}
    for e in of_type(events, detail_type):
        d = e["detail"]
        assert ids.setdefault(d["key"], d["outcome_id"]) == d["outcome_id"], f"two ids for {d['key']}"
    return ids


@pytest.fixture
def event_sink(endpoint):
    """event_sink() -> Sink: a bus, a rule and its queue; deleted after the test."""
    made = []

    def make():
        made.append(Sink(endpoint))
        return made[-1]

    yield make
    for sink in made:
        sink.delete()


def write_example(event, name):
    """Keep a received event as docs' example (EVENTS_EXAMPLES=1 runs only), with the test's
    uuid names replaced by readable ones and the `account` field EventBridge adds (moto's SQS
    target leaves it out)."""
    event = dict(event, source="thumbs.my-stack", detail=dict(event["detail"], bucket="my-input-bucket"))
    order = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    event = {k: event.get(k, "123456789012") for k in order}
    Path(SCHEMAS / "examples" / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")
