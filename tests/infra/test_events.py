"""The template's outcome events (issue 21): the EventBus parameter, the function's EVENT_BUS and
EVENT_SOURCE, PutEvents on that one bus only, and the example subscriber in cloudformation/examples/
(cfn-lint, README shows it verbatim, and on moto a rule built from it delivers only its events)."""

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import decode
from test_deploy import run, zips  # noqa: F401  (zips: a fixture)
from test_template import as_list, plain, role_statements

from conftest import ROOT

EXAMPLE = ROOT / "cloudformation" / "examples" / "refused-to-sqs.yaml"
BUS_ARN = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBus}"}
DETAIL_TYPES = {"Thumbnails Ready", "Upload Refused", "Thumbnails Deleted"}


def test_event_bus_parameter_defaults_to_the_default_bus_and_none_turns_it_off(template):
    spec = template["Parameters"]["EventBus"]
    assert spec["Default"] == "default"
    pattern = re.compile(spec["AllowedPattern"])
    for name in ("default", "none", "orders-bus", "my.bus_1"):
        assert pattern.fullmatch(name), name
    # An ARN would make the role's resource wrong (it is built from the name); another account's
    # bus is reached by a rule on this account's bus.
    for bad in ("", "arn:aws:events:us-east-1:111122223333:event-bus/x", "a b", "bus/x"):
        assert not pattern.fullmatch(bad), bad
    assert plain(template["Conditions"]["PublishEvents"]) == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EventBus"}, "none"]}]}


def test_function_environment_names_the_bus_and_this_stack_as_source(resources):
    env = plain(resources["Function"]["Properties"]["Environment"]["Variables"])
    # Publishing is off when EVENT_BUS is empty: that is what EventBus=none gives the binary.
    assert env["EVENT_BUS"] == {"Fn::If": ["PublishEvents", {"Ref": "EventBus"}, ""]}
    assert env["EVENT_SOURCE"] == {"Fn::Sub": "thumbs.${AWS::StackName}"}


def test_role_may_put_events_on_exactly_that_bus(resources):
    statements = role_statements(resources, {"PublishEvents": True})
    events = [s for s in statements if any(a.startswith("events:") for a in as_list(s["Action"]))]
    [statement] = events
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["events:PutEvents"]
    assert plain(statement["Resource"]) == BUS_ARN
    assert "Condition" not in statement


def test_role_has_no_events_permission_when_events_are_off(resources):
    statements = role_statements(resources, {"PublishEvents": False})
    assert statements, "the rest of the role stays"
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("events:")}, actions
    # Everything else is unconditional: only the events statement depends on PublishEvents.
    on = role_statements(resources, {"PublishEvents": True})
    assert [s["Sid"] for s in on if s not in statements] == ["PublishOutcomes"]


def test_outputs_give_the_source_and_bus_only_when_publishing(template):
    outputs = plain(template["Outputs"])
    assert outputs["EventSource"]["Condition"] == outputs["EventBusArn"]["Condition"] == "PublishEvents"
    assert outputs["EventSource"]["Value"] == {"Fn::Sub": "thumbs.${AWS::StackName}"}
    assert outputs["EventBusArn"]["Value"] == BUS_ARN


# --- the example subscriber (cloudformation/examples/refused-to-sqs.yaml) ---------------------


@pytest.fixture(scope="module")
def example():
    parsed, errors = decode(str(EXAMPLE))
    assert not errors, errors
    return parsed


def test_example_passes_cfn_lint():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--", str(EXAMPLE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_shows_the_example_verbatim():
    readme = (ROOT / "cloudformation" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert EXAMPLE.read_text() in blocks


def test_example_rule_matches_this_stacks_source_and_only_sends_to_its_queue(example, resources):
    rule = plain(example["Resources"]["RefusedRule"]["Properties"])
    # The same source the template gives the function, with the thumbs stack's name.
    assert rule["EventPattern"]["source"] == [{"Fn::Sub": "thumbs.${ThumbsStackName}"}]
    assert plain(resources["Function"]["Properties"]["Environment"]["Variables"]["EVENT_SOURCE"]) == \
        {"Fn::Sub": "thumbs.${AWS::StackName}"}
    assert rule["EventPattern"]["detail-type"] == {"Fn::Split": [",", {"Ref": "DetailTypes"}]}
    types = example["Parameters"]["DetailTypes"]
    assert types["Default"] == "Upload Refused"
    allowed = re.compile(types["AllowedPattern"])
    assert allowed.fullmatch(",".join(sorted(DETAIL_TYPES)))
    assert not allowed.fullmatch("Upload Refused,") and not allowed.fullmatch("Upload refused")
    assert rule["EventBusName"] == {"Ref": "EventBusName"}
    assert rule["Targets"] == [{"Id": "refused-queue", "Arn": {"Fn::GetAtt": ["RefusedQueue", "Arn"]}}]
    policy = plain(example["Resources"]["RefusedQueuePolicy"]["Properties"]["PolicyDocument"])
    [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RefusedRule", "Arn"]}}}


def _entry(source, detail_type, key):
    detail = {"schema_version": "1", "outcome_id": uuid.uuid4().hex, "bucket": "in", "key": key}
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": "default"}


def test_example_deployed_on_moto_delivers_only_the_stacks_refusals(aws_env):
    """moto's EventBridge runs the rule the example creates: only the named stack's listed detail types
    reach the queue (moto drops the queue policy, so that part is checked statically above)."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    cfn, sqs, events = (session.client(s, endpoint_url=aws_env["AWS_ENDPOINT_URL"]) for s in ("cloudformation", "sqs", "events"))
    stack = f"sub-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=stack, TemplateBody=EXAMPLE.read_text(),
                     Parameters=[{"ParameterKey": "ThumbsStackName", "ParameterValue": "photos"}])
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    queue = {r["LogicalResourceId"]: r["PhysicalResourceId"]
             for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]}["RefusedQueue"]
    url = queue if queue.startswith("http") else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    answer = events.put_events(Entries=[
        _entry("thumbs.photos", "Upload Refused", "uploads/refused.jpg"),
        _entry("thumbs.photos", "Thumbnails Ready", "uploads/ready.jpg"),     # another type
        _entry("thumbs.other", "Upload Refused", "uploads/other-stack.jpg"),  # another stack
    ])
    assert answer["FailedEntryCount"] == 0, answer
    bodies = []
    for _ in range(3):
        bodies += [json.loads(m["Body"]) for m in
                   sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    assert [(b["source"], b["detail-type"], b["detail"]["key"]) for b in bodies] == \
        [("thumbs.photos", "Upload Refused", "uploads/refused.jpg")]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_deploy_passes_the_event_bus(zips, how):
    """deploy.sh --event-bus NAME (or EVENT_BUS_NAME; not EVENT_BUS, which is the binary's own variable and may be
    an ARN the template refuses) sets the EventBus parameter; without it the template's default stays."""
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "EVENT_BUS": "arn:aws:events:eu-west-1:111122223333:event-bus/ignored"}
    args = ["--dry-run", "--function-zip", str(zips["function"]), "--layer-zip", str(zips["layer"])]
    runs = {"flag": run("deploy.sh", *args, "--event-bus", "none", env=env),
            "env": run("deploy.sh", *args, env=dict(env, EVENT_BUS_NAME="none")),
            "default": run("deploy.sh", *args, env=env)}
    deploys = {}
    for name, result in runs.items():
        assert result.returncode == 0, result.stderr
        [deploys[name]] = [line for line in result.stderr.splitlines() if " cloudformation deploy " in line]
    assert "EventBus=none" in deploys[how]
    assert "EventBus=" not in deploys["default"]
