#!/usr/bin/env bash
# make demo: the whole pipeline on this machine. Local S3/SQS (moto), the real `thumbs worker`,
# sample uploads from tests/fixtures (good and bad), then demo-out/index.html showing each
# original beside its thumbnails and the dead-lettered uploads with their reasons.
# Installs what it needs on a fresh Debian 12; safe to run twice (fresh uuid-named resources).
# Env: DEMO_TIMEOUT (seconds to wait for every upload to be accounted for, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=target/demo
out=demo-out
timeout=${DEMO_TIMEOUT:-180}

scripts/apt.sh build-essential pkg-config libvips-dev python3-venv util-linux
scripts/venv.sh
py=.venv/bin/python
if ! command -v cargo >/dev/null; then
  # shellcheck disable=SC1091
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

echo "== building target/release/thumbs"
flock /tmp/rust-build.lock cargo build --release --quiet
bin=$root/target/release/thumbs

mkdir -p "$state"
rm -f "$state/stack.json"
started_moto=false
scripts/local-aws.sh env >/dev/null 2>&1 || started_moto=true
eval "$(scripts/local-aws.sh up)"

worker_pid=""
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [ -f "$state/stack.json" ]; then
    $py scripts/local_stack.py teardown --json "$state/stack.json" || echo "(could not delete the demo stack)" >&2
    rm -f "$state/stack.json"
  fi
  if $started_moto; then scripts/local-aws.sh down; fi
}
trap cleanup EXIT

echo "== creating buckets and queues on $AWS_ENDPOINT_URL"
eval "$($py scripts/local_stack.py setup --visibility-timeout 30 --json "$state/stack.json")"

echo "== starting thumbs worker (log: $state/worker.log)"
INPUT_BUCKETS=$INPUT_BUCKET OUTPUT_BUCKET=$OUTPUT_BUCKET DLQ_URL=$DLQ_URL RUST_LOG=${RUST_LOG:-info} \
  "$bin" worker --queue-url "$QUEUE_URL" --concurrency 2 >"$state/worker.log" 2>&1 &
worker_pid=$!

echo "== uploading samples to s3://$INPUT_BUCKET/uploads/"
put() { # put FIXTURE KEY
  "$py" - "$root/tests/fixtures/$1" "$2" <<'EOF'
import os, sys, boto3
boto3.client("s3").upload_file(sys.argv[1], os.environ["INPUT_BUCKET"], sys.argv[2])
EOF
  echo "   $2"
}
put landscape.jpg "uploads/landscape.jpg"
put orient6.jpg "uploads/phone/summer trip/dogs at the window.jpg"
put alpha.png "uploads/brushes café.png"
put photo.heic "uploads/phone/IMG 0001.heic"
put cmyk.jpg "uploads/print/bridge-cmyk.jpg"
put progressive.jpg "uploads/dragonfly+progressive.jpg"
put grey.jpg "uploads/grey.jpg"
put photo.webp "uploads/meadow.webp"
put truncated.jpg "uploads/bad/truncated.jpg"
put text.jpg "uploads/bad/not an image.jpg"
put bomb.gif "uploads/bad/bomb.gif"
put empty.jpg "uploads/bad/empty.jpg"

echo "== waiting up to ${timeout}s until every upload is rendered or dead-lettered"
accounted=true
if ! $py scripts/accounting.py --endpoint "$AWS_ENDPOINT_URL" --input-bucket "$INPUT_BUCKET" \
  --output-bucket "$OUTPUT_BUCKET" --dlq-url "$DLQ_URL" --wait "$timeout"; then
  accounted=false
  echo "!! not every upload was accounted for within ${timeout}s (see above); worker log: $state/worker.log" >&2
fi

echo "== output bucket"
$py - <<'EOF'
import os, boto3
for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=os.environ["OUTPUT_BUCKET"]):
    for o in page.get("Contents", []):
        print(f"   {o['Size']:>9}  {o['Key']}")
EOF

rm -rf "$out"
page_ok=true
$py scripts/demo_page.py --endpoint "$AWS_ENDPOINT_URL" --input-bucket "$INPUT_BUCKET" \
  --output-bucket "$OUTPUT_BUCKET" --dlq-url "$DLQ_URL" --out "$out" >/dev/null || page_ok=false
echo "== dead-letter queue"
$py - "$out/report.json" <<'EOF'
import json, sys
for key, kinds in json.load(open(sys.argv[1]))["dead_lettered"].items():
    print(f"   {', '.join(kinds):<16} {key}")
EOF

kill -TERM "$worker_pid"
rc=0
wait "$worker_pid" || rc=$?
worker_pid=""
echo "== worker stopped (SIGTERM), exit code $rc"
echo
echo "open $root/$out/index.html"
$accounted && $page_ok && [ "$rc" -eq 0 ]
