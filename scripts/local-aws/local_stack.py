#!/usr/bin/env python3
"""Create (and delete) the pipeline's AWS resources on a local emulator (moto).

Names carry a uuid suffix so tests and demo runs never share state. By default the
resources come from cloudformation/template.yaml through moto's CloudFormation with
DeployFunction=false; moto drops the bucket notification there (see the field notes), so
that part is always applied by API. With --api, or when the template is missing, everything
is created by API calls. The result says which parts came from where.

  scripts/local-aws/local_stack.py setup [--visibility-timeout S] [--api] [--no-notification] [--json FILE]
  scripts/local-aws/local_stack.py notify --json FILE [--removals]
  scripts/local-aws/local_stack.py subscribe --json FILE [--types LIST]
  scripts/local-aws/local_stack.py teardown --json FILE

`setup --no-notification` leaves the bucket without its notification (as a bucket that held
objects before thumbs was deployed); `notify` applies it later. `subscribe` deploys the README's example
subscriber (cloudformation/examples/refused-to-sqs.yaml: an EventBridge rule on the default bus -> an SQS queue)
for the stack's outcome events, and prints the worker's EVENT_BUS and EVENT_SOURCE and EVENTS_QUEUE_URL.
"""
import argparse
import json
import os
import sys
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cloudformation" / "template.yaml"
SUBSCRIBER = ROOT / "cloudformation" / "examples" / "refused-to-sqs.yaml"
DETAIL_TYPES = "Thumbnails Ready,Upload Refused,Thumbnails Deleted"


def clients(endpoint=None):
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    kw = dict(
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )
    return boto3.client("s3", **kw), boto3.client("sqs", **kw), boto3.client("cloudformation", **kw)


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _by_api(s3, sqs, suffix, visibility_timeout, max_receive):
    res = {
        "input_bucket": f"thumbs-in-{suffix}",
        "output_bucket": f"thumbs-out-{suffix}",
    }
    for b in (res["input_bucket"], res["output_bucket"]):
        s3.create_bucket(Bucket=b)
    res["dlq_url"] = sqs.create_queue(
        QueueName=f"thumbs-dlq-{suffix}", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, res["dlq_url"]), "maxReceiveCount": str(max_receive)}
    res["queue_url"] = sqs.create_queue(
        QueueName=f"thumbs-queue-{suffix}",
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    res["created_by"] = {"buckets": "api", "queues": "api", "notification": "api"}
    return res


# moto resolves a Number parameter to an int, so the template's FindInMap keyed by
# FunctionTimeout ("60") raises KeyError inside moto and the stack fails with "GetAtt references
# undefined resource Queue". The visibility timeout is set by API below anyway.
MOTO_UNRESOLVABLE = "!FindInMap [VisibilityTimeout, !Ref FunctionTimeout, Seconds]"


def _template_params(cfn, body, params):
    """Pass every declared parameter whose default is "" explicitly (moto calls those missing)."""
    declared = cfn.get_template_summary(TemplateBody=body)["Parameters"]
    out = {p["ParameterKey"]: "" for p in declared if p.get("DefaultValue", None) in ("", None)}
    out.update({k: str(v) for k, v in params.items() if k in {p["ParameterKey"] for p in declared}})
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in out.items()]


def _by_template(sqs, cfn, suffix, visibility_timeout, max_receive, prefix):
    stack = f"thumbs-{suffix}"
    body = TEMPLATE.read_text().replace(MOTO_UNRESOLVABLE, str(visibility_timeout))
    cfn.create_stack(
        StackName=stack,
        TemplateBody=body,
        Parameters=_template_params(cfn, body, {"DeployFunction": "false", "InputPrefix": prefix}),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    # moto's outputs carry AWS's sqs.<region>.amazonaws.com URLs; ask the emulator for its own.
    url = lambda out: sqs.get_queue_url(QueueName=outputs[out].rsplit("/", 1)[1])["QueueUrl"]  # noqa: E731
    res = {
        "stack": stack,
        "input_bucket": outputs["InputBucketName"],
        "output_bucket": outputs["OutputBucketName"],
        "queue_url": url("QueueUrl"),
        "dlq_url": url("DeadLetterQueueUrl"),
    }
    # The template's visibility timeout is six times the function timeout (for AWS);
    # tests need short ones, so set it and the redrive policy explicitly and say so.
    redrive = {"deadLetterTargetArn": queue_arn(sqs, res["dlq_url"]), "maxReceiveCount": str(max_receive)}
    sqs.set_queue_attributes(
        QueueUrl=res["queue_url"],
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )
    res["created_by"] = {
        "buckets": "cloudformation",
        "queues": "cloudformation (visibility timeout and redrive policy then set by API)",
        "notification": "api (moto's CloudFormation drops NotificationConfiguration)",
        "queue policy": "none (moto's CloudFormation does not support AWS::SQS::QueuePolicy; moto does not enforce it)",
    }
    return res


def create(endpoint=None, visibility_timeout=30, max_receive=3, prefix="uploads/", use_template=True, notification=True):
    s3, sqs, cfn = clients(endpoint)
    suffix = uuid.uuid4().hex[:12]
    if use_template and TEMPLATE.exists():
        res = _by_template(sqs, cfn, suffix, visibility_timeout, max_receive, prefix)
    else:
        res = _by_api(s3, sqs, suffix, visibility_timeout, max_receive)
    res["queue_arn"] = queue_arn(sqs, res["queue_url"])
    res.update(endpoint=s3.meta.endpoint_url, input_prefix=prefix)
    if notification:
        notify(res)
    else:
        res["created_by"]["notification"] = "not yet (setup --no-notification; apply it with `notify`)"
    return res


def notify(res, removals=False):
    """Apply the input bucket's notification to the queue: ObjectCreated, plus ObjectRemoved
    with removals (what the template's SyncDeletes adds)."""
    s3, _, _ = clients(res.get("endpoint"))
    events = ["s3:ObjectCreated:*"] + (["s3:ObjectRemoved:*"] if removals else [])
    s3.put_bucket_notification_configuration(
        Bucket=res["input_bucket"],
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": res["queue_arn"],
                    "Events": events,
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": res["input_prefix"]}]}},
                }
            ]
        },
    )
    return events


def subscribe(res, types=DETAIL_TYPES):
    """The example subscriber stack for this stack's events (source thumbs.<stack name>, as the template sets
    EVENT_SOURCE); moto's EventBridge runs its rule. Adds "events" to `res`."""
    _, sqs, cfn = clients(res.get("endpoint"))
    thumbs_stack = res.get("stack", "thumbs-" + res["input_bucket"].rsplit("-", 1)[-1])
    name = f"{thumbs_stack}-events"
    cfn.create_stack(StackName=name, TemplateBody=SUBSCRIBER.read_text(), Parameters=[
        {"ParameterKey": "ThumbsStackName", "ParameterValue": thumbs_stack},
        {"ParameterKey": "DetailTypes", "ParameterValue": types}])
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    queue = {r["LogicalResourceId"]: r["PhysicalResourceId"]
             for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}["RefusedQueue"]
    res["events"] = {
        "stack": name,
        "queue_url": sqs.get_queue_url(QueueName=queue.rsplit("/", 1)[-1])["QueueUrl"],
        "bus": "default",
        "source": f"thumbs.{thumbs_stack}",
    }
    return res["events"]


def _empty_bucket(s3, bucket):
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objs = [{"Key": o["Key"], "VersionId": o["VersionId"]} for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objs:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})


def delete(res):
    s3, sqs, cfn = clients(res.get("endpoint"))
    for b in (res["input_bucket"], res["output_bucket"]):
        try:
            _empty_bucket(s3, b)
        except s3.exceptions.NoSuchBucket:
            pass
    if "events" in res:
        cfn.delete_stack(StackName=res["events"]["stack"])
    if "stack" in res:
        cfn.delete_stack(StackName=res["stack"])
    else:
        for b in (res["input_bucket"], res["output_bucket"]):
            try:
                s3.delete_bucket(Bucket=b)
            except s3.exceptions.NoSuchBucket:
                pass
        for q in (res["queue_url"], res["dlq_url"]):
            try:
                sqs.delete_queue(QueueUrl=q)
            except sqs.exceptions.QueueDoesNotExist:
                pass


def env_lines(res):
    return "\n".join(
        [
            f"export INPUT_BUCKET={res['input_bucket']}",
            f"export OUTPUT_BUCKET={res['output_bucket']}",
            f"export QUEUE_URL={res['queue_url']}",
            f"export DLQ_URL={res['dlq_url']}",
        ]
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup", help="create the resources and print their env (eval-able)")
    s.add_argument("--endpoint")
    s.add_argument("--visibility-timeout", type=int, default=30)
    s.add_argument("--max-receive", type=int, default=3)
    s.add_argument("--prefix", default="uploads/")
    s.add_argument("--api", action="store_true", help="create everything by API, ignore the template")
    s.add_argument("--json", help="also write the resource description here (for teardown)")
    s.add_argument("--no-notification", action="store_true", help="leave the bucket notification out (apply it with notify)")
    n = sub.add_parser("notify", help="apply the bucket notification to the stack setup created")
    n.add_argument("--json", required=True)
    n.add_argument("--removals", action="store_true", help="also ObjectRemoved:* (for SYNC_DELETES=true)")
    e = sub.add_parser("subscribe", help="deploy the example subscriber of the stack's outcome events")
    e.add_argument("--json", required=True)
    e.add_argument("--types", default=DETAIL_TYPES, help="detail types, comma separated")
    t = sub.add_parser("teardown", help="delete what setup created")
    t.add_argument("--json", required=True)
    a = ap.parse_args()
    if a.cmd == "setup":
        res = create(a.endpoint, a.visibility_timeout, a.max_receive, a.prefix, use_template=not a.api,
                     notification=not a.no_notification)
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2))
        print(env_lines(res))
        for part, origin in res["created_by"].items():
            print(f"# {part}: {origin}", file=sys.stderr)
    elif a.cmd == "notify":
        events = notify(json.loads(Path(a.json).read_text()), a.removals)
        print(f"# notification: {', '.join(events)} (api)", file=sys.stderr)
    elif a.cmd == "subscribe":
        res = json.loads(Path(a.json).read_text())
        events = subscribe(res, a.types)
        Path(a.json).write_text(json.dumps(res, indent=2))
        print(f"export EVENT_BUS={events['bus']}\nexport EVENT_SOURCE={events['source']}\n"
              f"export EVENTS_QUEUE_URL={events['queue_url']}")
        print(f"# events: {a.types} of {events['source']} -> {events['queue_url']} (example subscriber stack)",
              file=sys.stderr)
    else:
        delete(json.loads(Path(a.json).read_text()))


if __name__ == "__main__":
    main()
