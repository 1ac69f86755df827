# The AWS CLI the deploy scripts call (sourced by deploy.sh and destroy.sh, which define die).
# Sets the array `aws` to the CLI to call, with --endpoint-url when AWS_ENDPOINT_URL points at an emulator.
# shellcheck shell=bash
if [ -x .venv/bin/aws ]; then
  aws=(.venv/bin/aws)
elif command -v aws >/dev/null 2>&1 && aws --version >/dev/null 2>&1; then
  aws=(aws)
elif ${dry_run:-false}; then
  aws=(aws)
else
  scripts/setup/venv.sh >&2
  aws=(.venv/bin/aws)
fi
# aws CLI v1 ignores AWS_ENDPOINT_URL for some services (sqs), so pass it explicitly.
[ -z "${AWS_ENDPOINT_URL:-}" ] || aws+=(--endpoint-url "$AWS_ENDPOINT_URL")

aws_require_credentials() {
  local err
  err=$("${aws[@]}" sts get-caller-identity 2>&1 >/dev/null) \
    || die "no usable AWS credentials (configure a profile, AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): ${err##*$'\n'}"
}

# Physical id of a stack's resource, and a stack parameter's value. Read from the resources
# rather than the Outputs, which moto leaves empty for stacks made through change sets.
stack_resource() { # STACK LOGICAL_ID
  "${aws[@]}" cloudformation list-stack-resources --stack-name "$1" --output text \
    --query "StackResourceSummaries[?LogicalResourceId=='$2'].PhysicalResourceId"
}
stack_parameter() { # STACK KEY
  "${aws[@]}" cloudformation describe-stacks --stack-name "$1" --output text \
    --query "Stacks[0].Parameters[?ParameterKey=='$2'].ParameterValue"
}
