"""`thumbs dlq` (summary) and `thumbs dlq redrive` on real dead letters written by the worker."""
import subprocess
import uuid

from conftest import FIXTURES, account, queue_counts, upload, wait_accounted, wait_until, worker_env
from accounting import dead_letters

BAD = {
    "uploads/bad/truncated-1.jpg": ("truncated.jpg", "corrupt"),
    "uploads/bad/truncated 2.jpg": ("truncated.jpg", "corrupt"),
    "uploads/bad/empty.jpg": ("empty.jpg", "empty"),
    "uploads/bad/bomb.png": ("bomb.png", "too_many_pixels"),
}


def _dead_lettered_stack(aws, make_stack, start_worker):
    """A stack whose DLQ holds the four BAD uploads, dead-lettered by a real worker (now stopped)."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    worker = start_worker(res, concurrency=2)
    for key, (fixture, _) in BAD.items():
        upload(s3, res, key, (FIXTURES / fixture).read_bytes())
    report = wait_accounted(s3, sqs, res, timeout=120)
    worker.stop()
    assert {k: [d.kind for d in v] for k, v in report.dead.items()} == {k: [kind] for k, (_, kind) in BAD.items()}
    return res


def _thumbs(thumbs_bin, endpoint, res, *args):
    env = worker_env(endpoint, res)
    return subprocess.run([str(thumbs_bin), "dlq", "--dlq-url", res["dlq_url"], *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _kinds(sqs, url):
    return sorted(d.kind for d in dead_letters(sqs, url))


def test_summary_counts_by_kind_without_consuming(aws, endpoint, make_stack, start_worker, thumbs_bin):
    s3, sqs = aws
    res = _dead_lettered_stack(aws, make_stack, start_worker)
    done = _thumbs(thumbs_bin, endpoint, res)
    print(done.stdout, done.stderr[-2000:])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4 message(s) in the dead-letter queue"
    assert "      2  corrupt" in lines and "      1  empty" in lines and "      1  too_many_pixels" in lines
    assert "         e.g. uploads/bad/truncated 2.jpg" in lines
    # Nothing consumed, nothing left hidden: all four are visible at once.
    assert queue_counts(sqs, res["dlq_url"]) == (4, 0)
    assert _thumbs(thumbs_bin, endpoint, res).stdout == done.stdout


def test_redrive_by_kind_moves_exactly_that_kind(aws, endpoint, make_stack, start_worker, thumbs_bin):
    s3, sqs = aws
    res = _dead_lettered_stack(aws, make_stack, start_worker)
    before = {d.body for d in dead_letters(sqs, res["dlq_url"])}
    # A fresh target queue: the stopped worker's last long poll may still take a message from the
    # stack's own queue inside moto, which would hide it from this count for a while.
    target = sqs.create_queue(QueueName=f"thumbs-redrive-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    try:
        dry = _thumbs(thumbs_bin, endpoint, res, "redrive", "--kind", "corrupt", "--dry-run", "--queue-url", target)
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.startswith("would move 2 message(s)"), dry.stdout
        assert queue_counts(sqs, target) == (0, 0) and queue_counts(sqs, res["dlq_url"]) == (4, 0)

        done = _thumbs(thumbs_bin, endpoint, res, "redrive", "--kind", "corrupt", "--queue-url", target)
        print(done.stdout, done.stderr[-2000:])
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("moved 2 message(s) to the main queue; left in the DLQ: 2 of other kinds, "
                                      "0 that could not be sent"), done.stdout
        assert _kinds(sqs, res["dlq_url"]) == ["empty", "too_many_pixels"]
        main = [m["Body"] for m in _receive_all(sqs, target)]
        assert sorted(main) == sorted(d for d in before if "truncated" in d)
        # Nothing lost: every dead letter is in exactly one of the two queues.
        assert sorted(main + [d.body for d in dead_letters(sqs, res["dlq_url"])]) == sorted(before)
    finally:
        sqs.delete_queue(QueueUrl=target)


def test_redriven_messages_render_once_their_cause_is_fixed(aws, endpoint, make_stack, start_worker, thumbs_bin):
    s3, sqs = aws
    res = _dead_lettered_stack(aws, make_stack, start_worker)
    # Fix the cause of one kind (this bucket may have 400 MP images: the pixel limit is raised),
    # then redrive that kind: it renders. (Re-uploading a corrupt file would not be a fix to
    # redrive: the new upload has its own event, and the old one is superseded.)
    done = _thumbs(thumbs_bin, endpoint, res, "redrive", "--kind", "too_many_pixels", "--queue-url", res["queue_url"])
    assert done.returncode == 0, done.stderr
    # The 20,000 x 20,000 bomb is also over the side limit (16,384 wide, issue 20.1): raised too.
    start_worker(res, concurrency=2, MAX_INPUT_PIXELS="400000000", MAX_INPUT_WIDTH="20000")
    fixed = {k for k, (_, kind) in BAD.items() if kind == "too_many_pixels"}
    wait_until(lambda: fixed <= account(s3, sqs, res).rendered, 120, what="the redriven uploads to render")
    assert _kinds(sqs, res["dlq_url"]) == ["corrupt", "corrupt", "empty"]


def _receive_all(sqs, url):
    out, empty = [], 0
    while empty < 2:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   VisibilityTimeout=300).get("Messages", [])
        empty = 0 if msgs else empty + 1
        out += msgs
    return out
