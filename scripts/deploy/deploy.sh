#!/usr/bin/env bash
# Deploy the thumbs stack (cloudformation/template.yaml) with the artifacts of `make dist`.
# Run `scripts/deploy/deploy.sh --help` for the flags; every flag also has an environment variable.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF'
Usage: scripts/deploy/deploy.sh [options]      (make deploy ARGS="...")

  --stack-name NAME        STACK_NAME        default thumbs; lower case, it names the buckets
  --region REGION          AWS_REGION        default: AWS_DEFAULT_REGION, then `aws configure get region`
  --function-zip PATH      FUNCTION_ZIP      default dist/function.zip
  --layer-zip PATH         LAYER_ZIP         default dist/layer.zip
  --build                                    run scripts/build/dist.sh first (make dist)
  --artifacts-bucket NAME  ARTIFACTS_BUCKET  default: this account's own thumbs-artifacts-<region>-<random>
                                             bucket, created (with a random name) if it has none
  --memory MB              FUNCTION_MEMORY   FunctionMemorySize
  --timeout SECONDS        FUNCTION_TIMEOUT  FunctionTimeout (10,15,30,60,90,120,180,300,600,900)
  --batch-size N           BATCH_SIZE        BatchSize
  --batch-window SECONDS   BATCH_WINDOW      MaximumBatchingWindowInSeconds
  --max-concurrency N      MAX_CONCURRENCY   MaximumConcurrency
  --log-level LEVEL        LOG_LEVEL         ApplicationLogLevel
  --log-retention DAYS     LOG_RETENTION_DAYS LogRetentionDays
  --alarm-email ADDRESS    ALARM_EMAIL       AlarmEmail (empty: no SNS topic)
  --max-message-age SEC    MAX_MESSAGE_AGE   MaxMessageAgeSeconds
  --input-prefix P/        INPUT_PREFIX      InputPrefix
  --output-prefix P/       OUTPUT_PREFIX     OutputPrefix
  --expire-uploads DAYS    UPLOAD_EXPIRATION_DAYS UploadExpirationDays (0 keeps uploads)
  --presets SPEC           THUMBS_PRESETS    ThumbsPresets
  --formats LIST           THUMBS_FORMATS    ThumbsFormats
  --rules TEXT             THUMBS_RULES      ThumbsRules (rules per folder, separated by ';')
  --max-input-bytes N      MAX_INPUT_BYTES   MaxInputBytes
  --max-input-pixels N     MAX_INPUT_PIXELS  MaxInputPixels
  --cache-control VALUE    CACHE_CONTROL     CacheControl
  --event-bus NAME         EVENT_BUS_NAME    EventBus (default: the default bus; none: no outcome events)
  --no-function                              DeployFunction=false: TESTING ONLY (emulators without Lambda)
  --dry-run                                  print the AWS commands instead of running them
  -h, --help

Parameters not given keep the template default on create and their current value on update.
AWS_ENDPOINT_URL, when set, is passed to every aws call as --endpoint-url (for emulators).
EOF
}

die() { echo "deploy: $*" >&2; exit 1; }

# flag -> template parameter, and flag -> environment variable.
declare -A param_of=(
  [--memory]=FunctionMemorySize [--timeout]=FunctionTimeout [--batch-size]=BatchSize
  [--batch-window]=MaximumBatchingWindowInSeconds [--max-concurrency]=MaximumConcurrency
  [--log-level]=ApplicationLogLevel [--log-retention]=LogRetentionDays [--alarm-email]=AlarmEmail
  [--max-message-age]=MaxMessageAgeSeconds [--input-prefix]=InputPrefix [--output-prefix]=OutputPrefix
  [--expire-uploads]=UploadExpirationDays [--presets]=ThumbsPresets [--formats]=ThumbsFormats
  [--rules]=ThumbsRules
  [--max-input-bytes]=MaxInputBytes [--max-input-pixels]=MaxInputPixels [--cache-control]=CacheControl
  [--event-bus]=EventBus
)
declare -A env_of=(
  [--memory]=FUNCTION_MEMORY [--timeout]=FUNCTION_TIMEOUT [--batch-size]=BATCH_SIZE
  [--batch-window]=BATCH_WINDOW [--max-concurrency]=MAX_CONCURRENCY [--log-level]=LOG_LEVEL
  [--log-retention]=LOG_RETENTION_DAYS [--alarm-email]=ALARM_EMAIL [--max-message-age]=MAX_MESSAGE_AGE
  [--input-prefix]=INPUT_PREFIX [--output-prefix]=OUTPUT_PREFIX [--expire-uploads]=UPLOAD_EXPIRATION_DAYS
  [--presets]=THUMBS_PRESETS [--formats]=THUMBS_FORMATS [--max-input-bytes]=MAX_INPUT_BYTES
  [--max-input-pixels]=MAX_INPUT_PIXELS [--cache-control]=CACHE_CONTROL
  [--rules]=THUMBS_RULES [--event-bus]=EVENT_BUS_NAME
)
declare -A value_of=()
for flag in "${!env_of[@]}"; do
  var=${env_of[$flag]}
  [ -n "${!var+x}" ] && value_of[$flag]=${!var}
done

stack=${STACK_NAME:-thumbs}
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
function_zip=${FUNCTION_ZIP:-dist/function.zip}
layer_zip=${LAYER_ZIP:-dist/layer.zip}
artifacts_bucket=${ARTIFACTS_BUCKET:-}
deploy_function=true build=false dry_run=false

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --build) build=true; shift; continue ;;
    --no-function) deploy_function=false; shift; continue ;;
    --dry-run) dry_run=true; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "$1 needs a value (see --help)"
  case $1 in
    --stack-name) stack=$2 ;;
    --region) region=$2 ;;
    --function-zip) function_zip=$2 ;;
    --layer-zip) layer_zip=$2 ;;
    --artifacts-bucket) artifacts_bucket=$2 ;;
    *) [ -n "${param_of[$1]+x}" ] || die "unknown option $1 (see --help)"; value_of[$1]=$2 ;;
  esac
  shift 2
done

# --- Local checks first: nothing here needs AWS -------------------------------------------
if $build; then
  if $dry_run; then echo "+ scripts/build/dist.sh"; else scripts/build/dist.sh; fi
fi
for zip in "$function_zip" "$layer_zip"; do
  [ -f "$zip" ] || $dry_run || die "missing artifact $zip: run 'make dist' (or pass --build, or --function-zip/--layer-zip)"
done
[[ $stack =~ ^[a-z][a-z0-9-]*[a-z0-9]$ ]] \
  || die "stack name '$stack' must be lower case letters, digits and hyphens (it names the S3 buckets)"

# shellcheck source=scripts/deploy/aws-common.sh
. scripts/deploy/aws-common.sh
if [ -z "$region" ]; then
  region=$("${aws[@]}" configure get region 2>/dev/null || true)
  [ -n "$region" ] || die "no region: pass --region or set AWS_REGION"
fi
# aws CLI v1 reads AWS_DEFAULT_REGION but not AWS_REGION.
aws+=(--region "$region")
$dry_run || aws_require_credentials

if $dry_run; then
  account="<account-id>"
else
  account=$("${aws[@]}" sts get-caller-identity --query Account --output text)
fi
# The longest bucket name, <stack>-output-<12-digit account>-<region>, may have 63 characters.
max_len=$((63 - 8 - 12 - 1 - ${#region}))
[ ${#stack} -le $max_len ] || die "stack name '$stack' is longer than $max_len characters (bucket names in $region)"

run() { # like set -x: the dry-run trace goes to stderr
  if $dry_run; then { printf '+'; printf ' %q' "$@"; echo; } >&2; else "$@"; fi
}

# --- Artifacts bucket: ours, private, encrypted, TLS only -----------------------------------
# The function's code is deployed from this bucket, so it must be this account's. A predictable
# name could be created first by anyone (S3's bucket names are global); so a new bucket gets a
# random name, and the next deploy finds it in ListBuckets, which answers with the caller's own
# buckets only. Every call on it names the owner (--expected-bucket-owner): S3 refuses the call
# if the bucket is someone else's.
own=(--expected-bucket-owner "$account")
own_buckets() { # this account's bucket names, one a line
  "${aws[@]}" s3api list-buckets --query 'Buckets[].Name' --output text | tr '\t' '\n'
}
refuse_foreign() { # BUCKET
  die "artifacts bucket $1 exists but does not belong to account $account (it is not in this account's ListBuckets); refusing to upload code to it: pass --artifacts-bucket with a bucket of yours, or none to make one"
}
new_bucket=false
if $dry_run; then
  artifacts_bucket=${artifacts_bucket:-thumbs-artifacts-$region-<random>}
  new_bucket=true
elif [ -n "$artifacts_bucket" ]; then
  if ! own_buckets | grep -qxF "$artifacts_bucket"; then
    head_err=$("${aws[@]}" s3api head-bucket --bucket "$artifacts_bucket" 2>&1) && refuse_foreign "$artifacts_bucket"
    grep -qE '404|Not Found|NoSuchBucket' <<<"$head_err" || refuse_foreign "$artifacts_bucket"
    new_bucket=true
  fi
else
  # The one of an earlier deploy; the old fixed name only when this account owns it already.
  artifacts_bucket=$(own_buckets | grep -xE "thumbs-artifacts-$region-[0-9a-f]{16}|thumbs-artifacts-$account-$region" \
    | sort | head -n 1 || true)
  if [ -z "$artifacts_bucket" ]; then
    artifacts_bucket=thumbs-artifacts-$region-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    new_bucket=true
  fi
fi
if $new_bucket; then
  echo "Creating artifacts bucket $artifacts_bucket"
  create=(s3api create-bucket --bucket "$artifacts_bucket")
  [ "$region" = us-east-1 ] || create+=(--create-bucket-configuration "LocationConstraint=$region")
  if $dry_run; then
    run "${aws[@]}" "${create[@]}"
  elif ! create_err=$("${aws[@]}" "${create[@]}" 2>&1 >/dev/null); then
    grep -q BucketAlreadyExists <<<"$create_err" && refuse_foreign "$artifacts_bucket"
    die "could not create the artifacts bucket $artifacts_bucket: $create_err"
  fi
  run "${aws[@]}" s3api put-public-access-block --bucket "$artifacts_bucket" "${own[@]}" \
    --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  run "${aws[@]}" s3api put-bucket-encryption --bucket "$artifacts_bucket" "${own[@]}" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
  run "${aws[@]}" s3api put-bucket-ownership-controls --bucket "$artifacts_bucket" "${own[@]}" \
    --ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerEnforced}]'
  partition=aws
  [[ $region == cn-* ]] && partition='aws-cn'
  [[ $region == us-gov-* ]] && partition='aws-us-gov'
  arn="arn:$partition:s3:::$artifacts_bucket"
  run "${aws[@]}" s3api put-bucket-policy --bucket "$artifacts_bucket" "${own[@]}" --policy \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyInsecureTransport\",\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":[\"$arn\",\"$arn/*\"],\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}"
fi

# Content-addressed keys: an unchanged zip is neither uploaded again nor a stack change.
upload() { # ZIP NAME: sets $key (not echoed: a failure inside $(...) would not stop the script)
  local hash
  if [ -f "$1" ]; then hash=$(sha256sum "$1" | cut -d' ' -f1); else hash="<sha256 of $1>"; fi
  key="thumbs/$2-$hash.zip"
  if $dry_run || ! "${aws[@]}" s3api head-object --bucket "$artifacts_bucket" "${own[@]}" --key "$key" >/dev/null 2>&1; then
    echo "Uploading $1"
    run "${aws[@]}" s3api put-object --bucket "$artifacts_bucket" "${own[@]}" --key "$key" --body "$1" >/dev/null
  fi
}
upload "$function_zip" function
function_key=$key
upload "$layer_zip" layer
layer_key=$key

overrides=(ArtifactsBucket="$artifacts_bucket" FunctionCodeKey="$function_key" LayerCodeKey="$layer_key"
  DeployFunction="$deploy_function")
for flag in "${!value_of[@]}"; do overrides+=("${param_of[$flag]}=${value_of[$flag]}"); done

echo "Deploying stack $stack in $region"
run "${aws[@]}" cloudformation deploy --stack-name "$stack" --template-file cloudformation/template.yaml \
  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --tags project=thumbs \
  --parameter-overrides "${overrides[@]}"

if $dry_run; then
  run "${aws[@]}" cloudformation describe-stacks --stack-name "$stack"
  exit 0
fi
"${aws[@]}" cloudformation describe-stacks --stack-name "$stack" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table
input_bucket=$(stack_resource "$stack" InputBucket)
input_prefix=$(stack_parameter "$stack" InputPrefix)
output_bucket=$(stack_resource "$stack" OutputBucket)
output_prefix=$(stack_parameter "$stack" OutputPrefix)
upload_uri="s3://$input_bucket/$input_prefix"
output_uri="s3://$output_bucket/$output_prefix"
endpoint=""
[ -z "${AWS_ENDPOINT_URL:-}" ] || endpoint=" --endpoint-url $AWS_ENDPOINT_URL"
cat <<EOF

Try it (renditions appear under ${output_uri}<key below the input prefix>/):
  aws$endpoint --region $region s3 cp photo.jpg ${upload_uri}photo.jpg
  aws$endpoint --region $region s3 ls --recursive ${output_uri}photo.jpg/
EOF
