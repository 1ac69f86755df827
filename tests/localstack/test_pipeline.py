"""`thumbs worker` on the queue LocalStack's S3 notifies: S3's own event bodies for PutObject, multipart
uploads and CopyObject, awkward keys, a corrupt upload, and a key overwritten while its first upload renders.

Each test works in its own folder (run_prefix) of the session's stack and accounts only for it."""
import json
import random
import struct
import subprocess
import time
import uuid
import zlib

from conftest import FIXTURES, account, client, drain, e2e, wait_accounted

AWKWARD = {  # key below the test's folder -> fixture
    "with space.jpg": "landscape.jpg",
    "a+b=c&d.jpg": "progressive.jpg",
    "brushes café ü 日本.png": "alpha.png",
    "100% done%20.jpg": "grey.jpg",
    "phone/summer trip/2024/nested/dogs.jpg": "orient6.jpg",
}
PART = 5 * 1024 * 1024  # S3's smallest part but the last


def noise_png(width, height, seed):
    """A valid PNG of random pixels, stored uncompressed: width x height x 3 bytes and a little more."""
    rnd = random.Random(seed)
    rows = b"".join(b"\0" + rnd.randbytes(width * 3) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def test_awkward_keys_get_renditions_at_their_own_output_keys(stack, run_prefix, worker, endpoint):
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    for rel, fixture in AWKWARD.items():
        s3.put_object(Bucket=stack["input_bucket"], Key=run_prefix["input_prefix"] + rel,
                      Body=(FIXTURES / fixture).read_bytes())
    report = wait_accounted(s3, sqs, run_prefix, timeout=120)
    assert report.ok, report.problems()
    assert report.rendered == {run_prefix["input_prefix"] + rel for rel in AWKWARD} and not report.dead
    # Nothing was written under a mangled name (e.g. `with%20space.jpg/`): each output sits in its upload's folder.
    outputs = e2e.accounting.list_objects(s3, stack["output_bucket"], run_prefix["output_prefix"])
    folders = {run_prefix["output_prefix"] + rel + "/" for rel in AWKWARD}
    assert [k for k in outputs if not any(k.startswith(f) for f in folders)] == []
    assert {f + "manifest.json" for f in folders} <= set(outputs)


def test_corrupt_upload_is_dead_lettered_with_its_kind(stack, run_prefix, worker, endpoint):
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    key = run_prefix["input_prefix"] + "broken scan.jpg"
    s3.put_object(Bucket=stack["input_bucket"], Key=key, Body=(FIXTURES / "truncated.jpg").read_bytes())
    report = wait_accounted(s3, sqs, run_prefix, timeout=120)
    assert report.ok, report.problems()
    [letter] = report.dead[key]
    assert letter.kind == "corrupt"
    assert letter.attributes["Key"] == key and letter.attributes["Bucket"] == stack["input_bucket"]
    assert letter.attributes["ErrorMessage"]
    # No renditions: only the failure manifest, so `backfill --only-missing` leaves it alone until the key changes.
    folder = run_prefix["output_prefix"] + "broken scan.jpg/"
    assert list(e2e.accounting.list_objects(s3, stack["output_bucket"], run_prefix["output_prefix"])) == [
        folder + "manifest.json"]
    failed = json.loads(s3.get_object(Bucket=stack["output_bucket"], Key=folder + "manifest.json")["Body"].read())
    assert failed["renditions"] == [] and [f["kind"] for f in failed["failures"]] == ["corrupt"]


def test_multipart_upload_and_copy_each_produce_renditions(stack, run_prefix, worker, endpoint):
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    bucket, prefix = stack["input_bucket"], run_prefix["input_prefix"]
    big = noise_png(1400, 1300, seed=1)  # about 5.5 MB: two parts
    assert len(big) > PART
    key = prefix + "multipart.png"
    mpu = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="image/png")
    parts = [s3.upload_part(Bucket=bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=n + 1,
                            Body=big[n * PART:(n + 1) * PART])["ETag"] for n in range(2)]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=mpu["UploadId"], MultipartUpload={
        "Parts": [{"ETag": etag, "PartNumber": n + 1} for n, etag in enumerate(parts)]})
    # The copy's source is outside the input prefix, so only the copy itself notifies.
    source = f"staging/{uuid.uuid4().hex}/photo.jpg"
    s3.put_object(Bucket=bucket, Key=source, Body=(FIXTURES / "landscape.jpg").read_bytes())
    s3.copy_object(Bucket=bucket, Key=prefix + "copied.jpg", CopySource={"Bucket": bucket, "Key": source})
    report = wait_accounted(s3, sqs, run_prefix, timeout=120)
    assert report.ok, report.problems()
    assert report.rendered == {key, prefix + "copied.jpg"} and not report.dead
    assert "-" in report.uploads[key]["etag"]  # a multipart ETag: the manifest matched it (report.ok)
    assert report.manifests[key]["source"]["width"] == 1400


def test_overwritten_key_ends_described_by_the_newest_upload(stack, run_prefix, worker, endpoint):
    """Issue 11 item 11. The first upload is slow to render and the second, 0.1 s later, fast: the job for the
    first must not have the last word. LocalStack gives every event the same sequencer, so only the ETag can
    tell the two apart here."""
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    key = run_prefix["input_prefix"] + "avatar.png"
    s3.put_object(Bucket=stack["input_bucket"], Key=key, Body=noise_png(2400, 1600, seed=2))
    time.sleep(0.1)
    newest = s3.put_object(Bucket=stack["input_bucket"], Key=key, Body=(FIXTURES / "alpha.png").read_bytes())
    wait_accounted(s3, sqs, run_prefix, timeout=120)
    # Both jobs are done once the queue is empty and nothing is in flight.
    e2e.wait_until(lambda: e2e.queue_counts(sqs, stack["queue_url"]) == (0, 0), 60, what="the queue to drain")
    report = account(s3, sqs, run_prefix)
    manifest = report.manifests[key]
    assert manifest["source"]["etag"].strip('"') == newest["ETag"].strip('"'), (
        f"the manifest describes the older upload ({manifest['source']['width']}x{manifest['source']['height']})")
    assert report.ok, report.problems()


# Keys S3 allows and XML 1.0 cannot carry (control characters, U+FFFE), and percent signs and pluses
# that must not be decoded twice: listed with EncodingType=url, each comes back exact.
ODD = ["bell\x07.jpg", "esc\x1b[31m.jpg", "nl\nx.jpg", "not-a-char\ufffe.jpg", "100%.jpg", "a%2Fb%20c.jpg",
       "plus+and space.jpg"]


def test_backfill_lists_keys_xml_cannot_carry(stack, run_prefix, endpoint, thumbs_bin):
    s3, sqs = client("s3", endpoint), client("sqs", endpoint)
    keys = sorted(run_prefix["input_prefix"] + k for k in ODD)
    for key in keys:
        s3.put_object(Bucket=stack["input_bucket"], Key=key, Body=b"x")
    # A queue of the test's own, so the stack's worker does not take the messages.
    queue = sqs.create_queue(QueueName=f"odd-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    try:
        env = e2e.worker_env(endpoint, stack)
        done = subprocess.run([str(thumbs_bin), "backfill", "--bucket", stack["input_bucket"], "--queue-url", queue,
                               "--prefix", run_prefix["input_prefix"]],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"listed {len(keys)}, skipped 0, enqueued {len(keys)}, failed to enqueue 0"
        bodies = drain(sqs, queue, quiet_for=2)
        assert sorted(k for b in bodies for _, k in e2e.accounting.keys_in_body(b)) == keys
    finally:
        sqs.delete_queue(QueueUrl=queue)
        for key in keys:
            s3.delete_object(Bucket=stack["input_bucket"], Key=key)
