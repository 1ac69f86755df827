"""`thumbs backfill`: originals that were in the bucket before the notification existed.

BACKFILL_OBJECTS (default 1000) sets the size of the exactly-once test; scripts/bench/backfill-bench.sh
runs it with 10,000 and records the figures in target/e2e/backfill.json.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import FIXTURES, ROOT, account, queue_counts, upload, wait_accounted, wait_until, worker_env
from test_load import small_jpeg

N = int(os.environ.get("BACKFILL_OBJECTS", "1000"))
# LocalStack 2026.3.0 answers HTTP 500 to a ListObjectsV2 continuation token after a non-ASCII key
# ('ascii' codec can't decode byte 0xc3), so scripts/bench/backfill-bench.sh sets BACKFILL_ASCII_KEYS there.
MARK = "+x" if os.environ.get("BACKFILL_ASCII_KEYS") else "+é"


def _without_notification(s3, res):
    """As if the bucket predated the pipeline: uploads announce nothing."""
    s3.put_bucket_notification_configuration(Bucket=res["input_bucket"], NotificationConfiguration={})


def _upload_all(s3, res, keys, body):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: upload(s3, res, k, body), keys))


def _backfill(thumbs_bin, res, *args):
    return [str(thumbs_bin), "backfill", "--bucket", res["input_bucket"], "--queue-url", res["queue_url"], *args]


def _drain(sqs, url):
    """Receive and delete every message; returns their bodies."""
    bodies = []
    empty = 0
    while empty < 2:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        empty = 0 if msgs else empty + 1
        for m in msgs:
            bodies.append(m["Body"])
        for i in range(0, len(msgs), 10):
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]}
                                                            for j, m in enumerate(msgs[i:i + 10])])
    return bodies


def _keys(bodies):
    from accounting import keys_in_body
    return [k for b in bodies for _, k in keys_in_body(b)]


def test_backfill_renders_every_existing_original_exactly_once(aws, endpoint, make_stack, start_worker, thumbs_bin,
                                                                tmp_path):
    s3, sqs = aws
    res = make_stack(visibility_timeout=60)
    _without_notification(s3, res)
    body = small_jpeg(thumbs_bin, tmp_path)
    keys = [f"uploads/old/{i // 100:03d}/photo {i:05d}{MARK}.jpg" for i in range(N)]
    _upload_all(s3, res, keys, body)
    upload(s3, res, "uploads/old/empty-folder/", b"")  # a folder marker: listed, skipped
    upload(s3, res, "elsewhere/not-mine.jpg", body)  # outside the prefix: not listed
    # The stack's s3:TestEvent (sent when the notification was configured) is the only message.
    _drain(sqs, res["queue_url"])

    env = worker_env(endpoint, res)
    t0 = time.monotonic()
    done = subprocess.run(_backfill(thumbs_bin, res), env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.monotonic() - t0
    print(done.stderr[-2000:])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"listed {N + 1}, skipped 1, enqueued {N}, failed to enqueue 0"
    assert queue_counts(sqs, res["queue_url"]) == (N, 0)  # N messages, none sent twice
    # The marker is no original: out of the accounting's way (it counts every key under the prefix).
    s3.delete_object(Bucket=res["input_bucket"], Key="uploads/old/empty-folder/")

    worker = start_worker(res, concurrency=4)
    t1 = time.monotonic()
    wait_accounted(s3, sqs, res, timeout=max(300, N // 2), read_manifests=False)
    render_seconds = time.monotonic() - t1
    wait_until(lambda: queue_counts(sqs, res["queue_url"]) == (0, 0), 120, what="the queue to drain")
    report = account(s3, sqs, res)
    assert report.ok, report.problems()[:20]
    assert report.rendered == set(keys) and not report.dead and not report.stray
    outcomes = _outcomes(worker.log())
    rendered = [key for outcome, _, key in outcomes if outcome == "rendered"]
    assert sorted(rendered) == sorted(keys), f"{len(rendered)} renders for {N} originals"
    # SQS delivers at least once: a message seen again is acknowledged as `unchanged`, never
    # rendered twice. Every delivery must belong to one of the N messages, one message per key.
    ids_by_key = {}
    for _, message_id, key in outcomes:
        ids_by_key.setdefault(key, set()).add(message_id)
    assert all(len(ids) == 1 for ids in ids_by_key.values()), "a key arrived in two messages"
    redelivered = [o for o in outcomes if o[0] != "rendered"]
    assert all(o == "skipped" for o, _, _ in redelivered), redelivered[:5]

    figures = {"objects": N, "backfill_seconds": round(seconds, 2), "enqueued_per_second": round(N / seconds, 1),
               "rendered_seconds": round(render_seconds, 1), "rendered_per_second": round(N / render_seconds, 1),
               "renders": len(rendered), "redelivered": len(redelivered), "worker_concurrency": 4,
               "endpoint": endpoint, "key_example": keys[-1]}
    print("backfill:", json.dumps(figures))
    out = ROOT / "target" / "e2e"
    out.mkdir(parents=True, exist_ok=True)
    (out / "backfill.json").write_text(json.dumps(figures, indent=2) + "\n")


_OUTCOME = re.compile(r'outcome="(\w+)".* id=(\S+) bucket=\S+ key=(.*)$')


def _outcomes(log):
    """(outcome, message id, key) of each message the worker handled, from its log lines."""
    return [m.groups() for m in map(_OUTCOME.search, log.splitlines()) if m]


def test_interrupted_backfill_resumes_without_gaps_or_repeats(aws, endpoint, make_stack, thumbs_bin, faultproxy):
    s3, sqs = aws
    res = make_stack()
    _without_notification(s3, res)
    keys = [f"uploads/r/{i:04d} x.jpg" for i in range(300)]
    _upload_all(s3, res, keys, b"x")
    _drain(sqs, res["queue_url"])
    # Each LIST takes 200 ms, so the run is still going when the signal arrives.
    proxy, _ = faultproxy("--latency-ms", "200")
    env = worker_env(endpoint, res, s3_endpoint=proxy)
    first = subprocess.Popen(_backfill(thumbs_bin, res, "--page-size", "10"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    while "resume with --start-after" not in line:  # the first progress line (after other logs)
        line = first.stderr.readline()
        assert line, "the backfill ended without a progress line"
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    print(line + err)
    assert first.returncode == 1, (out, err)
    assert err.rstrip().endswith("thumbs: interrupted"), err
    command = _resume_command(err)
    resume = command[command.index("--start-after") + 1]
    listed = int(re.match(r"listed (\d+),", out).group(1))
    assert 0 < listed < 300 and resume == keys[listed - 1]

    second = subprocess.run(_backfill(thumbs_bin, res, "--start-after", resume), env=env,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"listed {300 - listed}, skipped 0, enqueued {300 - listed}, failed to enqueue 0"
    assert sorted(_keys(_drain(sqs, res["queue_url"]))) == keys  # each key once: no gap, no repeat


def _resume_command(err):
    """The words of the command an interrupted or failed run prints (`resume with: ...`)."""
    [line] = [line for line in err.splitlines() if line.startswith("resume with: ")]
    return shlex.split(line.removeprefix("resume with: "))


# Keys an end user could upload to reach the operator's shell or terminal (no newline: moto's
# routing cannot store a key with one; the unit tests of src/display.rs cover it).
HOSTILE = ["x'$(touch pwned)'", "`touch pwned`", "$(touch pwned)", "a\"b\\\"$(touch pwned)\"",
           "';touch pwned;'", "esc\x1b]0;title\x07\x1b[2J", "bell\x07 100%", "rtl\u202egpj.exe"]


def test_the_printed_resume_command_pasted_into_bash_runs_exactly_that_command(
        aws, endpoint, make_stack, thumbs_bin, faultproxy, tmp_path, request):
    s3, sqs = aws
    res = make_stack()
    _without_notification(s3, res)
    # Every key hostile, so the run stops after one of them whichever page the signal meets.
    keys = sorted(f"uploads/h/{i:03d} {HOSTILE[i % len(HOSTILE)]}.jpg" for i in range(120))
    # Gone before the stack's teardown, whose ListObjectVersions moto answers with a 500 for them.
    request.addfinalizer(lambda: [s3.delete_object(Bucket=res["input_bucket"], Key=k) for k in keys])
    _upload_all(s3, res, keys, b"x")
    _drain(sqs, res["queue_url"])
    proxy, _ = faultproxy("--latency-ms", "200")
    env = worker_env(endpoint, res, s3_endpoint=proxy)
    first = subprocess.Popen(_backfill(thumbs_bin, res, "--page-size", "5"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    while "resume with " not in line:
        line = first.stderr.readline()
        assert line, "the backfill ended without a progress line"
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    err = line + err
    print(err)
    assert first.returncode == 1, (out, err)
    # Nothing raw reaches the terminal: no escape sequence, no bidi override.
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", err), err
    [printed] = [line for line in err.splitlines() if line.startswith("resume with: ")]

    # Pasted as printed, with `thumbs` on the PATH, in an empty folder.
    paste = tmp_path / "paste"
    paste.mkdir()
    env["PATH"] = f"{thumbs_bin.parent}:{env['PATH']}"
    assert thumbs_bin.name == "thumbs"
    second = subprocess.run(["bash", "-c", printed.removeprefix("resume with: ")], cwd=paste, env=env,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert list(paste.iterdir()) == [], "the pasted command ran something hidden in a key"
    listed = int(re.match(r"listed (\d+),", out).group(1))
    assert second.stdout.strip() == f"listed {120 - listed}, skipped 0, enqueued {120 - listed}, failed to enqueue 0"
    assert sorted(_keys(_drain(sqs, res["queue_url"]))) == keys  # every hostile key once, intact


def test_dry_run_sends_nothing(aws, endpoint, make_stack, thumbs_bin):
    s3, sqs = aws
    res = make_stack()
    _without_notification(s3, res)
    _upload_all(s3, res, [f"uploads/d/{i}.jpg" for i in range(25)], b"x")
    _drain(sqs, res["queue_url"])
    env = worker_env(endpoint, res)
    done = subprocess.run(_backfill(thumbs_bin, res, "--dry-run"), env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "listed 25, skipped 0, would enqueue 25, failed to enqueue 0"
    assert queue_counts(sqs, res["queue_url"]) == (0, 0)


def test_a_wrong_queue_fails_and_counts_the_failures(aws, endpoint, make_stack, thumbs_bin):
    s3, sqs = aws
    res = make_stack()
    _without_notification(s3, res)
    _upload_all(s3, res, [f"uploads/w/{i}.jpg" for i in range(3)], b"x")
    env = worker_env(endpoint, res)
    bad = dict(res, queue_url=res["queue_url"] + "-missing")
    done = subprocess.run(_backfill(thumbs_bin, bad), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == "listed 3, skipped 0, enqueued 0, failed to enqueue 3"
    assert "could not be enqueued" in done.stderr


# --- issue 17 (helper 17d): --only-missing and uploads that failed for good ---


def test_only_missing_does_not_dead_letter_a_failed_first_upload_again_until_it_changes(
    aws, endpoint, make_stack, start_worker, thumbs_bin
):
    """A first upload that fails for good gets a manifest saying so (no renditions, the failure,
    its ETag): a second `--only-missing` run skips it instead of dead-lettering it again; a
    re-upload of the key (a new ETag) is listed as missing and rendered."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    _without_notification(s3, res)
    bad, good = "uploads/om/broken scan.jpg", "uploads/om/fine.jpg"
    upload(s3, res, bad, (FIXTURES / "truncated.jpg").read_bytes())
    upload(s3, res, good, (FIXTURES / "landscape.jpg").read_bytes())
    _drain(sqs, res["queue_url"])
    env = worker_env(endpoint, res)

    def only_missing():
        done = subprocess.run(_backfill(thumbs_bin, res, "--only-missing"), env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert only_missing() == "listed 2, skipped 0, enqueued 2, failed to enqueue 0"
    start_worker(res, concurrency=2)
    report = wait_accounted(s3, sqs, res, timeout=120)
    assert report.ok, report.problems()
    assert report.rendered == {good} and [d.kind for d in report.dead[bad]] == ["corrupt"]
    failed = report.failed[bad]
    assert failed["renditions"] == [] and failed["failures"][0]["kind"] == "corrupt", failed
    assert failed["source"]["etag"].strip('"') == report.uploads[bad]["etag"]
    wait_until(lambda: queue_counts(sqs, res["queue_url"]) == (0, 0), 30, what="the queue to drain")

    # Run again: both are done (one rendered, one failed for good); nothing is dead-lettered twice.
    assert only_missing() == "listed 2, skipped 2, enqueued 0, failed to enqueue 0"
    time.sleep(3)
    assert len(account(s3, sqs, res).dead[bad]) == 1

    # The user uploads a good file under the broken key: a new ETag, so it is missing again.
    upload(s3, res, bad, (FIXTURES / "landscape.jpg").read_bytes())
    assert only_missing() == "listed 2, skipped 1, enqueued 1, failed to enqueue 0"
    wait_until(lambda: bad in account(s3, sqs, res).rendered, 60, what="the re-upload to render")
    manifest = account(s3, sqs, res).manifests[bad]
    assert len(manifest["renditions"]) == 3 and "failures" not in manifest
