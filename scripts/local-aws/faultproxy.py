#!/usr/bin/env python3
"""HTTP reverse proxy in front of a local S3 (moto) that injects faults.

  scripts/local-aws/faultproxy.py --upstream http://127.0.0.1:5000 [--port 0] [--fail-first N]
      [--fail-window START END] [--fail-rate P] [--latency-ms MS] [--methods GET,PUT]
      [--targets AWSEvents.PutEvents]

Faulted requests get 503 with an S3 XML error body (code SlowDown), which AWS SDKs treat
as retryable throttling. With --targets only requests of the JSON protocol whose
X-Amz-Target is listed are faulted (others are forwarded and not counted as faultable), and
they get what such a service answers to an internal error: 500 with a JSON body of type
InternalException (EventBridge's PutEvents documents it; SDKs retry it). Times in --fail-window count from the first proxied request.
Everything else is forwarded unchanged: method, path, query, body and every header
including Host, so a SigV4 signature made for the proxy's address still verifies.

Control (not forwarded): GET /__faultproxy__/stats gives counters as JSON; POST
/__faultproxy__/config with a JSON object of the same names as the flags (fail_first,
fail_window, fail_rate, latency_ms, methods, targets) replaces the fault settings and restarts the
clock and the request count.
Prints "listening on http://127.0.0.1:PORT" once ready.
"""
import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTROL = "/__faultproxy__/"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}


class Faults:
    def __init__(self, fail_first=0, fail_window=None, fail_rate=0.0, latency_ms=0, methods=None, seed=None,
                 targets=None):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.configure(fail_first=fail_first, fail_window=fail_window, fail_rate=fail_rate, latency_ms=latency_ms,
                       methods=methods, targets=targets)
        self.stats = {"requests": 0, "injected": 0, "forwarded": 0, "upstream_errors": 0}

    def configure(self, fail_first=0, fail_window=None, fail_rate=0.0, latency_ms=0, methods=None, targets=None):
        with self.lock:
            self.targets = set(targets) if targets else None
            self.fail_first = int(fail_first)
            self.fail_window = tuple(map(float, fail_window)) if fail_window else None
            self.fail_rate = float(fail_rate)
            self.latency_ms = float(latency_ms)
            self.methods = {m.upper() for m in methods} if methods else None
            self.started = None  # set by the first request after (re)configuration
            self.seen = 0

    def decide(self, method, target=None):
        """Count the request; True when it must fail."""
        with self.lock:
            self.stats["requests"] += 1
            if self.methods is not None and method not in self.methods:
                return False
            if self.targets is not None and target not in self.targets:
                return False
            now = time.monotonic()
            if self.started is None:
                self.started = now
            self.seen += 1
            fail = self.seen <= self.fail_first
            if self.fail_window:
                fail |= self.fail_window[0] <= now - self.started < self.fail_window[1]
            fail |= self.fail_rate > 0 and self.rng.random() < self.fail_rate
            self.stats["injected" if fail else "forwarded"] += 1
            return fail


def make_handler(upstream, faults):
    up = urllib.parse.urlsplit(upstream)
    local = threading.local()

    def connection(fresh=False):
        if fresh or getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
        return local.conn

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue handled for us

        def log_message(self, fmt, *args):  # quiet: tests start many requests
            pass

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _send(self, status, headers, body):
            self.send_response_only(status)
            length = str(len(body))
            for k, v in headers:
                if k.lower() == "content-length":
                    length = v if self.command == "HEAD" else length  # HEAD: the object's size, no body
                elif k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _control(self, body):
            if self.path == CONTROL + "config" and self.command == "POST":
                faults.configure(**json.loads(body or b"{}"))
            if self.path in (CONTROL + "stats", CONTROL + "config"):
                with faults.lock:
                    out = json.dumps(faults.stats).encode()
                return self._send(200, [("Content-Type", "application/json")], out)
            return self._send(404, [], b"")

        def _slow_down(self):
            rid = uuid.uuid4().hex[:16].upper()
            resource = urllib.parse.urlsplit(self.path).path
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                "<Message>Please reduce your request rate.</Message>"
                f"<Resource>{resource}</Resource><RequestId>{rid}</RequestId></Error>"
            ).encode()
            self._send(503, [("Content-Type", "application/xml"), ("x-amz-request-id", rid)], xml)

        def _internal_error(self):
            rid = str(uuid.uuid4())
            body = json.dumps({"__type": "InternalException", "message": "injected by faultproxy"}).encode()
            self._send(500, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", rid),
                             ("x-amzn-ErrorType", "InternalException")], body)

        def _forward(self, body):
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            if self.headers.get("Transfer-Encoding") and body is not None:
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
            for attempt in (0, 1):  # a kept-alive upstream connection may have been closed
                conn = connection(fresh=attempt == 1)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in headers:
                        conn.putheader(k, v)
                    conn.endheaders(body or None)
                    resp = conn.getresponse()
                    data = resp.read()
                    return self._send(resp.status, resp.getheaders(), data)
                except (http.client.HTTPException, OSError):
                    conn.close()
                    local.conn = None
                    if attempt == 1:
                        with faults.lock:
                            faults.stats["upstream_errors"] += 1
                        return self._send(502, [], b"upstream unreachable")

        def _handle(self):
            body = self._body()
            if self.path.startswith(CONTROL):
                return self._control(body)
            target = self.headers.get("X-Amz-Target")
            fail = faults.decide(self.command, target)
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            if fail and faults.targets is not None:
                return self._internal_error()
            if fail:
                return self._slow_down()
            return self._forward(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--fail-first", type=int, default=0, help="answer 503 SlowDown to the first N requests")
    ap.add_argument("--fail-window", type=float, nargs=2, metavar=("START", "END"),
                    help="answer 503 SlowDown from START to END seconds after the first request")
    ap.add_argument("--fail-rate", type=float, default=0.0, help="answer 503 to this fraction of requests at random")
    ap.add_argument("--seed", type=int, help="seed for --fail-rate")
    ap.add_argument("--latency-ms", type=float, default=0, help="delay every request by this much")
    ap.add_argument("--methods", help="only fault these methods, e.g. GET,PUT (latency applies to all)")
    ap.add_argument("--targets", help="only fault JSON-protocol calls with this X-Amz-Target, comma-separated, "
                    "e.g. AWSEvents.PutEvents (answered 500 InternalException)")
    a = ap.parse_args()
    faults = Faults(a.fail_first, a.fail_window, a.fail_rate, a.latency_ms,
                    a.methods.split(",") if a.methods else None, a.seed,
                    a.targets.split(",") if a.targets else None)
    server = ThreadingHTTPServer((a.host, a.port), make_handler(a.upstream, faults))
    server.daemon_threads = True
    print(f"listening on http://{a.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
