"""Rules per folder (issue 22): THUMBS_RULES gives each kind of upload its own presets, formats
and quality; changing one rule makes `backfill --only-missing` send only that rule's keys again."""
import subprocess

from conftest import FIXTURES, account, queue_counts, upload, wait_accounted, wait_until, worker_env
from test_backfill import _OUTCOME, _backfill

AVATARS = "avatars=uploads/avatars/ presets=s64=64x64:cover,s128=128x128:cover"
PRODUCTS = "products=uploads/products/ presets=w400=400x400,w800=800x800 formats=avif,webp,jpeg"
# The product rule after the change: a 1,000 px size instead of 800.
PRODUCTS_CHANGED = "products=uploads/products/ presets=w400=400x400,w1000=1000x1000 formats=avif,webp,jpeg"
DOCS = "docs=uploads/docs/ presets=page=1000 formats=jpeg quality=jpeg=70"

KEYS = {
    "avatars": ["uploads/avatars/ann.jpg", "uploads/avatars/bo b.jpg"],
    "products": ["uploads/products/shoe.jpg", "uploads/products/hat+1.jpg"],
    "docs": ["uploads/docs/scan.jpg"],
    "default": ["uploads/misc/photo.jpg"],
}


def _made(manifest):
    return manifest["rule"], sorted(f"{r['preset']}.{r['format']} {r['width']}x{r['height']}"
                                    for r in manifest["renditions"])


def test_three_rules_and_a_changed_rule_renders_only_its_keys_again(aws, endpoint, make_stack, start_worker,
                                                                     thumbs_bin):
    s3, sqs = aws
    res = make_stack(visibility_timeout=30)
    rules = f"{AVATARS}; {PRODUCTS}\n{DOCS}"
    worker = start_worker(res, concurrency=2, THUMBS_RULES=rules)
    photo = (FIXTURES / "landscape.jpg").read_bytes()  # 1200 x 800
    for keys in KEYS.values():
        for key in keys:
            upload(s3, res, key, photo)
    report = wait_accounted(s3, sqs, res, timeout=180)
    assert report.ok, report.problems()
    expected = {
        "avatars": ["s128.webp 128x128", "s64.webp 64x64"],
        "products": sorted(f"{p}.{f} {s}" for p, s in [("w400", "400x267"), ("w800", "800x533")]
                           for f in ["avif", "webp", "jpeg"]),
        "docs": ["page.jpeg 1000x667"],
        "default": ["large.webp 1080x720", "small.webp 480x320", "thumb.webp 150x150"],
    }
    for rule, keys in KEYS.items():
        for key in keys:
            assert _made(report.manifests[key]) == (rule, expected[rule]), key
    before = {key: m["settings"] for key, m in report.manifests.items()}
    wait_until(lambda: queue_counts(sqs, res["queue_url"]) == (0, 0), 30, what="the queue to drain")
    worker.stop()

    # The product rule changes: only its two keys are missing; the others are skipped.
    changed = f"{AVATARS}; {PRODUCTS_CHANGED}\n{DOCS}"
    env = worker_env(endpoint, res, THUMBS_RULES=changed)
    done = subprocess.run(_backfill(thumbs_bin, res, "--only-missing"), env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "listed 6, skipped 4, enqueued 2, failed to enqueue 0"
    worker = start_worker(res, concurrency=2, THUMBS_RULES=changed)
    products = KEYS["products"]

    def products_rerendered():
        manifests = account(s3, sqs, res).manifests
        return all(any(r["preset"] == "w1000" for r in manifests[k]["renditions"]) for k in products)

    wait_until(products_rerendered, 120, what="the product keys to render with the changed rule")
    wait_until(lambda: queue_counts(sqs, res["queue_url"]) == (0, 0), 30, what="the queue to drain")
    report = account(s3, sqs, res)
    assert report.ok, report.problems()
    for key in products:
        rule, made = _made(report.manifests[key])
        assert rule == "products" and "w1000.avif 1000x667" in made and not any("w800" in m for m in made), made
        assert report.manifests[key]["settings"] != before[key]
    for key in [k for rule, keys in KEYS.items() if rule != "products" for k in keys]:
        assert report.manifests[key]["settings"] == before[key], key
    # The old w800 renditions went with the manifest they belonged to.
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=res["output_bucket"]).get("Contents", [])]
    assert not [k for k in left if "/w800." in k], left
    rendered = [m.group(3) for m in map(_OUTCOME.search, worker.log().splitlines()) if m and m.group(1) == "rendered"]
    assert sorted(rendered) == sorted(products), rendered


def test_bad_rules_stop_the_worker_at_start_naming_the_rule(aws, endpoint, make_stack, thumbs_bin):
    s3, sqs = aws
    res = make_stack()
    cases = {
        f"{PRODUCTS}; shoes=uploads/products/shoes/ presets=x=10":
            "rule `shoes` (prefix `uploads/products/shoes/`) can never match: rule `products` comes first",
        "old=photos/ presets=x=10": "rule `old`: prefix `photos/` is outside INPUT_PREFIX `uploads/`",
        "a=uploads/a/ formats=webp": "rule `a`: no presets",
    }
    for rules, reason in cases.items():
        done = subprocess.run([str(thumbs_bin), "worker", "--queue-url", res["queue_url"]],
                              env=worker_env(endpoint, res, THUMBS_RULES=rules), capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 1, done.stderr
        assert f"thumbs: THUMBS_RULES: {reason}" in done.stderr, done.stderr
