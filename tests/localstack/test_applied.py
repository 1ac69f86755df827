"""What LocalStack's CloudFormation applied from cloudformation/template.yaml, deployed with scripts/deploy/deploy.sh.

moto drops these parts (tests/infra can only read them in the template); here each is read back from the
service that enforces or uses it. Runs before test_pipeline.py (no worker is consuming the queue here)."""
import json
import time
import uuid

from conftest import ALARM_EMAIL, FUNCTION_TIMEOUT, MAX_MESSAGE_AGE, client, deploy, drain


def _records(body):
    return json.loads(body).get("Records", [])


def test_stack_has_no_function_and_named_resources(stack, endpoint):
    [desc] = client("cloudformation", endpoint).describe_stacks(StackName=stack["stack"])["Stacks"]
    assert desc["StackStatus"] == "CREATE_COMPLETE"
    assert {"Function", "FunctionRole", "EventSourceMapping", "Layer", "LogGroup"}.isdisjoint(stack["resources"])
    assert stack["input_bucket"] == f"{stack['stack']}-input-000000000000-us-east-1"


def test_bucket_notification_sent_its_test_event(stack):
    # S3 validates a new notification by sending a TestEvent, which only arrives if the queue policy let it.
    events = [json.loads(b) for b in stack["queued_at_deploy"]]
    assert {(e.get("Event"), e.get("Bucket")) for e in events} == {("s3:TestEvent", stack["input_bucket"])}


def test_only_keys_under_the_input_prefix_notify(stack, endpoint):
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    run = uuid.uuid4().hex[:8]
    inside, outside = f"uploads/{run}/a b.jpg", f"elsewhere/{run}/a.jpg"
    s3.put_object(Bucket=stack["input_bucket"], Key=outside, Body=b"x")
    s3.put_object(Bucket=stack["input_bucket"], Key=inside, Body=b"x")
    records = [r for body in drain(sqs, stack["queue_url"], quiet_for=3) for r in _records(body)]
    assert [(r["eventName"], r["s3"]["bucket"]["name"]) for r in records] == [
        ("ObjectCreated:Put", stack["input_bucket"])]
    # LocalStack writes a space as %20 where AWS writes '+': the worker must accept both (test_pipeline.py).
    assert records[0]["s3"]["object"]["key"] in (f"uploads/{run}/a%20b.jpg", f"uploads/{run}/a+b.jpg")


def test_queue_policy_admits_only_the_input_bucket(stack, endpoint):
    sqs = client("sqs", endpoint)
    attrs = sqs.get_queue_attributes(QueueUrl=stack["queue_url"], AttributeNames=["Policy", "QueueArn"])["Attributes"]
    [statement] = [s for s in json.loads(attrs["Policy"])["Statement"] if s["Effect"] == "Allow"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == attrs["QueueArn"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{stack['input_bucket']}"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "000000000000"


def test_both_queues_deny_plain_http(stack, endpoint):
    sqs = client("sqs", endpoint)
    for url in (stack["queue_url"], stack["dlq_url"]):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy", "QueueArn"])["Attributes"]
        deny = [s for s in json.loads(attrs["Policy"])["Statement"] if s["Effect"] == "Deny"]
        assert [(s["Action"], s["Resource"], s["Condition"]) for s in deny] == [
            ("sqs:*", attrs["QueueArn"], {"Bool": {"aws:SecureTransport": "false"}})], url


def _receive(sqs, url, body):
    msgs = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", [])
    return [m for m in msgs if m["Body"] == body]


def test_redrive_moves_a_message_to_the_dlq_after_five_receives(stack, endpoint):
    # 5: a safety net above the function's 3 attempts (README, "Receives and attempts").
    sqs = client("sqs", endpoint)
    marker = f"redrive-{uuid.uuid4()}"
    sqs.send_message(QueueUrl=stack["queue_url"], MessageBody=marker)
    for _ in range(5):
        [msg] = _receive(sqs, stack["queue_url"], marker)
        sqs.change_message_visibility(QueueUrl=stack["queue_url"], ReceiptHandle=msg["ReceiptHandle"],
                                      VisibilityTimeout=0)
    assert _receive(sqs, stack["queue_url"], marker) == []  # the sixth receive finds it moved
    [dead] = _receive(sqs, stack["dlq_url"], marker)
    sqs.delete_message(QueueUrl=stack["dlq_url"], ReceiptHandle=dead["ReceiptHandle"])


def test_queues_are_encrypted_and_sized_from_the_function_timeout(stack, endpoint):
    sqs = client("sqs", endpoint)
    queue, dlq = (sqs.get_queue_attributes(QueueUrl=stack[q], AttributeNames=["All"])["Attributes"]
                  for q in ("queue_url", "dlq_url"))
    assert queue["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"
    assert queue["VisibilityTimeout"] == str(6 * FUNCTION_TIMEOUT)
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert json.loads(dlq["RedriveAllowPolicy"])["sourceQueueArns"] == [queue["QueueArn"]]


def test_buckets_are_encrypted_private_and_owner_enforced(stack, endpoint):
    s3 = client("s3", endpoint)
    for bucket in (stack["input_bucket"], stack["output_bucket"]):
        [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                         "RestrictPublicBuckets": True}
        ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        [statement] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        # Objects written without asking for encryption are stored encrypted.
        put = s3.put_object(Bucket=bucket, Key=f"probe/{uuid.uuid4()}", Body=b"x")
        assert put["ServerSideEncryption"] == "AES256"


def test_alarms_watch_the_deployed_queues_and_notify_the_encrypted_topic(stack, endpoint):
    alarms = {a["AlarmName"]: a for a in client("cloudwatch", endpoint).describe_alarms(
        AlarmNamePrefix=stack["stack"] + "-")["MetricAlarms"]}
    queue_name = lambda url: url.rsplit("/", 1)[-1]  # noqa: E731
    dlq = alarms[f"{stack['stack']}-dlq-not-empty"]
    age = alarms[f"{stack['stack']}-queue-backlog-old"]
    assert (dlq["MetricName"], dlq["Threshold"]) == ("ApproximateNumberOfMessagesVisible", 0)
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": queue_name(stack["dlq_url"])}]
    assert (age["MetricName"], age["Threshold"]) == ("ApproximateAgeOfOldestMessage", MAX_MESSAGE_AGE)
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": queue_name(stack["queue_url"])}]
    topic = stack["resources"]["AlarmTopic"]
    assert dlq["AlarmActions"] == age["AlarmActions"] == age["OKActions"] == [topic]
    sns = client("sns", endpoint)
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    [sub] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (sub["Protocol"], sub["Endpoint"]) == ("email", ALARM_EMAIL)


def test_stack_update_completes(stack, endpoint, tmp_path):
    """Issue 11 item 14: with a Condition and a Parameter both named DeployFunction, LocalStack recursed without
    end on every update (CreateChangeSet: "maximum recursion depth exceeded")."""
    started = time.monotonic()
    result = deploy(stack["stack"], tmp_path, endpoint, "--timeout", str(FUNCTION_TIMEOUT + 5))
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"update took {time.monotonic() - started:.1f}s")
    [desc] = client("cloudformation", endpoint).describe_stacks(StackName=stack["stack"])["Stacks"]
    assert desc["StackStatus"] == "UPDATE_COMPLETE"
    # A change LocalStack applies on update (it reports an alarm's new threshold as updated but keeps the old).
    attrs = client("sqs", endpoint).get_queue_attributes(QueueUrl=stack["queue_url"], AttributeNames=["All"])
    assert attrs["Attributes"]["VisibilityTimeout"] == str(6 * (FUNCTION_TIMEOUT + 5))
