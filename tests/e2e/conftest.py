"""Fixtures for the process-level end-to-end tests: moto, uuid-named stacks, the real binary.

The endpoint is AWS_ENDPOINT_URL when it answers (moto, or LocalStack from scripts/local-aws/localstack.sh:
scripts/bench/backfill-bench.sh runs there), else a moto server started with scripts/local-aws/local-aws.sh (and
stopped again at the end if this session started it).
The binary is THUMBS_BIN (default target/release/thumbs); tests that need it fail, not skip,
when it is missing, so a CI run without the binary is visibly red.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "scripts" / "local-aws"))

import accounting  # noqa: E402
import local_stack  # noqa: E402

CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
         "AWS_DEFAULT_REGION": "us-east-1"}


def _answers(url):
    for probe in ("/moto-api/", "/_localstack/health"):
        try:
            urllib.request.urlopen(url.rstrip("/") + probe, timeout=2).read()
            return True
        except OSError:
            pass
    return False


def emulator_endpoint(script, answers):
    """Session fixture body: AWS_ENDPOINT_URL when answers(url), else the emulator `scripts/local-aws/<script> up` starts
    (and `down` at the end if this session started it)."""
    os.environ.update(CREDS)
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url and answers(url):
        yield url
        return
    script = str(ROOT / "scripts" / "local-aws" / script)
    already = subprocess.run([script, "env"], capture_output=True).returncode == 0
    out = subprocess.run([script, "up"], check=True, capture_output=True, text=True).stdout
    url = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export AWS_ENDPOINT_URL="))
    os.environ["AWS_ENDPOINT_URL"] = url
    yield url
    if not already:
        subprocess.run([script, "down"], check=False)


@pytest.fixture(scope="session")
def endpoint():
    yield from emulator_endpoint("local-aws.sh", _answers)


@pytest.fixture(scope="session")
def aws(endpoint):
    kw = dict(endpoint_url=endpoint, region_name="us-east-1")
    return boto3.client("s3", **kw), boto3.client("sqs", **kw)


@pytest.fixture
def make_stack(endpoint):
    """make_stack(visibility_timeout=5) -> resources dict; deleted after the test."""
    made = []

    def make(visibility_timeout=30, **kw):
        res = local_stack.create(endpoint, visibility_timeout=visibility_timeout, **kw)
        made.append(res)
        return res

    yield make
    for res in made:
        local_stack.delete(res)


@pytest.fixture(scope="session")
def thumbs_bin():
    # Absolute: tests run it from other folders (make test passes a relative THUMBS_BIN).
    path = Path(os.environ.get("THUMBS_BIN", ROOT / "target" / "release" / "thumbs")).absolute()
    if not path.is_file():
        pytest.fail(f"{path} missing: build it (cargo build --release) or set THUMBS_BIN")
    return path


class Proc:
    """A child process with its output in a log file; ended by the fixture if still running."""

    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.p = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def signal(self, sig):
        self.p.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        finally:
            self._log.flush()

    def running(self):
        return self.p.poll() is None

    def log(self):
        if not self._log.closed:
            self._log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def stop(self):
        if self.running():
            self.p.send_signal(signal.SIGKILL)
            self.p.wait(10)
        self._log.close()


def worker_env(endpoint, res, s3_endpoint=None, **extra):
    env = dict(os.environ, **CREDS)
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ENDPOINT_URL_SQS=endpoint,
        AWS_ENDPOINT_URL_S3=s3_endpoint or endpoint,
        INPUT_BUCKETS=res["input_bucket"],
        OUTPUT_BUCKET=res["output_bucket"],
        DLQ_URL=res["dlq_url"],
        RUST_LOG=os.environ.get("RUST_LOG", "info"),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def start_worker(thumbs_bin, endpoint, tmp_path):
    """start_worker(res, concurrency=4, s3_endpoint=None, **env) -> Proc running `thumbs worker`."""
    procs = []

    def start(res, concurrency=4, s3_endpoint=None, **extra):
        n = len(procs)
        proc = Proc(
            [str(thumbs_bin), "worker", "--queue-url", res["queue_url"], "--concurrency", str(concurrency)],
            worker_env(endpoint, res, s3_endpoint, **extra),
            tmp_path / f"worker-{n}.log",
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
        print(f"--- {proc.log_path} (last lines)\n" + "\n".join(proc.log().splitlines()[-30:]))


@pytest.fixture
def faultproxy(endpoint, tmp_path):
    """faultproxy(*flags, upstream=endpoint) -> (proxy url, stats())."""
    procs = []

    def start(*flags, upstream=endpoint):
        log = open(tmp_path / f"faultproxy-{len(procs)}.log", "w")
        p = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "local-aws" / "faultproxy.py"), "--upstream", upstream, *flags],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        procs.append(p)
        line = p.stdout.readline()
        assert line.startswith("listening on "), line
        url = line.split()[-1]

        def stats():
            return json.loads(urllib.request.urlopen(url + "/__faultproxy__/stats", timeout=5).read())

        return url, stats

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def upload(s3, res, key, body):
    s3.put_object(Bucket=res["input_bucket"], Key=key, Body=body)


def account(s3, sqs, res, **kw):
    return accounting.account(s3, sqs, res["input_bucket"], res["input_prefix"], res["output_bucket"],
                              "thumbnails/", res["dlq_url"], **kw)


def wait_accounted(s3, sqs, res, timeout, **kw):
    """Poll until every upload is rendered or dead-lettered; fails with the report on timeout."""
    report = accounting.wait_for(lambda: account(s3, sqs, res, **kw), timeout, log=print)
    assert not report.missing, f"timed out after {timeout}s: {report.summary()}; missing {sorted(report.missing)[:20]}"
    return report


def queue_counts(sqs, url):
    a = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def wait_until(cond, timeout, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
