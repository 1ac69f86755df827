"""Benchmark driver: thumbs vs Node.js/sharp vs vipsthumbnail vs the floor on the same job.

Job: three presets (thumb 150x150 cover/attention, small 480 wide, large 1080 wide, never
upscale), WebP q=80. Every contender runs the same files in the same round, in turn
(A B C A B C ...), so machine drift cancels in the pair-by-pair ratios. The output bytes of
every round are recorded per contender (the comparison holds at equal output bytes).
Writes results JSON (see --out); bench/report.py turns it into docs/benchmarks/.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS = "thumb=150x150:cover,small=480,large=1080"
# The thumbs binary under test; --thumbs changes it (scripts/bench/bench.sh passes a copy taken right
# after its build, so another build in this shared work tree cannot swap it mid-run).
THUMBS = ROOT / "target/release/thumbs"
# thumbs is also timed against newer Debian releases' libvips (the host's is Debian 12's 8.14):
# the same binary run through scripts/setup/libvips-run.sh, i.e. the release's own loader and library
# root from scripts/setup/libvips-root.sh (libvips keeps its soname across 8.x), so the Lambda layer's
# libvips can be chosen by measurement. --libvips-releases changes the list.
LIBVIPS_RELEASES = "trixie,sid"
RELEASES = {}  # release -> libvips version, filled by main()
ROOTS = {}  # release -> its library root (scripts/setup/libvips-root.sh)
ONLY = set()  # --contenders: run only these (all when empty)
# sharp 0.35 (prebuilt libvips 8.18) beside the pinned 0.34.5 (8.17.3), when installed (it needs
# Node >= 20.9; scripts/bench/bench.sh installs it when the Node here is new enough).
SHARP_NEXT = ROOT / "bench/sharp-0.35/node_modules/sharp"
# The Lambda layer's libvips (scripts/build/dist.sh builds the layer from this release's root):
# thumbs, sharp built from source against it (bench/sharp-global) and the floor (bench/floor.c)
# all run on it through scripts/setup/libvips-run.sh; scripts/bench/layer-contenders.sh builds
# the last two.
LAYER_RELEASE = "trixie"
SHARP_LAYER = ROOT / "bench/sharp-global/node_modules/sharp"
FLOOR = ROOT / "target/bench-results/floor"
VIPSTHUMBNAIL_SIZES = {"thumb": ["-s", "150x150>", "-m", "attention"],
                       "small": ["-s", "480x>"], "large": ["-s", "1080x>"]}


class Contender:
    """Runs a batch of files with `parallel` images at a time; returns per-image ms."""

    def __init__(self, name, prefix, env):
        self.name, self.prefix, self.env = name, prefix, env

    def batch(self, files, parallel, out):
        raise NotImplementedError


def timed(cmd, env):
    """Run cmd, returning (wall s, stdout, stderr, rc, peak RSS KiB) via wait4 on the child."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()
    err = bytearray()
    t = threading.Thread(target=lambda: err.extend(p.stderr.read()))
    t.start()
    out.extend(p.stdout.read())
    t.join()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, out.decode(), err.decode(), p.returncode, usage.ru_maxrss


class Thumbs(Contender):
    LINE = re.compile(r"\] (ok|FAIL)\s+(.+?)(?: \(\d+ renditions, (\d+) ms\)|: (.*))$")

    def batch(self, files, parallel, out):
        cmd = self.prefix + [str(THUMBS), "render", "--jobs",
                             str(parallel), "--out", out] + files
        wall, _, err, _, rss = timed(cmd, self.env)
        ms, errors = [], {}
        for line in err.splitlines():
            m = self.LINE.search(line)
            if m and m.group(1) == "ok":
                ms.append((m.group(2), float(m.group(3))))
            elif m:
                errors[m.group(2)] = m.group(4)
        return wall, ms, errors, rss


class ThumbsPerPreset(Thumbs):
    """One shrink-on-load thumbnail per preset and image, without the shared decode: one
    `thumbs render` per preset over the batch (one preset each, so its single decode is that
    preset's own thumbnail call). `THUMBS_STRATEGY=per-preset` cannot be timed for this: the
    engine still runs the shared strategy's decode first (for the placeholder), so it would pay
    for both strategies. Per image: the sum of its three renders' in-process times."""

    def batch(self, files, parallel, out):
        wall, rss, ms, errors = 0.0, 0, {}, {}
        for preset in PRESETS.split(","):
            env = dict(self.env, THUMBS_PRESETS=preset)
            name = preset.split("=")[0]
            w, m, e, r = Thumbs(self.name, self.prefix, env).batch(files, parallel, f"{out}/{name}")
            wall, rss = wall + w, max(rss, r)
            for f, t in m:
                ms[f] = ms.get(f, 0.0) + t
            errors.update(e)
        return wall, [(f, t) for f, t in ms.items() if f not in errors], errors, rss


class Sharp(Contender):
    """bench/sharp-render.js, `way` original (one pipeline per preset) or once (one decode,
    raw pixels, presets derived)."""

    def __init__(self, name, prefix, env, way="original"):
        super().__init__(name, prefix, env)
        self.way = way

    def batch(self, files, parallel, out):
        # The full path: scripts/setup/libvips-run.sh runs it through a loader, without PATH.
        cmd = self.prefix + [shutil.which("node") or "node", str(ROOT / "bench/sharp-render.js"),
                             "--out", out, "--parallel", str(parallel), "--way", self.way] + files
        wall, stdout, err, rc, rss = timed(cmd, self.env)
        ms, errors = [], {}
        for line in stdout.splitlines():
            r = json.loads(line)
            if "ms" in r:
                ms.append((r["file"], r["ms"]))
            else:
                errors[r["file"]] = r["error"]
        if rc != 0:
            errors["(process)"] = err.strip()[-300:]
        return wall, ms, errors, rss


class Floor(Contender):
    """bench/floor.c: per image, the decode at the needed scale plus the three encodes, timed in
    the process; what lies between is done untimed. Its wall is therefore the timed work, not
    the process's: the sum of the per-image times over `parallel` images at a time."""

    def batch(self, files, parallel, out):
        cmd = self.prefix + [str(FLOOR), "--out", out, "--parallel", str(parallel)] + files
        _, stdout, err, rc, rss = timed(cmd, self.env)
        ms, errors, self.parts = [], {}, {}
        for line in stdout.splitlines():
            r = json.loads(line)
            if "ms" in r:
                ms.append((r["file"], r["ms"]))
                self.parts[r["file"]] = {"decode_ms": r["decode_ms"], "encode_ms": r["encode_ms"]}
            elif "error" in r:
                errors[r["file"]] = r["error"]
        if rc != 0:
            errors["(process)"] = err.strip()[-300:]
        return sum(t for _, t in ms) / parallel / 1000, ms, errors, rss


class VipsThumbnail(Contender):
    """Debian's vipsthumbnail CLI, one process per preset per image."""

    def one(self, f, out, i):
        d = Path(out) / f"{i}-{Path(f).name}"
        d.mkdir(parents=True, exist_ok=True)
        start, rss, error = time.perf_counter(), 0, None
        for name, size in VIPSTHUMBNAIL_SIZES.items():
            cmd = self.prefix + ["vipsthumbnail", f, *size, "-o", f"{d}/{name}.webp[Q=80,strip]"]
            _, _, err, rc, r = timed(cmd, self.env)
            rss = max(rss, r)
            if rc != 0:
                error = err.strip()[-300:]
        return f, (time.perf_counter() - start) * 1000, error, rss

    def batch(self, files, parallel, out):
        start = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(lambda a: self.one(a[1], out, a[0]), enumerate(files)))
        wall = time.perf_counter() - start
        ms = [(f, t) for f, t, e, _ in results if e is None]
        errors = {f: e for f, _, e, _ in results if e is not None}
        return wall, ms, errors, max(r for *_, r in results)


def libvips_releases(names):
    """{release: libvips version} for the library roots of scripts/setup/libvips-root.sh (built on
    first use, which is why this runs before any timing)."""
    out = {}
    for rel in filter(None, names.split(",")):
        root = subprocess.run([str(ROOT / "scripts/setup/libvips-root.sh"), rel], check=True, cwd=ROOT,
                              stdout=subprocess.PIPE, text=True).stdout.strip()
        ROOTS[rel] = root
        m = re.search(r"^libvips42t64[=_]([^-_]+)", Path(root, ".packages").read_text(), re.M)
        out[rel] = m.group(1) if m else "?"
    return out


def contenders(one_core):
    env = dict(os.environ, VIPS_WARNING="1", THUMBS_PRESETS=PRESETS, THUMBS_FORMATS="webp",
               THUMBS_QUALITY="webp=80", RUST_LOG="warn")
    env.pop("VIPS_CONCURRENCY", None)
    prefix = []
    if one_core:
        env["VIPS_CONCURRENCY"] = "1"
        prefix = ["taskset", "-c", "0"]
    def on(rel):
        """The prefix running a program on `rel`'s libvips, its root already known."""
        return prefix + ["env", f"LIBVIPS_ROOT={ROOTS[rel]}",
                         str(ROOT / "scripts/setup/libvips-run.sh"), rel]
    layer = on(LAYER_RELEASE)
    cs = [Thumbs("thumbs", prefix, env)]
    for rel, version in RELEASES.items():
        cs.append(Thumbs(f"thumbs, libvips {version}", on(rel), env))
    # The contenders the goals are measured against, on the layer's libvips.
    if SHARP_LAYER.exists():
        v = layer_libvips()
        sharp_env = dict(env, SHARP_MODULE=str(SHARP_LAYER))
        cs.append(Sharp(f"sharp, libvips {v}", layer, sharp_env))
        cs.append(Sharp(f"sharp decode-once, libvips {v}", layer, sharp_env, "once"))
    if FLOOR.exists():
        cs.append(Floor(f"floor, libvips {layer_libvips()}", layer, env))
    cs += [Sharp("sharp", prefix, env),
           Sharp("sharp decode-once", prefix, env, "once"),
           ThumbsPerPreset("thumbs per-preset", prefix, env),
           VipsThumbnail("vipsthumbnail", prefix, env)]
    if SHARP_NEXT.exists():
        cs.append(Sharp("sharp 0.35", prefix, dict(env, SHARP_MODULE=str(SHARP_NEXT))))
    if ONLY:
        # thumbs on the host's libvips stays: the report's ratios are taken to it.
        cs = [c for c in cs if c.name in ONLY or c.name == "thumbs"]
    return cs


def layer_libvips():
    """The libvips version of the layer's release (its root is made on first use)."""
    if LAYER_RELEASE not in RELEASES:
        RELEASES.update(libvips_releases(LAYER_RELEASE))
    return RELEASES[LAYER_RELEASE]


def output_bytes(out, inputs):
    """(bytes, count, {input file: bytes}) of the WebP renditions a batch wrote under `out`.
    Each contender writes an input's renditions into a folder named after it (as NAME or
    INDEX-NAME); the corpus' file names are unique."""
    files = [p for p in Path(out).rglob("*.webp") if p.is_file()]
    by_name = {Path(f).name: f for f in inputs}
    per_file = {}
    for p in files:
        d = p.parent.name
        f = by_name.get(d) or by_name.get(d.split("-", 1)[-1])
        if f:
            per_file[f] = per_file.get(f, 0) + p.stat().st_size
    return sum(p.stat().st_size for p in files), len(files), per_file


def interleaved(cs, files, parallel, rounds, scratch):
    """rounds x (each contender in turn over `files`); returns per-contender lists per round."""
    res = {c.name: [] for c in cs}
    for r in range(rounds):
        for c in cs:
            out = tempfile.mkdtemp(dir=scratch)
            wall, ms, errors, rss = c.batch(files, parallel, out)
            out_bytes, renditions, per_file = output_bytes(out, files)
            shutil.rmtree(out)
            res[c.name].append({"wall_s": wall, "ms": ms, "errors": errors, "peak_rss_kib": rss,
                                "out_bytes": out_bytes, "renditions": renditions,
                                "out_bytes_by_file": per_file,
                                **({"parts": c.parts} if isinstance(c, Floor) else {})})
            print(f"  round {r + 1}/{rounds} {c.name:34} {wall:7.2f} s  {len(ms)} ok "
                  f"{len(errors)} failed  {out_bytes:,} bytes in {renditions} renditions  "
                  f"peak {rss / 1024:.0f} MiB", file=sys.stderr, flush=True)
    return res


# ---- start-up under a local Lambda Runtime API -------------------------------------------

class RuntimeApi(ThreadingHTTPServer):
    """Serves one queued event at a time; records when its response (or error) arrives."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.event = None
        self.generation = 0  # bumped per offer, so a killed process's pending GET gives up
        self.answered = threading.Event()
        self.pending = threading.Condition()
        self.t_answer = None
        self.t_next = None  # first GET .../invocation/next since the offer: init finished
        self.answer = None

    def offer(self, event):
        with self.pending:
            self.event, self.t_answer, self.t_next, self.answer = event, None, None, None
            self.generation += 1
            self.answered.clear()
            self.pending.notify_all()


class RuntimeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            return self.send_error(404)
        now = time.monotonic()
        with srv.pending:
            if srv.t_next is None and srv.event is not None:
                srv.t_next = now
            gen = srv.generation
            srv.pending.wait_for(lambda: srv.event is not None or srv.generation != gen, 120)
            if srv.generation != gen or srv.event is None:
                self.close_connection = True
                return
            event, srv.event = srv.event, None
        body = json.dumps(event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:000000000000:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        now = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if "/invocation/" in self.path:
            srv = self.server
            srv.t_answer = now
            srv.answer = ("error: " if self.path.endswith("/error") else "") + body
            srv.answered.set()


def sqs_event(bucket, key):
    """An SQS batch of one message; key None gives the s3:TestEvent S3 sends when a bucket
    notification is configured (no object, nothing to render)."""
    if key is None:
        s3 = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00.000Z",
              "Bucket": bucket, "RequestId": "BENCH0000000000", "HostId": "bench"}
    else:
        s3 = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                           "awsRegion": "us-east-1",
                           "s3": {"bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                  "object": {"key": key, "size": 1}}}]}
    return {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": json.dumps(s3),
                         "attributes": {"ApproximateReceiveCount": "1"},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:in",
                         "awsRegion": "us-east-1"}]}


STARTUP_EVENTS = ("test_event", "image_event")
# The Lambda layer (layer/build-layer.sh via scripts/build/dist.sh) carries one libvips module, HEIF,
# found through VIPSHOME=/opt. Debian's libvips on this host loads five at start (heif, jxl,
# magick, openslide, poppler, with their libraries), which a deployed bootstrap never does.
LAYER_MODULES = ("heif",)


def layer_like_vipshome(scratch):
    """A VIPSHOME whose module folder holds only the layer's modules (links to Debian's)."""
    found = sorted(Path("/usr/lib").glob("*/vips-modules-*"))
    if not found:
        return None
    dest = Path(scratch) / "vipshome" / found[0].parent.name / found[0].name
    dest.mkdir(parents=True, exist_ok=True)
    for m in LAYER_MODULES:
        src = found[0] / f"vips-{m}.so"
        if src.exists() and not (dest / src.name).exists():
            (dest / src.name).symlink_to(src)
    return dest.parent.parent


def startup(trials, image, scratch):
    """Process start -> first event answered, thumbs bootstrap vs Node+sharp, against moto S3.

    Two first events, interleaved trial by trial: "test_event", an SQS message whose body is
    an s3:TestEvent that both handlers acknowledge without fetching or rendering anything
    (so the time is the runtime's own start: loading, initialising, one Runtime API round
    trip); and "image_event", an S3 ObjectCreated record for `image`, so the time also holds a
    GetObject, three renditions and three PutObjects. Each trial also records when the process
    first asked for an event (GET .../invocation/next), i.e. the end of its init.
    Runtimes: "thumbs" with the layer's libvips modules only (as deployed), "thumbs (Debian's
    5 modules)" with everything Debian's libvips loads here, and "node+sharp"."""
    import boto3  # from the project's .venv

    moto = subprocess.Popen([str(ROOT / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in moto.stderr:
            m = re.search(r"Running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = m.group(1)
                break
        threading.Thread(target=lambda: moto.stderr.read(), daemon=True).start()
        endpoint = f"http://127.0.0.1:{port}"
        aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": endpoint}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        for b in ("bench-in", "bench-out"):
            s3.create_bucket(Bucket=b)
        env = dict(os.environ, **aws, INPUT_BUCKETS="bench-in", OUTPUT_BUCKET="bench-out",
                   AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                   AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1769", AWS_LAMBDA_LOG_GROUP_NAME="bench",
                   AWS_LAMBDA_LOG_STREAM_NAME="bench", THUMBS_PRESETS=PRESETS,
                   THUMBS_FORMATS="webp", RUST_LOG="warn")
        env.pop("VIPSHOME", None)
        vipshome = layer_like_vipshome(scratch)
        layer_env = dict(env, VIPSHOME=str(vipshome)) if vipshome else env
        cmds = {"thumbs": ([str(THUMBS), "lambda"], layer_env),
                "thumbs (Debian's 5 modules)": ([str(THUMBS), "lambda"], env),
                "node+sharp": (["node", str(ROOT / "bench/node-lambda.js")], env)}
        res = {kind: {name: [] for name in cmds} for kind in STARTUP_EVENTS}
        for t in range(trials):
            for kind in STARTUP_EVENTS:
                for i, (name, (cmd, base_env)) in enumerate(cmds.items()):
                    tag = f"{t}-{kind}-{i}"
                    # A fresh Runtime API per trial: a GET the previous (killed) process left
                    # in the listen queue must not take this trial's event.
                    api = RuntimeApi()
                    threading.Thread(target=api.serve_forever, daemon=True).start()
                    if kind == "image_event":
                        key = f"uploads/start/{tag}.jpg"
                        s3.upload_file(str(image), "bench-in", key)
                        api.offer(sqs_event("bench-in", key))
                    else:
                        api.offer(sqs_event("bench-in", None))
                    run_env = dict(base_env,
                                   AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server_address[1]}")
                    t0 = time.monotonic()
                    p = subprocess.Popen(cmd, env=run_env, cwd=ROOT, start_new_session=True,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    deadline = time.monotonic() + 60
                    while not api.answered.wait(0.01) and p.poll() is None \
                            and time.monotonic() < deadline:
                        pass
                    ok = api.answered.is_set()
                    os.killpg(p.pid, signal.SIGKILL)
                    err = p.communicate()[1].decode()[-500:]
                    api.shutdown()
                    api.server_close()
                    listed = s3.list_objects_v2(Bucket="bench-out",
                                                Prefix=f"thumbnails/start/{tag}")
                    outputs = sum(1 for o in listed.get("Contents", [])
                                  if o["Key"][len(f"thumbnails/start/{tag}")] in "./")
                    want = 3 if kind == "image_event" else 0
                    good = ok and '"batchItemFailures":[]' in api.answer.replace(" ", "") \
                        and (outputs >= want if want else outputs == 0)
                    res[kind][name].append({
                        "ms": (api.t_answer - t0) * 1000 if ok else None,
                        "ready_ms": (api.t_next - t0) * 1000 if api.t_next else None,
                        "ok": good, "answer": api.answer, "outputs": outputs,
                        "stderr": "" if good else err})
                    r = res[kind][name][-1]
                    print(f"  start-up {t + 1}/{trials} {kind:11} {name:27} "
                          f"ready {r['ready_ms'] or float('nan'):6.1f} ms  "
                          f"answered {r['ms'] or float('nan'):6.1f} ms ok={good}",
                          file=sys.stderr, flush=True)
        return res
    finally:
        moto.kill()
        moto.wait()


def versions():
    def out(cmd, cwd=ROOT):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd).stdout.strip()
        except OSError:
            return None
    def sharp_version(module):
        return out(["node", "-e", f"const v=require({json.dumps(module)}).versions;"
                    "console.log(`sharp ${v.sharp}, libvips ${v.vips}`)"], ROOT / "bench")
    sharp = sharp_version("sharp")
    layer = None
    if SHARP_LAYER.exists():
        layer = out(["scripts/setup/libvips-run.sh", LAYER_RELEASE, shutil.which("node") or "node",
                     "-e", f"const v=require({json.dumps(str(SHARP_LAYER))}).versions;"
                     "console.log(`sharp ${v.sharp}, libvips ${v.vips}`)"])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    mem = next(line.split(":", 1)[1].strip() for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "os": out(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
            "node": out(["node", "--version"]), "sharp": sharp,
            "sharp_next": sharp_version(str(SHARP_NEXT)) if SHARP_NEXT.exists() else None,
            "libvips_releases": dict(RELEASES),
            "layer": {"release": LAYER_RELEASE, "libvips": RELEASES.get(LAYER_RELEASE),
                      "sharp": layer, "floor": FLOOR.exists()},
            "vipsthumbnail": out(["vipsthumbnail", "--vips-version"]) or out(["vips", "--version"]),
            "thumbs": out([str(THUMBS), "--version"]),
            "thumbs_binary": str(THUMBS.relative_to(ROOT) if THUMBS.is_relative_to(ROOT) else THUMBS),
            "thumbs_sha256": hashlib.sha256(THUMBS.read_bytes()).hexdigest(),
            "thumbs_commit": (Path(str(THUMBS) + ".commit").read_text().strip()
                              if Path(str(THUMBS) + ".commit").exists()
                              else out(["git", "rev-parse", "--short", "HEAD"])),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def main():
    global THUMBS, RELEASES, ONLY
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", default=str(ROOT / "target/bench-corpus"))
    ap.add_argument("--out", default=str(ROOT / "target/bench-results/results.json"))
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the corpus")
    ap.add_argument("--modes", default="one_core,all_cores",
                    help="throughput modes to run (comma-separated: one_core, all_cores)")
    ap.add_argument("--single-rounds", type=int, default=3, help="0 leaves the section out")
    ap.add_argument("--single-repeat", type=int, default=3, help="images per process per round")
    ap.add_argument("--startup-trials", type=int, default=10)
    ap.add_argument("--thumbs", default=str(THUMBS), help="the thumbs binary to run")
    ap.add_argument("--libvips-releases", default=LIBVIPS_RELEASES,
                    help="Debian releases whose libvips thumbs also runs on (comma-separated; "
                    "empty: the host's only)")
    ap.add_argument("--contender", action="append", default=[],
                    help="run only this contender (its name as printed, e.g. 'floor, libvips "
                    "8.16.1'; repeat for more; default all; 'thumbs' always runs)")
    ap.add_argument("--files", default="",
                    help="only the corpus files whose path (e.g. jpeg/sunset.jpg) contains one of "
                    "these (comma-separated); for a quick check")
    args = ap.parse_args()
    THUMBS = Path(args.thumbs).resolve()
    RELEASES = libvips_releases(args.libvips_releases)
    layer_libvips()
    ONLY = set(args.contender)

    corpus = Path(args.corpus)
    files = sorted(str(p) for p in corpus.glob("*/*") if p.is_file())
    if args.files:
        files = [f for f in files if any(k in f for k in args.files.split(","))]
    scratch = tempfile.mkdtemp(prefix="thumbs-bench-")
    results = {"versions": versions()}
    # Other work on the machine skews absolute times (interleaving protects the ratios only
    # partly): record the load average before and after the run.
    results["loadavg"] = {"start": Path("/proc/loadavg").read_text().split()[:3]}
    rows = (corpus / "manifest.tsv").read_text().splitlines()
    head = rows[0].split("\t")
    results["corpus"] = [dict(zip(head, r.split("\t"))) for r in rows[1:]]
    results["settings"] = vars(args)
    try:
        # Probe once: files any contender cannot render are reported and left out of timing.
        print("probe (one core)", file=sys.stderr)
        t0 = time.monotonic()
        probe = interleaved(contenders(True), files, 1, 1, scratch)
        results["probe"] = probe
        results["section_s"] = {"probe": time.monotonic() - t0}
        failed = {c: r[0]["errors"] for c, r in probe.items() if r[0]["errors"]}
        common = [f for f in files if not any(f in e for e in failed.values())]
        results["probe_failures"] = failed
        results["common_files"] = common
        for mode, one_core, par in (("one_core", True, 1), ("all_cores", False, os.cpu_count())):
            if mode not in args.modes.split(","):
                continue
            print(f"throughput {mode}: {len(common)} files x {args.rounds} rounds", file=sys.stderr)
            t0 = time.monotonic()
            results[mode] = interleaved(contenders(one_core), common, par, args.rounds, scratch)
            results["section_s"][mode] = time.monotonic() - t0
        results["single"] = {}
        t0 = time.monotonic()
        for name in ("sunset", "elephants", "kleiber") if args.single_rounds else ():
            f = str(corpus / "jpeg" / f"{name}.jpg")
            print(f"single image {name}", file=sys.stderr)
            results["single"][name] = interleaved(contenders(True), [f] * args.single_repeat, 1,
                                                  args.single_rounds, scratch)
        results["section_s"]["single"] = time.monotonic() - t0
        if args.startup_trials:
            t0 = time.monotonic()
            print("start-up under a local Lambda Runtime API", file=sys.stderr)
            results["startup_layer_modules"] = list(LAYER_MODULES)
            results["startup"] = startup(args.startup_trials,
                                         ROOT / "tests/fixtures/landscape.jpg", scratch)
            results["section_s"]["startup"] = time.monotonic() - t0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        results["loadavg"]["end"] = Path("/proc/loadavg").read_text().split()[:3]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"results: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
