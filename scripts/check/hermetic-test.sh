#!/usr/bin/env bash
# The arm64 zips run as Lambda runs them, in a root holding nothing else (a step of `make test`).
# Unpack dist/layer.zip at /opt and dist/function.zip at /var/task
# in a bubblewrap root that holds nothing else (tmpfs /tmp, /proc, /dev; no host /usr or /lib),
# run the aarch64 bootstrap under qemu-aarch64-static (called explicitly: binfmt_misc is not
# mounted here) with Lambda's environment, a local Runtime API and S3/SQS on a moto server of its
# own, and check: ELF interpreter and RPATH, no /nix/store path, renditions in the output bucket
# for JPEG/PNG/HEIC uploads, the corrupt upload reported (DLQ or batch item failure), and no file
# opened outside the two roots (qemu's syscall trace). AL2023's /lib64 and /usr/lib64 come first
# in Lambda's LD_LIBRARY_PATH, so the root carries decoys there under every soname of the layer:
# loading one of them fails the run.
# Usage: scripts/check/hermetic-test.sh [--dist DIR]   (default: run scripts/build/dist.sh, build twice and
#        compare the zips byte for byte, then test dist/)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
lambda_ld_path=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib

if [ "${1:-}" = "--sandbox" ]; then
  # Internal: run by hermetic_lambda.py, which adds AWS_LAMBDA_RUNTIME_API, INPUT_BUCKETS, OUTPUT_BUCKET, DLQ_URL.
  # Started as `bootstrap` the binary serves the Runtime API; HERMETIC_ARGV0 picks another name.
  # VIPS_NOVECTOR: orc writes its SIMD code through a second (RW) mapping of the code it runs;
  # qemu-user does not see those writes and runs stale code (JPEG/HEIC shrink crashed here).
  # Only the vector path of libvips goes untested under emulation, not the artifacts.
  # -cpu neoverse-n1: Graviton2's core, which Lambda arm64 runs on. qemu's default (max) has
  # pointer authentication, which it emulates slowly, and Debian 13's libraries (the layer's)
  # are built with branch protection: 4-5x slower there; on neoverse-n1 those are no-ops.
  root=$2 trace=$3 log=$4
  shift 4
  exec bwrap --die-with-parent --unshare-pid --unshare-ipc --unshare-uts \
    --ro-bind "$root/opt" /opt --ro-bind "$root/var/task" /var/task \
    --ro-bind "$root/decoy" /lib64 --ro-bind "$root/decoy" /usr/lib64 \
    --tmpfs /tmp --proc /proc --dev /dev \
    --ro-bind "$(command -v qemu-aarch64-static)" /.hermetic/qemu --bind "$trace" /.hermetic/trace \
    --chdir /var/task --clearenv \
    --setenv PATH /usr/local/bin:/usr/bin/:/bin:/opt/bin --setenv LD_LIBRARY_PATH "$lambda_ld_path" \
    --setenv LAMBDA_TASK_ROOT /var/task --setenv LAMBDA_RUNTIME_DIR /var/runtime \
    --setenv _HANDLER bootstrap --setenv TZ :UTC --setenv LANG en_US.UTF-8 \
    --setenv AWS_LAMBDA_FUNCTION_NAME thumbs --setenv AWS_LAMBDA_FUNCTION_VERSION "\$LATEST" \
    --setenv AWS_LAMBDA_FUNCTION_MEMORY_SIZE 1024 \
    --setenv AWS_LAMBDA_RUNTIME_API "${AWS_LAMBDA_RUNTIME_API:-127.0.0.1:9}" \
    --setenv AWS_REGION us-east-1 --setenv AWS_DEFAULT_REGION us-east-1 \
    --setenv AWS_ACCESS_KEY_ID test --setenv AWS_SECRET_ACCESS_KEY test --setenv AWS_SESSION_TOKEN test \
    --setenv AWS_ENDPOINT_URL "${AWS_ENDPOINT_URL:-http://127.0.0.1:9}" \
    --setenv INPUT_BUCKETS "${INPUT_BUCKETS:-unset}" --setenv OUTPUT_BUCKET "${OUTPUT_BUCKET:-unset}" --setenv DLQ_URL "${DLQ_URL:-}" \
    --setenv THUMBS_PRESETS thumb=150x150:cover,small=480,large=1080 --setenv THUMBS_FORMATS webp \
    --setenv VIPSHOME /opt --setenv LIBHEIF_PLUGIN_PATH /opt/lib/libheif/plugins \
    --setenv RUST_LOG "${RUST_LOG:-info}" \
    --setenv VIPS_NOVECTOR 1 \
    /.hermetic/qemu -cpu neoverse-n1 -0 "${HERMETIC_ARGV0:-/var/task/bootstrap}" -d strace -D "/.hermetic/trace/$log.strace" \
    /var/task/bootstrap "$@"
fi

scripts/setup/apt.sh bubblewrap qemu-user-static binutils unzip patchelf
scripts/setup/venv.sh >&2
work=$(mktemp -d /tmp/hermetic.XXXXXX)
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

dist=""
if [ "${1:-}" = "--dist" ]; then
  dist=$(realpath "$2")
else
  start=$(date +%s)
  scripts/build/dist.sh
  echo "hermetic: make dist took $(($(date +%s) - start)) s"
  dist=$repo/dist
  # Reproducible: a second run from the same commit (same sysroot, Rust build cached by cargo)
  # rebuilds the layer tree and both zips; they must be byte-identical.
  DIST_DIR="$work/dist2" scripts/build/dist.sh 2>/dev/null
  for z in function.zip layer.zip; do
    cmp "$dist/$z" "$work/dist2/$z" || { echo "hermetic: FAIL $z differs between two runs" >&2; exit 1; }
  done
  echo "hermetic: two dist runs gave byte-identical function.zip and layer.zip"
fi

root=$work/root
mkdir -p "$root/opt" "$root/var/task" "$root/decoy" "$work/trace"
unzip -q "$dist/layer.zip" -d "$root/opt"
unzip -q "$dist/function.zip" -d "$root/var/task"
for lib in "$root"/opt/lib/*; do
  echo "decoy: a library from the wrong place was loaded" >"$root/decoy/$(basename "$lib")"
done
echo "hermetic: layer $(du -sb "$root/opt" | cut -f1) bytes unzipped, $(stat -c %s "$dist/layer.zip") zipped;" \
  "function $(du -sb "$root/var/task" | cut -f1) unzipped, $(stat -c %s "$dist/function.zip") zipped"

fail() { echo "hermetic: FAIL $*" >&2; exit 1; }
boot=$root/var/task/bootstrap
[ -x "$boot" ] || fail "function.zip has no executable bootstrap"
readelf -h "$boot" | grep -q 'Machine: *AArch64' || fail "bootstrap is not aarch64"
readelf -l "$boot" | grep -q 'interpreter: /opt/lib/ld-linux-aarch64.so.1\]' || fail "bootstrap interpreter"
readelf -d "$boot" | grep -q '(RPATH) .*\[/opt/lib\]' || fail "bootstrap has no RPATH /opt/lib"
if readelf -d "$boot" | grep -q RUNPATH; then fail "bootstrap has a RUNPATH"; fi
if grep -rl /nix/store "$root/opt" "$root/var/task"; then fail "a /nix/store path remains (files above)"; fi
echo "hermetic: bootstrap is aarch64, interpreter /opt/lib/ld-linux-aarch64.so.1, RPATH /opt/lib, no RUNPATH; no /nix/store"

# Smoke test first: the loader, glibc and libvips load from the layer alone.
HERMETIC_ARGV0=thumbs "$0" --sandbox "$root" "$work/trace" help --help >"$work/help.txt" 2>&1 || {
  cat "$work/help.txt" >&2
  fail "bootstrap --help did not run in the sandbox"
}
echo "hermetic: bootstrap --help ran in the sandbox"
# Negative control: with RUNPATH instead of RPATH, Lambda's LD_LIBRARY_PATH sends the loader to
# the decoys first. If this starts, the decoys prove nothing.
cp -a "$root" "$work/runpath"
patchelf --set-rpath /opt/lib "$work/runpath/var/task/bootstrap"
if HERMETIC_ARGV0=thumbs "$0" --sandbox "$work/runpath" "$work" runpath --help >"$work/runpath.txt" 2>&1; then
  fail "a RUNPATH bootstrap started despite the /lib64 decoys"
fi
grep -q '/lib64/' "$work/runpath.txt" || fail "RUNPATH control failed for another reason: $(head -c 300 "$work/runpath.txt")"
rm -rf "$work/runpath"
echo "hermetic: control: the same bootstrap with RUNPATH loads a /lib64 decoy and fails, as expected"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
python3 - "$port" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1).read()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("hermetic: moto did not come up")
EOF
AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 .venv/bin/python scripts/check/hermetic_lambda.py --fixtures tests/fixtures \
  -- "$0" --sandbox "$root" "$work/trace" lambda

# Every path the guest asked for, from qemu's syscall trace (smoke test and Lambda run).
# Return values are not used: with several guest threads qemu prints a call and its "= N" apart,
# and another thread's result can land after it. Whether an open outside the roots could have
# succeeded is decided by what the sandbox holds there instead: only the decoys and qemu's own
# /.hermetic, so any other path outside the roots cannot exist inside.
python3 - "$root/decoy" "$work"/trace/*.strace <<'EOF'
import os, re, sys
calls = re.compile(r'\b(open|openat|openat2|execve|stat|lstat|newfstatat|statx|access|faccessat|faccessat2|readlink|readlinkat)\((?:AT_FDCWD,|\d+,)?"([^"]*)"')
shared_object = re.compile(r"/[^/]+\.so(\.[0-9]+)*$")
inside = ("/opt/", "/var/task/", "/tmp/", "/proc/", "/dev/")
decoys = sys.argv[1]
def in_sandbox(path):
    for mount in ("/lib64/", "/usr/lib64/"):
        if path.startswith(mount):
            return os.path.exists(os.path.join(decoys, path[len(mount):]))
    return path.startswith("/.hermetic/")
reached_outside, tried_outside, libs_outside, total = set(), set(), set(), 0
lines = (line for name in sys.argv[2:] for line in open(name, errors="replace"))
for line in lines:
    for call, path in calls.findall(line):
        total += 1
        if not path.startswith("/") or path.startswith(inside) or path in ("/opt", "/var/task", "/tmp"):
            continue
        tried_outside.add(path)
        if shared_object.search(path):
            libs_outside.add(path)
        if in_sandbox(path):
            reached_outside.add(path)
print(f"hermetic: {total} path syscalls traced; outside /opt, /var/task, /tmp, /proc, /dev: "
      f"{len(reached_outside)} that exist in the sandbox, {len(tried_outside)} looked up (absent) "
      f"{sorted(tried_outside - reached_outside)}")
if reached_outside or libs_outside:
    sys.exit(f"hermetic: FAIL reached outside the roots {sorted(reached_outside)}, "
             f"libraries looked up outside /opt {sorted(libs_outside)}")
EOF
echo "hermetic: all checks passed"
