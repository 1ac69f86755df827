#!/usr/bin/env bash
# Empty the thumbs stack's buckets and delete the stack (make destroy ARGS="...").
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF_USAGE'
Usage: scripts/deploy/destroy.sh [--stack-name NAME] [--region REGION] [--yes]

  --stack-name NAME   STACK_NAME   default thumbs
  --region REGION     AWS_REGION   default: AWS_DEFAULT_REGION, then `aws configure get region`
  --yes                            delete the buckets' objects without asking

Deletes every object in the stack's input and output buckets, then the stack. The shared
artifacts bucket (thumbs-artifacts-<region>-<random>) is kept for other stacks.
EOF_USAGE
}

die() { echo "destroy: $*" >&2; exit 1; }

stack=${STACK_NAME:-thumbs}
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
yes=false
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --yes|-y) yes=true; shift ;;
    --stack-name) [ $# -ge 2 ] || die "$1 needs a value"; stack=$2; shift 2 ;;
    --region) [ $# -ge 2 ] || die "$1 needs a value"; region=$2; shift 2 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

# shellcheck source=scripts/deploy/aws-common.sh
. scripts/deploy/aws-common.sh
if [ -z "$region" ]; then
  region=$("${aws[@]}" configure get region 2>/dev/null || true)
  [ -n "$region" ] || die "no region: pass --region or set AWS_REGION"
fi
# aws CLI v1 reads AWS_DEFAULT_REGION but not AWS_REGION.
aws+=(--region "$region")
aws_require_credentials

if ! err=$("${aws[@]}" cloudformation describe-stacks --stack-name "$stack" 2>&1 >/dev/null); then
  grep -q 'does not exist' <<<"$err" || die "$err"
  echo "Stack $stack does not exist in $region: nothing to do."
  exit 0
fi
input_bucket=$(stack_resource "$stack" InputBucket)
output_bucket=$(stack_resource "$stack" OutputBucket)
buckets=("$input_bucket" "$output_bucket")

if ! $yes; then
  [ -t 0 ] || die "refusing to delete data without a terminal to ask on: pass --yes"
  echo "This deletes stack $stack in $region and every object in:"
  for b in "${buckets[@]}"; do
    # shellcheck disable=SC2016 # backticks are a JMESPath literal
    n=$("${aws[@]}" s3api list-objects-v2 --bucket "$b" --max-items 1001 --output text \
      --query 'length(Contents || `[]`)' 2>/dev/null || echo "?")
    [ "$n" != 1001 ] || n="over 1000"
    echo "  s3://$b ($n objects)"
  done
  read -r -p "Type the stack name to confirm: " answer
  [ "$answer" = "$stack" ] || die "not confirmed; nothing deleted"
fi

# Messages still in flight can write renditions after a bucket was emptied, failing the
# bucket's deletion; empty and retry then. The buckets are unversioned, so rm removes all.
for attempt in 1 2 3; do
  for b in "${buckets[@]}"; do
    if "${aws[@]}" s3api head-bucket --bucket "$b" >/dev/null 2>&1; then
      echo "Emptying s3://$b"
      "${aws[@]}" s3 rm --recursive --only-show-errors "s3://$b"
    fi
  done
  echo "Deleting stack $stack (attempt $attempt)"
  "${aws[@]}" cloudformation delete-stack --stack-name "$stack"
  if "${aws[@]}" cloudformation wait stack-delete-complete --stack-name "$stack"; then
    echo "Deleted stack $stack."
    exit 0
  fi
done
die "stack $stack still not deleted; see: aws cloudformation describe-stack-events --stack-name $stack"
