"""Fixtures for the LocalStack suite: one uuid-named stack deployed with scripts/deploy/deploy.sh, the real binary.

LocalStack applies what moto's CloudFormation drops (bucket notification, queue policy, public access blocks,
alarms) and sends S3's own notifications, so here the template, not a test helper, wires S3 to SQS. Its Lambda
needs Docker, so the stack is deployed with --no-function and `thumbs worker` consumes the queue instead.

The endpoint is AWS_ENDPOINT_URL when LocalStack answers there, else one started with scripts/local-aws/localstack.sh
(and stopped again at the end if this session started it). The binary is THUMBS_BIN (default
target/release/thumbs); a missing binary fails the tests that need it. test_applied.py runs first, while no
worker consumes the queue.
"""
import importlib.util
import json
import os
import subprocess
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
# Deploy parameters the tests check for: applied values, not template defaults.
FUNCTION_TIMEOUT = 10  # visibility timeout 6 x 10 s
MAX_MESSAGE_AGE = 600
ALARM_EMAIL = "ops@example.com"
EVENT_BUS = "default"  # the template's EventBus: the account's default bus, where the subscriber's rule listens
SUBSCRIBER = ROOT / "cloudformation" / "examples" / "refused-to-sqs.yaml"
DETAIL_TYPES = ("Thumbnails Ready", "Upload Refused", "Thumbnails Deleted")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The moto e2e suite's process harness (worker process, accounting helpers), loaded under its own name so
# both suites can share one pytest run without two modules called `conftest`.
e2e = _load("e2e_fixtures", ROOT / "tests" / "e2e" / "conftest.py")


def _is_localstack(url):
    try:
        doc = json.load(urllib.request.urlopen(url.rstrip("/") + "/_localstack/health", timeout=2))
    except (OSError, ValueError):
        return False
    return "services" in doc


@pytest.fixture(scope="session")
def endpoint():
    yield from e2e.emulator_endpoint("localstack.sh", _is_localstack)


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def script_env(endpoint):
    """Environment for scripts/deploy/deploy.sh: the emulator, fake credentials, no user AWS config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(e2e.CREDS, AWS_ENDPOINT_URL=endpoint, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return env


def deploy(stack, tmp, endpoint, *extra):
    """scripts/deploy/deploy.sh without the function (LocalStack's Lambda needs Docker), fake zips for the artifacts."""
    zips = {}
    for name in ("function", "layer"):
        zips[name] = tmp / f"{name}.zip"
        with zipfile.ZipFile(zips[name], "w") as z:
            z.writestr("README", f"not deployed: {name}")
    args = [str(ROOT / "scripts" / "deploy" / "deploy.sh"), "--stack-name", stack, "--no-function",
            "--function-zip", str(zips["function"]), "--layer-zip", str(zips["layer"]),
            "--artifacts-bucket", f"{stack}-artifacts", *extra]
    # A stack update that never finishes (LocalStack loops on some templates) shows up as this timeout.
    return subprocess.run(args, env=script_env(endpoint), capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="session")
def stack(endpoint, tmp_path_factory):
    """The template deployed once per session; the messages already queued by then (S3's TestEvent)."""
    name = f"tls-{uuid.uuid4().hex[:12]}"
    started = time.monotonic()
    result = deploy(name, tmp_path_factory.mktemp("deploy"), endpoint, "--timeout", str(FUNCTION_TIMEOUT),
                    "--max-message-age", str(MAX_MESSAGE_AGE), "--alarm-email", ALARM_EMAIL,
                    "--event-bus", EVENT_BUS)
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"deployed {name} in {time.monotonic() - started:.1f}s")
    cfn, sqs = client("cloudformation", endpoint), client("sqs", endpoint)
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    url = lambda queue: sqs.get_queue_url(QueueName=physical[queue].rsplit("/", 1)[-1])["QueueUrl"]  # noqa: E731
    res = {
        "stack": name,
        "resources": physical,
        "input_bucket": physical["InputBucket"],
        "output_bucket": physical["OutputBucket"],
        "queue_url": url("Queue"),
        "dlq_url": url("DeadLetterQueue"),
        "input_prefix": "uploads/",
        "output_prefix": "thumbnails/",
        **outcome_events(name),
    }
    res["queued_at_deploy"] = drain(sqs, res["queue_url"], quiet_for=2)
    yield res
    destroyed = subprocess.run([str(ROOT / "scripts" / "deploy" / "destroy.sh"), "--stack-name", name, "--yes"],
                               env=script_env(endpoint), capture_output=True, text=True, timeout=240)
    assert destroyed.returncode == 0, destroyed.stderr
    s3 = client("s3", endpoint)  # destroy.sh keeps the artifacts bucket (shared on AWS); this one is the test's
    artifacts = f"{name}-artifacts"
    for o in s3.list_objects_v2(Bucket=artifacts).get("Contents", []):
        s3.delete_object(Bucket=artifacts, Key=o["Key"])
    s3.delete_bucket(Bucket=artifacts)


def outcome_events(stack_name):
    """EVENT_BUS and EVENT_SOURCE as the template gives them to the function (LocalStack deploys no function)."""
    from cfnlint.decode import decode

    template, errors = decode(str(ROOT / "cloudformation" / "template.yaml"))
    assert not errors, errors
    env = template["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    condition, on, off = env["EVENT_BUS"]["Fn::If"]
    assert dict(template["Conditions"][condition]) == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EventBus"}, "none"]}]}
    assert dict(on) == {"Ref": "EventBus"} and off == ""
    return {"event_bus": "" if EVENT_BUS == "none" else EVENT_BUS,
            "event_source": env["EVENT_SOURCE"]["Fn::Sub"].replace("${AWS::StackName}", stack_name)}


@pytest.fixture(scope="session")
def subscriber(stack, endpoint):
    """cloudformation/examples/refused-to-sqs.yaml (the README's example rule) deployed beside the stack, taking
    all three detail types: the queue where the stack's outcome events arrive through an EventBridge rule."""
    cfn = client("cloudformation", endpoint)
    name = f"{stack['stack']}-events"
    cfn.create_stack(StackName=name, TemplateBody=SUBSCRIBER.read_text(), Parameters=[
        {"ParameterKey": "ThumbsStackName", "ParameterValue": stack["stack"]},
        {"ParameterKey": "EventBusName", "ParameterValue": EVENT_BUS},
        {"ParameterKey": "DetailTypes", "ParameterValue": ",".join(DETAIL_TYPES)}])
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    [desc] = cfn.describe_stacks(StackName=name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc["Outputs"]}
    yield {"stack": name, "queue_url": outputs["QueueUrl"], "rule_arn": outputs["RuleArn"]}
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


drain = e2e.accounting.drain


@pytest.fixture
def run_prefix(stack):
    """A fresh folder under the stack's prefixes, so each test accounts only for its own uploads."""
    run = f"{uuid.uuid4().hex[:8]}/"
    return dict(stack, input_prefix=stack["input_prefix"] + run, output_prefix=stack["output_prefix"] + run)


thumbs_bin = e2e.thumbs_bin  # the same fixture: THUMBS_BIN or target/release/thumbs, failing when missing


@pytest.fixture(scope="session")
def session_worker(thumbs_bin, endpoint, stack, tmp_path_factory):
    """One `thumbs worker` on the deployed queue for every pipeline test. Not one per test: a killed worker's
    pending long poll still takes the next message from SQS and hides it for the visibility timeout (issue 11
    item 13), which would steal the next test's first upload."""
    env = e2e.worker_env(endpoint, stack, INPUT_BUCKETS=stack["input_bucket"], EVENT_BUS=stack["event_bus"],
                         EVENT_SOURCE=stack["event_source"])
    proc = e2e.Proc([str(thumbs_bin), "worker", "--queue-url", stack["queue_url"], "--concurrency", "4"], env,
                    tmp_path_factory.mktemp("worker") / "worker.log")
    yield proc
    proc.stop()


@pytest.fixture
def worker(session_worker):
    """The session's worker; after the test, its log lines from this test, and it must still be running."""
    seen = len(session_worker.log().splitlines())
    yield session_worker
    print("--- worker log during this test\n" + "\n".join(session_worker.log().splitlines()[seen:]))
    assert session_worker.running(), "the worker exited"


def account(s3, sqs, res):
    """accounting.account for one test's folder (res from run_prefix)."""
    return e2e.accounting.account(s3, sqs, res["input_bucket"], res["input_prefix"], res["output_bucket"],
                                  res["output_prefix"], res["dlq_url"])


def wait_accounted(s3, sqs, res, timeout):
    report = e2e.accounting.wait_for(lambda: account(s3, sqs, res), timeout, log=print)
    assert not report.missing, f"timed out after {timeout}s: {report.summary()}; missing {sorted(report.missing)}"
    return report
