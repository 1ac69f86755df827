"""Overwrites, versioned buckets and duplicate deliveries: the final state always describes the
newest upload, and nothing is rendered twice for nothing (renders are counted from the worker's
log, one `outcome="rendered"` line each)."""
import json
import struct
import time
import zlib

from conftest import FIXTURES, upload, wait_accounted, wait_until


def renders(worker):
    return worker.log().count('outcome="rendered"')


def manifest(s3, res, key):
    rel = key[len("uploads/"):]
    body = s3.get_object(Bucket=res["output_bucket"], Key=f"thumbnails/{rel}/manifest.json")["Body"].read()
    return json.loads(body)


def has_manifest(s3, res, key):
    rel = key[len("uploads/"):]
    listed = s3.list_objects_v2(Bucket=res["output_bucket"], Prefix=f"thumbnails/{rel}/manifest.json")
    return "Contents" in listed


def big_png(width=6000, height=4000):
    """A large greyscale PNG (slow to decode, quick to make): the old upload that finishes last."""
    row = bytes([0]) + bytes(range(256)) * (width // 256) + bytes(width % 256)
    raw = zlib.compress(row * height, 1)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_quick_overwrite_ends_with_the_newest_upload(aws, make_stack, start_worker):
    """The same key uploaded twice 0.12 s apart, worker running: a large image, then a small one
    that renders faster. The large one's job finishes last and must not replace the manifest."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    start_worker(res, concurrency=2)
    key = "uploads/race/avatar.png"
    old = big_png()
    for attempt in range(3):
        upload(s3, res, key, old)
        time.sleep(0.12)
        new = s3.put_object(Bucket=res["input_bucket"], Key=key, Body=(FIXTURES / "grey.jpg").read_bytes())
        etag = new["ETag"].strip('"')
        wait_until(lambda: has_manifest(s3, res, key) and manifest(s3, res, key)["source"]["etag"] == etag,
                   60, what="the newest upload's manifest")
        # let the older event settle too, then look again: it must not have replaced it
        wait_until(lambda: sum(sqs_counts(sqs, res)) == 0, 60, what="the queue to drain")
        time.sleep(1)
        assert manifest(s3, res, key)["source"]["etag"] == etag, f"attempt {attempt}: stale manifest"


def sqs_counts(sqs, res):
    a = sqs.get_queue_attributes(QueueUrl=res["queue_url"], AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_versioned_bucket_renders_the_current_version_once(aws, make_stack, start_worker):
    """Versioning on; an upload overwritten before the worker runs: the older version's event is
    acknowledged as superseded, the newer one is rendered, and the manifest names its version."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    s3.put_bucket_versioning(Bucket=res["input_bucket"], VersioningConfiguration={"Status": "Enabled"})
    key = "uploads/versioned/photo.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    new = s3.put_object(Bucket=res["input_bucket"], Key=key, Body=(FIXTURES / "grey.jpg").read_bytes())
    worker = start_worker(res, concurrency=2)
    wait_until(lambda: has_manifest(s3, res, key), 60, what="a manifest")
    wait_until(lambda: sum(sqs_counts(sqs, res)) == 0, 60, what="the queue to drain")
    m = manifest(s3, res, key)
    assert m["source"]["etag"] == new["ETag"].strip('"')
    assert m["source"]["version_id"] == new["VersionId"]
    assert renders(worker) == 1, worker.log()
    assert "superseded" in worker.log()
    report = wait_accounted(s3, sqs, res, timeout=30)
    assert report.ok, report.problems()


def test_duplicate_deliveries_cost_no_render(aws, make_stack, start_worker):
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    worker = start_worker(res, concurrency=2)
    key = "uploads/dup/a.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    wait_until(lambda: has_manifest(s3, res, key), 60, what="a manifest")
    wait_until(lambda: sum(sqs_counts(sqs, res)) == 0, 60, what="the queue to drain")
    # S3 delivers at least once: send the same notification three more times.
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": res["input_bucket"]},
              "object": {"key": key, "eTag": manifest(s3, res, key)["source"]["etag"]}}}
    for _ in range(3):
        sqs.send_message(QueueUrl=res["queue_url"], MessageBody=json.dumps({"Records": [record]}))
    wait_until(lambda: worker.log().count('reason="unchanged"') >= 3, 60, what="three skipped deliveries")
    assert renders(worker) == 1


def test_sync_deletes_follow_deletions_but_never_a_late_one(aws, make_stack, start_worker):
    """SYNC_DELETES=true. A deletion event that arrives after the key was uploaded again must
    leave the new upload's thumbnails alone; a deletion of what is rendered removes them all."""
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    worker = start_worker(res, SYNC_DELETES="true")
    key = "uploads/deletes/photo.jpg"
    upload(s3, res, key, (FIXTURES / "landscape.jpg").read_bytes())
    wait_until(lambda: has_manifest(s3, res, key), 60, what="a manifest")
    outputs = lambda: sorted(o["Key"] for o in s3.list_objects_v2(  # noqa: E731
        Bucket=res["output_bucket"], Prefix="thumbnails/deletes/").get("Contents", []))
    rendered = outputs()
    assert len(rendered) == 4
    removal = json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {
        "bucket": {"name": res["input_bucket"]}, "object": {"key": key, "sequencer": "0"}}}]})
    # A late deletion (from before this upload): the key holds an object, so nothing goes.
    sqs.send_message(QueueUrl=res["queue_url"], MessageBody=removal)
    wait_until(lambda: "live_object_kept" in worker.log(), 60, what="the late deletion to be handled")
    assert outputs() == rendered
    # The original really deleted: its thumbnails follow; a tombstone replaces the manifest.
    s3.delete_object(Bucket=res["input_bucket"], Key=key)
    sqs.send_message(QueueUrl=res["queue_url"], MessageBody=removal)
    tombstone = [k for k in rendered if k.endswith("/manifest.json")]
    wait_until(lambda: outputs() == tombstone, 60, what="the outputs to be deleted")
    assert "outputs_deleted" in worker.log()
