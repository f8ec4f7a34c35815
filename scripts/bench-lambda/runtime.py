#!/usr/bin/env python3
"""A tiny local Lambda Runtime API (plus a fake SQS endpoint) for the release
function binaries, used by scripts/bench. Standard library only.

  runtime.py ready   --name NAME --bin PATH [--runs 10]
      Starts the binary RUNS times with AWS_LAMBDA_RUNTIME_API pointing here
      and every other endpoint (AWS_ENDPOINT_URL, STRIPE_API_BASE,
      BREVO_API_BASE) pointing here too. "Ready" is the moment the first
      `GET /2018-06-01/runtime/invocation/next` arrives; the time is measured
      from just before the process is spawned (fork+exec included). Any other
      request that arrives before "ready" is counted as network in init. The
      process's VmHWM is read from /proc when it is ready; then it is killed
      (by its own handle).

  runtime.py webhook --bin PATH [--invocations 2000]
      Starts stripe-webhook once and hands it INVOCATIONS API Gateway HTTP API
      (v2) events, each a signed customer.subscription.updated (compact JSON,
      unique id). SendMessage goes to the fake SQS endpoint here. Per
      invocation, "duration" is from the moment the event is handed out on
      /next to the moment the response is POSTed back (includes the loopback
      SQS call to this Python server: an upper bound of the handler time).
      Reports the first invocation apart (lazy init), p50/p99 of the rest,
      and the process's VmHWM after the last invocation.

Prints one `LAMBDA_READY ...` or `LAMBDA_WEBHOOK ...` line for scripts/bench.
"""
import argparse
import hashlib
import hmac
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "whsec_lambda_bench_0123456789"
RUNTIME = "/2018-06-01/runtime"


class State:
    def __init__(self):
        self.events = queue.Queue()
        self.lock = threading.Lock()
        self.first_next = None  # perf_counter of the first GET /next
        self.ready = threading.Event()
        self.pre_ready_other = []  # (method, path, target) before ready
        self.sent = {}  # request id -> perf_counter when handed out
        self.done = {}  # request id -> (perf_counter, body)
        self.errors = {}
        self.init_errors = []
        self.sqs_sends = 0
        self.other = []
        self.all_done = threading.Event()
        self.expected = 0


def make_handler(st: State):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def setup(self):
            super().setup()
            # Headers and body are separate writes: without this, Nagle + the
            # client's delayed ACK add ~40 ms to every response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _reply(self, code, body=b"", ctype="application/json", headers=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            if self.path == RUNTIME + "/invocation/next":
                now = time.perf_counter()
                with st.lock:
                    if st.first_next is None:
                        st.first_next = now
                st.ready.set()
                ev = st.events.get()
                if ev is None:  # shutting down: never answer
                    time.sleep(3600)
                    return
                rid, payload = ev
                body = json.dumps(payload).encode()
                deadline = int(time.time() * 1000) + 10_000
                st.sent[rid] = time.perf_counter()
                self._reply(
                    200,
                    body,
                    headers={
                        "Lambda-Runtime-Aws-Request-Id": rid,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
                    },
                )
                return
            with st.lock:
                if not st.ready.is_set():
                    st.pre_ready_other.append(("GET", self.path, ""))
                st.other.append(("GET", self.path))
            self._reply(404, b"{}")

        def do_POST(self):
            body = self._body()
            p = self.path
            if p.startswith(RUNTIME + "/invocation/") and p.endswith("/response"):
                rid = p[len(RUNTIME + "/invocation/") : -len("/response")]
                st.done[rid] = (time.perf_counter(), body)
                self._reply(202, b'{"status":"OK"}')
                if len(st.done) + len(st.errors) >= st.expected > 0:
                    st.all_done.set()
                return
            if p.startswith(RUNTIME + "/invocation/") and p.endswith("/error"):
                rid = p[len(RUNTIME + "/invocation/") : -len("/error")]
                st.errors[rid] = body
                self._reply(202, b'{"status":"OK"}')
                if len(st.done) + len(st.errors) >= st.expected > 0:
                    st.all_done.set()
                return
            if p == RUNTIME + "/init/error":
                st.init_errors.append(body)
                self._reply(202, b'{"status":"OK"}')
                return
            target = self.headers.get("X-Amz-Target", "")
            with st.lock:
                if not st.ready.is_set():
                    st.pre_ready_other.append(("POST", p, target))
            if target == "AmazonSQS.SendMessage":
                req = json.loads(body or b"{}")
                md5 = hashlib.md5(req.get("MessageBody", "").encode()).hexdigest()
                with st.lock:
                    st.sqs_sends += 1
                out = json.dumps({"MessageId": str(uuid.uuid4()), "MD5OfMessageBody": md5}).encode()
                self._reply(200, out, ctype="application/x-amz-json-1.0")
                return
            with st.lock:
                st.other.append(("POST", p, target))
            self._reply(400, b'{"__type":"com.amazonaws.sqs#UnsupportedOperation","message":"bench harness"}',
                        ctype="application/x-amz-json-1.0")

    return H


def serve():
    st = State()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(st))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return st, srv


def lambda_env(port: int, name: str) -> dict:
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRIPE_", "BREVO_", "CONNECTOR_"))}
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "AKIDBENCH",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": base,
            "QUEUE_URL": f"{base}/123456789012/bench-queue",
            "DEDUP_TABLE": "bench-dedup",
            "CURSOR_TABLE": "bench-cursors",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "STRIPE_SECRET_KEY": "sk_test_lambda_bench",
            "BREVO_API_KEY": "xkeysib-lambda-bench",
            "STRIPE_API_BASE": base,
            "BREVO_API_BASE": base,
            "RUST_LOG": "info",
        }
    )
    return env


def vm_hwm_kb(pid: int):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ticks(pid: int):
    """utime + stime of the process, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def stop(proc):
    proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def cmd_ready(a):
    times, hwms, pre, failures = [], [], 0, []
    for _ in range(a.runs):
        st, srv = serve()
        port = srv.server_address[1]
        log = open(os.devnull, "wb")
        t0 = time.perf_counter()
        proc = subprocess.Popen([a.bin], env=lambda_env(port, a.name), stdout=log, stderr=log)
        ok = st.ready.wait(timeout=10)
        if ok:
            times.append((st.first_next - t0) * 1e3)
            hwms.append(vm_hwm_kb(proc.pid))
            pre += len(st.pre_ready_other)
        else:
            failures.append(proc.poll())
        stop(proc)
        st.events.put(None)
        srv.shutdown()
        srv.server_close()
    if not times:
        print(f"LAMBDA_READY name={a.name} runs={a.runs} ready=0 failed_exit_codes={failures}")
        return 1
    times.sort()
    h = [x for x in hwms if x]
    print(
        f"LAMBDA_READY name={a.name} runs={len(times)} min_ms={times[0]:.2f} median_ms={statistics.median(times):.2f} "
        f"max_ms={times[-1]:.2f} vmhwm_kb_at_ready={max(h) if h else '?'} requests_before_ready={pre} failures={len(failures)}"
    )
    return 0


def webhook_events(n: int):
    with open(os.path.join(ROOT, "events/stripe/customer.subscription.updated.json")) as f:
        ev = json.load(f)
    with open(os.path.join(ROOT, "events/webhook/apigw-v2/customer.subscription.updated.json")) as f:
        tmpl = json.load(f)
    t = int(time.time())
    out = []
    for i in range(n):
        ev["id"] = f"evt_lambda_bench_{t}_{i:06d}"
        body = json.dumps(ev, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        sig = hmac.new(SECRET.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        p = json.loads(json.dumps(tmpl))
        p["headers"]["stripe-signature"] = f"t={t},v1={sig}"
        p["body"] = body
        p["isBase64Encoded"] = False
        p["requestContext"]["requestId"] = f"bench-{i}"
        p["requestContext"]["timeEpoch"] = t * 1000
        out.append((f"req-{i:06d}", p))
    return out, len(out[0][1]["body"].encode())


def cmd_webhook(a):
    st, srv = serve()
    port = srv.server_address[1]
    events, size = webhook_events(a.invocations)
    st.expected = len(events)
    for e in events:
        st.events.put(e)
    log_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lambda-bench-webhook-{os.getpid()}.log")
    log = open(log_path, "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([a.bin], env=lambda_env(port, "stripe-webhook"), stdout=log, stderr=log)
    st.ready.wait(timeout=10)
    cpu_at_ready = cpu_ticks(proc.pid)
    finished = st.all_done.wait(timeout=a.timeout)
    wall = time.perf_counter() - t0
    hwm = vm_hwm_kb(proc.pid)
    cpu_end = cpu_ticks(proc.pid)
    stop(proc)
    log.close()
    log_bytes = os.path.getsize(log_path)
    with open(log_path, "rb") as f:
        log_lines = sum(1 for _ in f)
    os.remove(log_path)
    hz = os.sysconf("SC_CLK_TCK")
    cpu_us = ((cpu_end - cpu_at_ready) / hz * 1e6 / max(1, len(st.done))) if (cpu_end is not None and cpu_at_ready is not None) else float("nan")
    st.events.put(None)
    srv.shutdown()
    statuses = {}
    durs = []
    for rid, _ in events:
        if rid in st.done:
            end, body = st.done[rid]
            try:
                code = json.loads(body).get("statusCode")
            except ValueError:
                code = "unparsable"
            statuses[code] = statuses.get(code, 0) + 1
            durs.append((end - st.sent[rid]) * 1e3)
    first = durs[0] if durs else float("nan")
    rest = sorted(durs[1:])

    def pct(p):
        if not rest:
            return float("nan")
        i = max(1, min(len(rest), int(-(-len(rest) * p // 1)))) - 1
        return rest[i]

    print(
        f"LAMBDA_WEBHOOK invocations={len(events)} completed={len(durs)} errors={len(st.errors)} finished={finished} "
        f"status_codes={json.dumps(statuses, sort_keys=True).replace(' ', '')} sqs_send_message={st.sqs_sends} body_bytes={size} "
        f"first_ms={first:.3f} p50_ms={pct(0.5):.3f} p90_ms={pct(0.9):.3f} p99_ms={pct(0.99):.3f} max_ms={(rest[-1] if rest else float('nan')):.3f} "
        f"mean_ms={(statistics.mean(rest) if rest else float('nan')):.3f} vmhwm_kb={hwm} wall_s={wall:.2f} "
        f"cpu_us_per_invocation={cpu_us:.1f} clk_tck={hz} log_bytes={log_bytes} log_lines={log_lines} "
        f"other_requests={len(st.other)}"
    )
    return 0 if finished else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("--name", required=True)
    r.add_argument("--bin", required=True)
    r.add_argument("--runs", type=int, default=10)
    w = sub.add_parser("webhook")
    w.add_argument("--bin", required=True)
    w.add_argument("--invocations", type=int, default=2000)
    w.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    sys.exit(cmd_ready(a) if a.cmd == "ready" else cmd_webhook(a))


if __name__ == "__main__":
    main()
