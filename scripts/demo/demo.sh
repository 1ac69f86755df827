#!/usr/bin/env bash
# make demo: the whole pipeline on this machine. Local S3/SQS (moto), the real `thumbs worker`:
#  1. a few originals are in the bucket before its notification exists; `thumbs backfill` enqueues them;
#  2. sample uploads from tests/fixtures (good and bad) arrive by S3 events; the worker runs with a small
#     MAX_INPUT_BYTES, so the largest one is dead-lettered as too_large;
#  3. one rendered original is deleted: with SYNC_DELETES=true and ObjectRemoved in the notification
#     (moto sends those events), the worker removes its renditions and manifest;
#  4. the cause is fixed (the worker restarts with the default limit) and `thumbs dlq redrive
#     --kind too_large` moves that dead letter back, so it renders; the other kinds stay in the DLQ.
# Two rules per folder (THUMBS_RULES, issue 22): uploads/avatars/ get 64/128 px squares, uploads/products/
# 400/800 px in WebP and JPEG; everything else the default presets.
# Then demo-out/index.html shows each outcome (backfilled, rendered, redriven, deleted, dead-lettered
# with its reason) and each ThumbHash placeholder as a picture, and beside each upload the EventBridge
# events (Thumbnails Ready / Upload Refused / Thumbnails Deleted) an example rule delivered to an SQS queue.
# Installs what it needs on a fresh Debian 12; safe to run twice (fresh uuid-named resources).
# Env: DEMO_TIMEOUT (seconds to wait for each step's uploads to be accounted for, default 180);
#      THUMBS_BIN (use this binary instead of building target/release/thumbs).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
state=target/demo
out=demo-out
timeout=${DEMO_TIMEOUT:-180}

scripts/setup/apt.sh build-essential pkg-config libvips-dev python3-venv util-linux
scripts/setup/venv.sh
py=.venv/bin/python
if ! command -v cargo >/dev/null; then
  # shellcheck disable=SC1091
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

bin=${THUMBS_BIN:-}
if [ -z "$bin" ]; then
  echo "== building target/release/thumbs"
  flock /tmp/rust-build.lock cargo build --release --quiet
  bin=$root/target/release/thumbs
fi

for cmd in backfill dlq; do
  "$bin" "$cmd" --help >/dev/null 2>&1 ||
    { echo "$bin has no \`$cmd\` command (issue 12; branch day2): the demo needs it" >&2; exit 1; }
done

mkdir -p "$state"
rm -f "$state/stack.json"
started_moto=false
scripts/local-aws/local-aws.sh env >/dev/null 2>&1 || started_moto=true
eval "$(scripts/local-aws/local-aws.sh up)"

worker_pid=""
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [ -f "$state/stack.json" ]; then
    $py scripts/local-aws/local_stack.py teardown --json "$state/stack.json" || echo "(could not delete the demo stack)" >&2
    rm -f "$state/stack.json"
  fi
  if $started_moto; then scripts/local-aws/local-aws.sh down; fi
}
trap cleanup EXIT

echo "== creating buckets and queues on $AWS_ENDPOINT_URL (no bucket notification yet)"
eval "$($py scripts/local-aws/local_stack.py setup --no-notification --visibility-timeout 30 --json "$state/stack.json")"
page_args=(--endpoint "$AWS_ENDPOINT_URL" --input-bucket "$INPUT_BUCKET" --output-bucket "$OUTPUT_BUCKET" --dlq-url "$DLQ_URL")
echo "== outcome events: the README's example rule (cloudformation/examples/refused-to-sqs.yaml), every detail type -> an SQS queue"
# Exports EVENT_BUS and EVENT_SOURCE (the worker publishes with them, as the template's function does) and
# EVENTS_QUEUE_URL, which the page reads (demo_page.py leaves it alone for --snapshot).
eval "$($py scripts/local-aws/local_stack.py subscribe --json "$state/stack.json")"
page_args+=(--events-queue "$EVENTS_QUEUE_URL")
transcripts=()
run() { # run NAME CMD ARGS...: run a command, show its output and keep it (with its arguments) for the page
  local file=$state/$1.txt
  shift
  echo "\$ thumbs ${*:2}" >"$file"
  "$@" 2>&1 | tee -a "$file"
  transcripts+=(--transcript "$file")
}
put() { # put FIXTURE KEY
  "$py" - "$root/tests/fixtures/$1" "$2" <<'EOF'
import os, sys, boto3
boto3.client("s3").upload_file(sys.argv[1], os.environ["INPUT_BUCKET"], sys.argv[2])
EOF
  echo "   $2"
}
accounted=true
account() { # wait until every upload is rendered or dead-lettered
  echo "== waiting up to ${timeout}s until every upload is rendered or dead-lettered"
  if ! $py scripts/local-aws/accounting.py --endpoint "$AWS_ENDPOINT_URL" --input-bucket "$INPUT_BUCKET" \
    --output-bucket "$OUTPUT_BUCKET" --dlq-url "$DLQ_URL" --wait "$timeout"; then
    accounted=false
    echo "!! not every upload was accounted for within ${timeout}s (see above); worker log: $state/worker.log" >&2
  fi
}
# Rules per folder: each card on the page names its upload's rule.
rules="avatars=uploads/avatars/ presets=s64=64x64:cover,s128=128x128:cover; products=uploads/products/ presets=w400=400,w800=800 formats=webp,jpeg"
start_worker() { # start_worker [VAR=VALUE...]
  echo "== starting thumbs worker with ${*:-the default limits}, SYNC_DELETES=true (log: $state/worker.log)"
  env THUMBS_RULES="$rules" "$@" INPUT_BUCKETS="$INPUT_BUCKET" OUTPUT_BUCKET="$OUTPUT_BUCKET" DLQ_URL="$DLQ_URL" SYNC_DELETES=true \
    RUST_LOG="${RUST_LOG:-info}" "$bin" worker --queue-url "$QUEUE_URL" --concurrency 2 >>"$state/worker.log" 2>&1 &
  worker_pid=$!
}
worker_ok=true
stop_worker() {
  kill -TERM "$worker_pid"
  local rc=0
  wait "$worker_pid" || rc=$?
  worker_pid=""
  echo "== worker stopped (SIGTERM), exit code $rc"
  [ "$rc" -eq 0 ] || worker_ok=false
}
: >"$state/worker.log"

echo "== step 1: originals in s3://$INPUT_BUCKET/uploads/before/ before the bucket notification existed"
backfilled=("uploads/before/landscape.jpg" "uploads/before/brushes.png" "uploads/before/grey.jpg")
put landscape.jpg "${backfilled[0]}"
put alpha.png "${backfilled[1]}"
put grey.jpg "${backfilled[2]}"
echo "== applying the bucket notification (ObjectCreated and ObjectRemoved, as the template's SyncDeletes does)"
$py scripts/local-aws/local_stack.py notify --removals --json "$state/stack.json"
# 200,000 bytes: every sample fits but the CMYK JPEG (243 KB), which is dead-lettered as too_large.
start_worker MAX_INPUT_BYTES=200000
run backfill "$bin" backfill --bucket "$INPUT_BUCKET" --queue-url "$QUEUE_URL"

echo "== step 2: new uploads, announced by S3 events"
put landscape.jpg "uploads/landscape.jpg"
put orient6.jpg "uploads/phone/summer trip/dogs at the window.jpg"
put alpha.png "uploads/brushes café.png"
put photo.heic "uploads/phone/IMG 0001.heic"
put cmyk.jpg "uploads/print/bridge-cmyk.jpg"
put progressive.jpg "uploads/dragonfly+progressive.jpg"
put grey.jpg "uploads/grey.jpg"
put alpha.png "uploads/avatars/brushes.png"
put landscape.jpg "uploads/products/landscape.jpg"
put photo.webp "uploads/meadow.webp"
put truncated.jpg "uploads/bad/truncated.jpg"
put text.jpg "uploads/bad/not an image.jpg"
put bomb.gif "uploads/bad/bomb.gif"
put empty.jpg "uploads/bad/empty.jpg"
account
# What was rendered and dead-lettered so far: the page tells the redriven uploads by it.
$py scripts/demo/demo_page.py "${page_args[@]}" --snapshot "$state/before.json" >/dev/null
run dlq "$bin" dlq --dlq-url "$DLQ_URL"

deleted="uploads/meadow.webp"
echo "== step 3: deleting s3://$INPUT_BUCKET/$deleted (its ObjectRemoved event makes the worker delete its outputs)"
$py - "$deleted" "$timeout" <<'EOF'
import json, os, sys, time, boto3
s3, key, timeout = boto3.client("s3"), sys.argv[1], float(sys.argv[2])
s3.delete_object(Bucket=os.environ["INPUT_BUCKET"], Key=key)
manifest = "thumbnails/" + key[len("uploads/"):] + "/manifest.json"


def tombstone():
    # A deletion replaces the manifest with a tombstone (never deletes it: see README's state table).
    body = s3.get_object(Bucket=os.environ["OUTPUT_BUCKET"], Key=manifest)["Body"].read()
    return "deleted" in json.loads(body)


deadline = time.monotonic() + timeout
while not tombstone():
    if time.monotonic() > deadline:
        sys.exit(f"!! {manifest} still describes the deleted upload after {timeout:.0f}s")
    time.sleep(0.5)
print(f"   {manifest} is a tombstone now; the page checks the renditions are gone")
EOF

echo "== step 4: the cause fixed (the worker restarted with the default MAX_INPUT_BYTES), the too_large dead letters redriven"
stop_worker
start_worker
run redrive "$bin" dlq redrive --kind too_large --dlq-url "$DLQ_URL" --queue-url "$QUEUE_URL"
account

echo "== output bucket"
$py - <<'EOF'
import os, boto3
for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=os.environ["OUTPUT_BUCKET"]):
    for o in page.get("Contents", []):
        print(f"   {o['Size']:>9}  {o['Key']}")
EOF

rm -rf "$out"
page_ok=true
outcome_args=(--deleted "$deleted")
for k in "${backfilled[@]}"; do outcome_args+=(--backfilled "$k"); done
$py scripts/demo/demo_page.py "${page_args[@]}" --out "$out" --before "$state/before.json" "${outcome_args[@]}" \
  "${transcripts[@]}" >/dev/null || page_ok=false
echo "== outcomes"
$py - "$out/report.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
for key, outcome in report["outcomes"].items():
    print(f"   {outcome:<14} {', '.join(report['dead_lettered'].get(key, [])):<18} {key}")
for p in report["problems"]:
    print(f"!! {p}")
EOF

stop_worker
echo
echo "open $root/$out/index.html"
$accounted && $page_ok && $worker_ok
