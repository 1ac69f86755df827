"""scripts/deploy/deploy.sh and scripts/deploy/destroy.sh run for real against a moto server.

moto's CloudFormation builds the buckets and queues but silently drops the bucket policies,
public access blocks, ownership controls, lifecycle rules, the notification, the queue policy
and the alarms (see cloudformation/README.md): those are covered by test_template.py only."""

import hashlib
import json
import re
import subprocess
import zipfile

import boto3
import pytest

from conftest import ROOT

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999999999999"
REGION = "us-east-1"
STACK = "thumbs-ci"
INPUT_BUCKET = f"{STACK}-input-{ACCOUNT}-{REGION}"
OUTPUT_BUCKET = f"{STACK}-output-{ACCOUNT}-{REGION}"


def run(script, *args, env, stdin=subprocess.DEVNULL):
    return subprocess.run(
        [str(ROOT / "scripts" / "deploy" / script), *args],
        env=env, stdin=stdin, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def zips(tmp_path):
    paths = {}
    for name in ("function", "layer"):
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("bootstrap" if name == "function" else "lib/README", f"fake {name}")
        paths[name] = path
    return paths


def client(service, env, credentials=None):
    credentials = credentials or {"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": None}
    return boto3.client(
        service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def other_account(env):
    """An S3 client of another account: moto maps a role's credentials to the role's account."""
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/squatter"
    credentials = client("sts", env).assume_role(RoleArn=role, RoleSessionName="squatter")["Credentials"]
    s3 = client("s3", env, credentials)
    assert client("sts", env, credentials).get_caller_identity()["Account"] == OTHER_ACCOUNT
    return s3


def artifacts_buckets(s3):
    return sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("thumbs-artifacts-"))


def deploy_args(zips, *extra):
    return ["--stack-name", STACK, "--no-function",
            "--function-zip", str(zips["function"]), "--layer-zip", str(zips["layer"]), *extra]


def test_deploy_then_destroy_on_moto(aws_env, zips):
    s3, sqs, cfn = client("s3", aws_env), client("sqs", aws_env), client("cloudformation", aws_env)
    # An existing artifacts bucket is reused. (A new one gets a TLS-only policy, and moto 5.2
    # evaluates a conditional Deny as a plain Deny, so uploads to it fail there.)
    s3.create_bucket(Bucket="artifacts")
    result = run("deploy.sh", *deploy_args(zips, "--artifacts-bucket", "artifacts", "--timeout", "90",
                                          "--alarm-email", "ops@example.com", "--memory", "2048"),
                 env=aws_env)
    assert result.returncode == 0, result.stderr
    assert f"s3 cp photo.jpg s3://{INPUT_BUCKET}/uploads/photo.jpg" in result.stdout

    # Artifacts under content-addressed keys, passed to the stack.
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"]}
    digests = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in zips.items()}
    assert keys == {f"thumbs/{n}-{d}.zip" for n, d in digests.items()}
    [stack] = cfn.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["FunctionCodeKey"] == f"thumbs/function-{digests['function']}.zip"
    assert params["LayerCodeKey"] == f"thumbs/layer-{digests['layer']}.zip"
    assert (params["DeployFunction"], params["FunctionTimeout"], params["FunctionMemorySize"]) == ("false", "90", "2048")

    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
        [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    queue_url = sqs.get_queue_url(QueueName=f"{STACK}-uploads")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{STACK}-dlq")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert queue["VisibilityTimeout"] == "540"  # 6 x 90 s
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert queue["MessageRetentionPeriod"] == "345600"
    assert dlq["MessageRetentionPeriod"] == "1209600"
    assert queue["SqsManagedSseEnabled"] == dlq["SqsManagedSseEnabled"] == "true"

    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-alarms"
    assert client("sns", aws_env).get_topic_attributes(TopicArn=topic_arn)["Attributes"]["KmsMasterKeyId"]
    assert client("lambda", aws_env).list_functions()["Functions"] == []  # DeployFunction=false

    # destroy: refuses without --yes when it cannot ask, then empties the buckets and deletes.
    s3.put_object(Bucket=INPUT_BUCKET, Key="uploads/a.jpg", Body=b"x")
    s3.put_object(Bucket=OUTPUT_BUCKET, Key="thumbnails/a.jpg/thumb.webp", Body=b"y")
    refused = run("destroy.sh", "--stack-name", STACK, env=aws_env)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert s3.list_objects_v2(Bucket=INPUT_BUCKET)["KeyCount"] == 1

    result = run("destroy.sh", "--stack-name", STACK, "--yes", env=aws_env)
    assert result.returncode == 0, result.stderr
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert buckets == {"artifacts"}  # shared artifacts bucket kept
    assert sqs.list_queues().get("QueueUrls", []) == []
    again = run("destroy.sh", "--stack-name", STACK, "--yes", env=aws_env)
    assert again.returncode == 0 and "does not exist" in again.stdout


def test_deploy_creates_private_artifacts_bucket(aws_env, zips):
    s3 = client("s3", aws_env)
    # The run's exit status is not checked: on moto the upload after the TLS-only policy fails
    # (see the first test). What is checked is the bucket the script made.
    run("deploy.sh", *deploy_args(zips), env=aws_env)
    # A name no one can guess and create first, found again by the next deploy.
    [bucket] = artifacts_buckets(s3)
    assert re.fullmatch(f"thumbs-artifacts-{REGION}-[0-9a-f]{{16}}", bucket), bucket
    run("deploy.sh", *deploy_args(zips), env=aws_env)
    assert artifacts_buckets(s3) == [bucket]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    [statement] = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dry_run_calls_nothing(zips):
    # No credentials and an endpoint where nothing listens: any real call would fail the run.
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "FUNCTION_MEMORY": "3008"}
    result = run("deploy.sh", "--dry-run", "--function-zip", str(zips["function"]),
                 "--layer-zip", str(zips["layer"]), "--batch-size", "7", env=env)
    assert result.returncode == 0, result.stderr
    [deploy] = [line for line in result.stderr.splitlines() if " cloudformation deploy " in line]
    for expected in ("--stack-name thumbs", "--endpoint-url http://127.0.0.1:9", "--region eu-west-1",
                     "DeployFunction=true", "FunctionMemorySize=3008", "BatchSize=7", "CAPABILITY_IAM"):
        assert expected in deploy
    assert "s3api create-bucket --bucket thumbs-artifacts-eu-west-1-\\<random\\>" in result.stderr
    # Every call on the artifacts bucket but its creation names the owner.
    calls = [line for line in result.stderr.splitlines() if " s3api " in line and "thumbs-artifacts-" in line]
    assert len(calls) == 7, calls  # create, 4 settings, 2 uploads
    for line in calls:
        assert ("--expected-bucket-owner \\<account-id\\>" in line) != (" create-bucket " in line), line


def test_missing_credentials_are_reported(aws_env, zips):
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    result = run("deploy.sh", *deploy_args(zips), env=env)
    assert result.returncode != 0
    assert "no usable AWS credentials" in result.stderr


def test_missing_artifacts_are_reported(aws_env, tmp_path):
    result = run("deploy.sh", "--function-zip", str(tmp_path / "none.zip"), env=aws_env)
    assert result.returncode != 0
    assert "missing artifact" in result.stderr and "make dist" in result.stderr


@pytest.mark.parametrize("name, message", [("Thumbs", "lower case"), ("t" * 40, "longer than 33")])
def test_stack_names_that_cannot_name_buckets_are_refused(aws_env, zips, name, message):
    result = run("deploy.sh", *deploy_args(zips, "--stack-name", name), env=aws_env)
    assert result.returncode != 0
    assert message in result.stderr


def test_an_artifacts_bucket_of_another_account_is_refused(aws_env, zips):
    squatter = other_account(aws_env)
    squatter.create_bucket(Bucket="thumbs-artifacts-squatted")
    result = run("deploy.sh", *deploy_args(zips, "--artifacts-bucket", "thumbs-artifacts-squatted"), env=aws_env)
    assert result.returncode != 0
    assert f"thumbs-artifacts-squatted exists but does not belong to account {ACCOUNT}" in result.stderr
    assert squatter.list_objects_v2(Bucket="thumbs-artifacts-squatted")["KeyCount"] == 0
    assert client("cloudformation", aws_env).list_stacks()["StackSummaries"] == []


def test_the_old_predictable_name_taken_by_another_account_is_not_used(aws_env, zips):
    squatter = other_account(aws_env)
    predictable = f"thumbs-artifacts-{ACCOUNT}-{REGION}"
    squatter.create_bucket(Bucket=predictable)
    run("deploy.sh", *deploy_args(zips), env=aws_env)  # exit status: see the test above
    assert squatter.list_objects_v2(Bucket=predictable)["KeyCount"] == 0
    [ours] = artifacts_buckets(client("s3", aws_env))
    assert ours.startswith(f"thumbs-artifacts-{REGION}-")


def test_rules_are_passed_as_one_parameter(zips):
    """Issue 22: --rules (or THUMBS_RULES) becomes ThumbsRules, spaces and `;` kept in one value."""
    env = {"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    rules = "avatars=uploads/avatars/ presets=s64=64x64:cover; products=uploads/products/ presets=w400=400x400"
    result = run("deploy.sh", "--dry-run", "--function-zip", str(zips["function"]),
                 "--layer-zip", str(zips["layer"]), "--rules", rules, env=env)
    assert result.returncode == 0, result.stderr
    [deploy] = [line for line in result.stderr.splitlines() if " cloudformation deploy " in line]
    # The command is printed with bash's printf %q: blanks and `;` escaped, one argument.
    assert " ThumbsRules=" + re.sub(r"([ ;])", r"\\\1", rules) in deploy, deploy
