"""Static checks of cloudformation/template.yaml: the properties issue 5 asks for."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

MAX_SQS_VISIBILITY = 43200
FUNCTION_PARTS = ["Function", "Layer", "EventSourceMapping", "FunctionRole", "LogGroup"]


def of_type(resources, kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def plain(node):
    """cfn-lint's nodes as plain dicts/lists/strings, for equality checks."""
    return json.loads(json.dumps(node))


def role_statements(resources, conditions=None):
    """The role's statements as deployed when each named condition has the given value (all true by
    default): a conditional statement (`Fn::If`) becomes its branch, or nothing for `AWS::NoValue`."""
    policies = resources["FunctionRole"]["Properties"]["Policies"]
    statements = []
    for s in (s for p in policies for s in p["PolicyDocument"]["Statement"]):
        if "Fn::If" in s:
            condition, on, off = s["Fn::If"]
            s = on if (conditions or {}).get(condition, True) else off
            if plain(s) == {"Ref": "AWS::NoValue"}:
                continue
        statements.append(s)
    return statements


def as_list(x):
    return x if isinstance(x, list) else [x]


def test_visibility_timeout_is_at_least_six_function_timeouts(template, resources):
    timeout = template["Parameters"]["FunctionTimeout"]
    table = template["Mappings"]["VisibilityTimeout"]
    assert timeout["Default"] in timeout["AllowedValues"]
    assert sorted(table, key=int) == sorted(timeout["AllowedValues"], key=int)
    for seconds in timeout["AllowedValues"]:
        visibility = int(table[seconds]["Seconds"])
        assert 6 * int(seconds) <= visibility <= MAX_SQS_VISIBILITY, seconds
        assert int(seconds) <= 900  # Lambda's limit
    queue = resources["Queue"]["Properties"]
    assert plain(queue["VisibilityTimeout"]) == {
        "Fn::FindInMap": ["VisibilityTimeout", {"Ref": "FunctionTimeout"}, "Seconds"]
    }
    assert plain(resources["Function"]["Properties"]["Timeout"]) == {"Ref": "FunctionTimeout"}


# src/batch/mod.rs: DEADLINE_MARGIN, the time kept after the cutoff for letters and the response.
DEADLINE_MARGIN = 2
# The least time a render started at the last moment still has before the cutoff.
LEAST_RENDER_SECONDS = 3


def test_time_reserve_leaves_time_at_every_allowed_function_timeout(template, resources):
    timeout = template["Parameters"]["FunctionTimeout"]
    table = template["Mappings"]["TimeReserve"]
    assert sorted(table, key=int) == sorted(timeout["AllowedValues"], key=int)
    env = plain(resources["Function"]["Properties"]["Environment"]["Variables"])
    assert env["TIME_RESERVE_SECONDS"] == {
        "Fn::FindInMap": ["TimeReserve", {"Ref": "FunctionTimeout"}, "Seconds"]
    }
    for seconds in timeout["AllowedValues"]:
        reserve = int(table[seconds]["Seconds"])
        # Work can start: the reserve is less than the whole timeout, by at least half of it
        # (the binary caps it there too, so this is what it would do anyway).
        assert reserve <= int(seconds) / 2, seconds
        # A render started at the last moment has time before the cutoff.
        assert reserve - DEADLINE_MARGIN >= LEAST_RENDER_SECONDS, seconds


def test_queue_redrive_is_a_safety_net_above_the_attempts(resources):
    redrive = plain(resources["Queue"]["Properties"]["RedrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }


def test_queues_encrypted_and_retention(resources):
    queue = resources["Queue"]["Properties"]
    dlq = resources["DeadLetterQueue"]["Properties"]
    for q in (queue, dlq):
        assert q["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 4 * 86400
    assert dlq["MessageRetentionPeriod"] == 14 * 86400


def test_function_is_arm64_al2023_with_layer(template, resources):
    fn = resources["Function"]["Properties"]
    assert fn["Runtime"] == "provided.al2023"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == "bootstrap"
    assert plain(fn["Layers"]) == [{"Ref": "Layer"}]
    assert plain(fn["MemorySize"]) == {"Ref": "FunctionMemorySize"}
    assert template["Parameters"]["FunctionMemorySize"]["Default"] == 1769
    # Memory budget: THUMBS_CONCURRENCY worst-case images of 512 MB each, plus 256 MB.
    concurrency = int(fn["Environment"]["Variables"]["THUMBS_CONCURRENCY"])
    assert concurrency == 2
    assert template["Parameters"]["FunctionMemorySize"]["MinValue"] == concurrency * 512 + 256
    assert template["Parameters"]["FunctionTimeout"]["Default"] == "60"
    layer = resources["Layer"]["Properties"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert layer["CompatibleRuntimes"] == ["provided.al2023"]
    assert plain(layer["Content"]) == {"S3Bucket": {"Ref": "ArtifactsBucket"}, "S3Key": {"Ref": "LayerCodeKey"}}
    assert plain(fn["Code"]) == {"S3Bucket": {"Ref": "ArtifactsBucket"}, "S3Key": {"Ref": "FunctionCodeKey"}}


def documented_variables():
    """The variables `thumbs --help` documents: what the binary reads."""
    from conftest import ROOT

    binary = Path(os.environ.get("THUMBS_BIN", ROOT / "target" / "release" / "thumbs"))
    assert binary.is_file(), f"{binary} missing: build it (cargo build --release) or set THUMBS_BIN"
    text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"^  ([A-Z][A-Z0-9_]+)", text, re.M))


def test_function_environment_is_what_the_binary_reads(resources):
    env = plain(resources["Function"]["Properties"]["Environment"]["Variables"])
    documented = documented_variables()
    assert set(env) <= documented, set(env) - documented
    # Required by the binary's config: without them it refuses to start.
    assert env["INPUT_BUCKETS"] == {"Ref": "InputBucket"}
    assert env["OUTPUT_BUCKET"] == {"Ref": "OutputBucket"}
    assert env["DLQ_URL"] == {"Ref": "DeadLetterQueue"}
    # Only the bucket that notifies the queue is trusted.
    [notified] = [n for n, r in resources.items() if "NotificationConfiguration" in r.get("Properties", {})]
    assert env["INPUT_BUCKETS"] == {"Ref": notified}
    # thumbs counts attempts on the copies it sends back to its own queue, and dead-letters
    # with the reason on the last; the redrive policy only catches what it could not answer.
    redrive = plain(resources["Queue"]["Properties"]["RedrivePolicy"])
    assert env["QUEUE_URL"] == {"Ref": "Queue"}
    assert int(env["MAX_RECEIVES"]) < int(redrive["maxReceiveCount"])
    # Prefixes and settings come from parameters, so the notification, the role and the
    # function agree on them.
    for var, parameter in {"INPUT_PREFIX": "InputPrefix", "OUTPUT_PREFIX": "OutputPrefix",
                           "SYNC_DELETES": "SyncDeletes", "CACHE_CONTROL": "CacheControl"}.items():
        assert env[var] == {"Ref": parameter}, var


def test_function_logs_json_to_its_own_group(resources):
    logging = plain(resources["Function"]["Properties"]["LoggingConfig"])
    assert logging["LogFormat"] == "JSON"
    assert logging["LogGroup"] == {"Ref": "LogGroup"}
    assert plain(resources["LogGroup"]["Properties"]["RetentionInDays"]) == {"Ref": "LogRetentionDays"}


def test_event_source_mapping_reports_partial_failures(resources):
    esm = plain(resources["EventSourceMapping"]["Properties"])
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert esm["BatchSize"] == {"Ref": "BatchSize"}
    assert esm["MaximumBatchingWindowInSeconds"] == {"Ref": "MaximumBatchingWindowInSeconds"}
    assert esm["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}}


def test_queue_policy_pins_source_bucket_and_account(resources):
    input_name = plain(resources["InputBucket"]["Properties"]["BucketName"])["Fn::Sub"]
    policy = plain(resources["QueuePolicy"]["Properties"])
    assert policy["Queues"] == [{"Ref": "Queue"}]
    [statement] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::" + input_name}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    # S3 checks the destination while creating the notification.
    assert "QueuePolicy" in as_list(resources["InputBucket"]["DependsOn"])


def test_notification_only_on_input_bucket_prefix(template, resources):
    config = plain(resources["InputBucket"]["Properties"]["NotificationConfiguration"])
    created, removed, expired = config["QueueConfigurations"]
    assert created["Event"] == "s3:ObjectCreated:*"
    assert created["Queue"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert created["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "InputPrefix"}}]
    # Deletions (by a user, or by the UploadExpirationDays lifecycle rule, which sends no
    # ObjectRemoved event) are notified only when SyncDeletes is on, with the same prefix filter.
    assert template["Parameters"]["SyncDeletes"]["Default"] == "false"
    for entry, event in [(removed, "s3:ObjectRemoved:*"), (expired, "s3:LifecycleExpiration:*")]:
        condition, on, off = entry["Fn::If"]
        assert plain(template["Conditions"][condition]) == {"Fn::Equals": [{"Ref": "SyncDeletes"}, "true"]}
        assert on["Event"] == event and on["Filter"] == created["Filter"]
        assert on["Queue"] == created["Queue"]
        assert off == {"Ref": "AWS::NoValue"}
    assert "NotificationConfiguration" not in resources["OutputBucket"]["Properties"]


def test_upload_expiry_is_optional(template, resources):
    assert template["Parameters"]["UploadExpirationDays"]["Default"] == 0
    rules = plain(resources["InputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"])
    [expiry] = [r for r in rules if "Fn::If" in r]
    condition, rule, otherwise = expiry["Fn::If"]
    assert plain(template["Conditions"][condition]) == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "UploadExpirationDays"}, "0"]}]
    }
    assert rule["ExpirationInDays"] == {"Ref": "UploadExpirationDays"}
    assert rule["Prefix"] == {"Ref": "InputPrefix"}
    assert otherwise == {"Ref": "AWS::NoValue"}


@pytest.mark.parametrize("bucket", ["InputBucket", "OutputBucket"])
def test_buckets_private_encrypted_owner_enforced(resources, bucket):
    props = plain(resources[bucket]["Properties"])
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


@pytest.mark.parametrize("bucket", ["InputBucket", "OutputBucket"])
def test_buckets_deny_plain_http(resources, bucket):
    [policy] = [
        plain(r["Properties"])
        for r in of_type(resources, "AWS::S3::BucketPolicy").values()
        if plain(r["Properties"]["Bucket"]) == {"Ref": bucket}
    ]
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Principal"] == "*"
        and s["Action"] == "s3:*"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and {"Fn::GetAtt": [bucket, "Arn"]} in s["Resource"]
        and {"Fn::Sub": "${" + bucket + ".Arn}/*"} in s["Resource"]
        for s in deny
    )


def test_role_is_least_privilege(resources):
    statements = role_statements(resources)
    granted = {}
    for s in statements:
        assert s["Effect"] == "Allow"
        assert "NotAction" not in s and "NotResource" not in s
        for action in as_list(s["Action"]):
            assert "*" not in action, action
            granted[action] = plain(s["Resource"])
    assert set(granted) == {
        "s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject",
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage",
        "logs:CreateLogStream", "logs:PutLogEvents", "events:PutEvents",
    }
    by_sid = {s["Sid"]: s for s in statements}
    uploads = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${InputBucket}/${InputPrefix}*"}
    outputs = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${OutputBucket}/${OutputPrefix}*"}
    # Uploads are only read; outputs only under the output prefix, where nothing notifies.
    assert plain(by_sid["ReadUploads"]["Resource"]) == uploads
    assert as_list(by_sid["ReadUploads"]["Action"]) == ["s3:GetObject"]
    assert plain(by_sid["WriteRenditions"]["Resource"]) == outputs
    deletes = [(a, plain(s["Resource"])) for s in statements for a in as_list(s["Action"]) if "Delete" in a]
    assert sorted(deletes, key=str) == sorted([("s3:DeleteObject", outputs),
                                               ("sqs:DeleteMessage", {"Fn::GetAtt": ["Queue", "Arn"]})], key=str)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert granted[action] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert granted["sqs:SendMessage"] == [{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                          {"Fn::GetAtt": ["Queue", "Arn"]}]
    assert granted["logs:PutLogEvents"] == granted["logs:CreateLogStream"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}
    # Listing (so a missing key is a 404, not a 403) only under each prefix.
    lists = sorted(plain(s["Condition"])["StringLike"]["s3:prefix"]["Fn::Sub"]
                   for s in statements if s["Action"] == "s3:ListBucket")
    assert lists == ["${InputPrefix}*", "${OutputPrefix}*"]


# The IAM action each AWS SDK operation the Rust code calls needs (HeadObject is authorised
# as s3:GetObject, ListObjectsV2 as s3:ListBucket, a *Batch call as its single action).
SDK_ACTIONS = {
    "get_object": "s3:GetObject", "head_object": "s3:GetObject", "put_object": "s3:PutObject",
    "delete_object": "s3:DeleteObject", "list_objects_v2": "s3:ListBucket",
    "send_message": "sqs:SendMessage", "send_message_batch": "sqs:SendMessage",
    "receive_message": "sqs:ReceiveMessage", "delete_message": "sqs:DeleteMessage",
    "delete_message_batch": "sqs:DeleteMessage", "get_queue_attributes": "sqs:GetQueueAttributes",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibility",
    "put_events": "events:PutEvents",
}
# What Lambda itself does with the function's role: the event source mapping polls, deletes
# and reads the queue's attributes; the runtime writes the logs.
LAMBDA_SERVICE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                          "logs:CreateLogStream", "logs:PutLogEvents"}


def _module_file(src, path):
    """The file of the longest module prefix of `path` (["batch", "Pipeline"] -> src/batch/mod.rs)."""
    for n in range(len(path), 0, -1):
        for candidate in (src.joinpath(*path[:n]).with_suffix(".rs"), src.joinpath(*path[:n], "mod.rs")):
            if candidate.is_file():
                return candidate
    return None


def _without_tests(text):
    return text.split("#[cfg(test)]\nmod tests {")[0]


def reachable_sources(start):
    """The Rust files `start` reaches through `crate::`, `super::` and `mod x;`, tests left out."""
    from conftest import ROOT

    src = ROOT / "src"
    seen, todo = set(), [start]
    while todo:
        file = todo.pop()
        if file is None or file in seen:
            continue
        seen.add(file)
        text = _without_tests(file.read_text())
        module = list(file.relative_to(src).with_suffix("").parts)
        if module[-1] == "mod":
            module.pop()
        paths = [m.split("::") for m in re.findall(r"\bcrate::((?:\w+::)*\w+)", text)]
        # `use crate::{a, b::c}` and `use crate::x::{a, b}`
        for base, names in re.findall(r"\bcrate((?:::\w+)*)::\{([^}]*)\}", text):
            paths += [[*base.split("::")[1:], *n.strip().split("::")] for n in names.split(",") if n.strip()]
        paths += [module[:-1] + m.split("::") for m in re.findall(r"\bsuper::((?:\w+::)*\w+)", text)]
        # Child modules (they may hold `impl` blocks of the items used), but of `shell` only
        # those it names: its others are the other entry points (worker, render), which main picks.
        children = re.findall(r"^\s*(?:pub(?:\([^)]*\))? )?mod (\w+);", text, re.M)
        paths += [module + [child] for child in children
                  if module != ["shell"] or re.search(rf"\b{child}::", text)]
        todo += [_module_file(src, path) for path in paths]
    return seen


def sdk_calls(files):
    """The AWS SDK operations called in `files`: `<client>.operation()` on an S3, SQS or EventBridge client."""
    return {op for f in files
            for op in re.findall(r"\b(?:client|s3|sqs)\s*\.\s*([a-z0-9_]+)\(\)", _without_tests(f.read_text()))
            if op != "clone"}


def test_role_holds_exactly_the_actions_the_lambda_path_calls(resources):
    from conftest import ROOT

    files = reachable_sources(ROOT / "src" / "shell" / "lambda.rs")
    names = {str(f.relative_to(ROOT)) for f in files}
    # The walk must see the stages the handler runs, and not the worker's or the operator's.
    assert {"src/storage.rs", "src/report.rs", "src/batch/mod.rs", "src/batch/record.rs"} <= names, names
    assert not {"src/shell/worker.rs", "src/dlq.rs", "src/backfill.rs"} & names, names
    calls = sdk_calls(files)
    unknown = calls - set(SDK_ACTIONS)
    assert not unknown, f"add the IAM action of {unknown} to SDK_ACTIONS"
    needed = {SDK_ACTIONS[op] for op in calls} | LAMBDA_SERVICE_ACTIONS
    granted = {a for s in role_statements(resources) for a in as_list(s["Action"])}
    assert granted == needed, {"granted, never called": granted - needed, "called, not granted": needed - granted}


def test_sdk_call_scan_sees_calls_across_lines(tmp_path):
    rust = tmp_path / "x.rs"
    rust.write_text("let r = self\n    .client\n    .change_message_visibility()\n    .send();\n"
                    "#[cfg(test)]\nmod tests {\n    client.delete_object()\n}\n")
    assert sdk_calls([rust]) == {"change_message_visibility"}


@pytest.mark.parametrize("queue", ["Queue", "DeadLetterQueue"])
def test_queues_deny_plain_http(resources, queue):
    [policy] = [
        plain(r["Properties"])
        for r in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in plain(r["Properties"]["Queues"])
    ]
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Principal"] == "*"
        and s["Action"] == "sqs:*"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and s["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
        for s in deny
    ), policy


def test_metrics_carry_the_stack_name(resources):
    env = plain(resources["Function"]["Properties"]["Environment"]["Variables"])
    assert env["THUMBS_STACK"] == {"Ref": "AWS::StackName"}


def test_role_has_no_managed_policies(resources):
    # Managed policies (e.g. AWSLambdaBasicExecutionRole) grant logs on every group.
    assert "ManagedPolicyArns" not in resources["FunctionRole"]["Properties"]


def test_alarms_on_dlq_depth_and_backlog_age(resources):
    alarms = {a["Properties"]["MetricName"]: plain(a["Properties"])
              for a in of_type(resources, "AWS::CloudWatch::Alarm").values()}
    dlq = alarms["ApproximateNumberOfMessagesVisible"]
    assert dlq["Namespace"] == "AWS/SQS"
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    age = alarms["ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}]
    assert age["Threshold"] == {"Ref": "MaxMessageAgeSeconds"}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


def test_alarm_topic_optional_and_encrypted(template, resources):
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    topic = resources["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail" == resources["AlarmKey"]["Condition"]
    assert plain(topic["Properties"]["KmsMasterKeyId"]) == {"Ref": "AlarmKey"}
    grants = [s for s in resources["AlarmKey"]["Properties"]["KeyPolicy"]["Statement"]
              if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert grants and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(grants[0]["Action"])


def test_function_parts_can_be_left_out_for_emulators(template, resources):
    assert plain(template["Conditions"]["HasFunction"]) == {"Fn::Equals": [{"Ref": "DeployFunction"}, "true"]}
    assert template["Parameters"]["DeployFunction"]["Default"] == "true"
    for name in FUNCTION_PARTS:
        assert resources[name]["Condition"] == "HasFunction", name


def test_no_condition_shares_a_name_with_a_parameter_or_resource(template):
    # LocalStack resolves a Condition named like a Parameter to the Parameter on every stack
    # update and never finishes it (tests/localstack/test_stack.py updates a stack for real).
    names = set(template["Parameters"]) | set(template["Resources"])
    assert set(template["Conditions"]) & names == set()


def test_names_derive_from_stack_name(resources):
    name_keys = {"BucketName", "QueueName", "FunctionName", "LayerName", "LogGroupName", "TopicName", "AlarmName"}
    named = 0
    for logical_id, resource in resources.items():
        for key in name_keys & set(resource.get("Properties", {})):
            value = plain(resource["Properties"][key])
            if value.get("Ref") in resources:  # e.g. the mapping's FunctionName: a reference
                continue
            assert "${AWS::StackName}" in value["Fn::Sub"], logical_id
            named += 1
    assert named >= 9


def test_outputs_described(template):
    outputs = template["Outputs"]
    for key in ("InputBucketName", "OutputBucketName", "QueueUrl", "QueueArn",
                "DeadLetterQueueUrl", "DeadLetterQueueArn", "FunctionName", "FunctionArn"):
        assert key in outputs, key
    assert plain(outputs["FunctionArn"]["Value"]) == {"Fn::GetAtt": ["Function", "Arn"]}
    for key, output in outputs.items():
        assert len(output.get("Description", "")) > 10, key


def test_checkov_skips_have_reasons(resources):
    for logical_id, resource in resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV"), logical_id
            assert len(skip.get("comment", "")) > 30, (logical_id, skip["id"])


def test_example_parameters_fit_the_template(template):
    from conftest import ROOT

    example = json.loads((ROOT / "cloudformation" / "parameters.example.json").read_text())
    parameters = template["Parameters"]
    for entry in example:
        spec = parameters[entry["ParameterKey"]]
        value = entry["ParameterValue"]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], entry
        if spec["Type"] == "Number":
            assert spec.get("MinValue", 0) <= int(value) <= spec.get("MaxValue", 2**63), entry
    required = {k for k, v in parameters.items() if "Default" not in v}
    assert required <= {e["ParameterKey"] for e in example}


# --- issue 22: rules per folder (ThumbsRules -> THUMBS_RULES) ---


def worked_example():
    """The rules of ThumbsRules' worked example, as the template's comment writes them."""
    from conftest import TEMPLATE

    lines = TEMPLATE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "Worked example" in line) + 1
    rules = []
    for line in lines[start:]:
        text = line.strip().removeprefix("#").strip()
        if "=" not in text.split(" ")[0]:
            break
        rules.append(text)
    return " ".join(rules)


def test_rules_reach_the_function_and_the_notification_covers_every_rule(template, resources):
    parameter = template["Parameters"]["ThumbsRules"]
    # No rules by default: existing stacks keep ThumbsPresets/ThumbsFormats for every key.
    assert parameter["Default"] == "" and int(parameter["MaxLength"]) <= 4096
    env = plain(resources["Function"]["Properties"]["Environment"]["Variables"])
    assert env["THUMBS_RULES"] == {"Ref": "ThumbsRules"}
    # Rules live inside InputPrefix (the function refuses others at start), so the notification
    # on InputPrefix covers every rule's keys and nothing else.
    created = plain(resources["InputBucket"]["Properties"]["NotificationConfiguration"])["QueueConfigurations"][0]
    assert created["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "InputPrefix"}}]
    prefix = template["Parameters"]["InputPrefix"]["Default"]
    example = worked_example()
    for rule in example.split(";"):
        assert rule.split()[0].split("=", 1)[1].startswith(prefix), rule


def test_the_worked_example_renders_each_rules_renditions(template, tmp_path):
    from conftest import ROOT

    binary = Path(os.environ.get("THUMBS_BIN", ROOT / "target" / "release" / "thumbs"))
    photo = (ROOT / "tests" / "fixtures" / "landscape.jpg").read_bytes()
    for folder in ["avatars", "products", "misc"]:
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / "a.jpg").write_bytes(photo)
    params = template["Parameters"]
    env = dict(os.environ, INPUT_PREFIX=params["InputPrefix"]["Default"],
               THUMBS_PRESETS=params["ThumbsPresets"]["Default"], THUMBS_FORMATS=params["ThumbsFormats"]["Default"])
    done = subprocess.run([str(binary), "render", "--rules", worked_example(), "-o", str(tmp_path / "out"),
                           str(tmp_path / "in")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    made = {}
    for folder in ["avatars", "products", "misc"]:
        manifest = json.loads((tmp_path / "out" / folder / "a.jpg" / "manifest.json").read_text())
        made[folder] = (manifest["rule"], sorted({(r["preset"], r["format"]) for r in manifest["renditions"]}))
    assert made["avatars"] == ("avatars", [("s128", "webp"), ("s64", "webp")])
    assert made["products"] == ("products", sorted((p, f) for p in ["w400", "w800", "w1600"]
                                                   for f in ["avif", "webp", "jpeg"]))
    assert made["misc"] == ("default", [("large", "webp"), ("small", "webp"), ("thumb", "webp")])
    # The same rules with a prefix outside InputPrefix stop the binary, naming the rule.
    done = subprocess.run([str(binary), "render", "--rules", "old=photos/ presets=x=10", "-o", str(tmp_path / "x"),
                           str(tmp_path / "in")], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "rule `old`: prefix `photos/` is outside INPUT_PREFIX" in done.stderr
