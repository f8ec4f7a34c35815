#!/usr/bin/env python3
"""Times the official Stripe Python SDK's webhook check on the payload the
Rust `verify` bench uses (events/stripe/customer.subscription.updated.json,
compact-serialised): `stripe.Webhook.construct_event` = signature check +
JSON parse into a StripeObject. Prints µs/event (best and median of 7 runs),
and the same for `stripe.WebhookSignature.verify_header` alone (signature
only, no parse) to show where the time goes.

Run: /tmp/probe-venv/bin/python scripts/bench-sdk.py   (any Python with `stripe`)
"""
import hashlib, hmac, json, os, statistics, sys, time

import stripe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "whsec_bench_secret"


def payload() -> str:
    with open(os.path.join(ROOT, "events/stripe/customer.subscription.updated.json")) as f:
        v = json.load(f)
    # serde_json::to_vec of a serde_json::Value: compact, keys sorted (BTreeMap), UTF-8.
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def main() -> None:
    body = payload()
    t = int(time.time())
    sig = hmac.new(SECRET.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    header = f"t={t},v1={sig}"
    ev = stripe.Webhook.construct_event(body, header, SECRET)  # sanity: verifies
    assert ev["type"] == "customer.subscription.updated"
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000

    def timed(f, count):
        for _ in range(max(count // 10, 100)):
            f()
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(count):
                f()
            runs.append((time.perf_counter() - start) / count * 1e6)
        return min(runs), statistics.median(runs)

    best, med = timed(lambda: stripe.Webhook.construct_event(body, header, SECRET), n)
    vbest, vmed = timed(lambda: stripe.WebhookSignature.verify_header(body, header, SECRET, 300), n * 10)
    print(
        f"python stripe {stripe.VERSION} ({sys.version.split()[0]}): construct_event on {len(body.encode())} B: "
        f"best {best:.2f} µs/event, median {med:.2f} µs/event ({n} events x 7 runs); "
        f"verify_header only: best {vbest:.2f} µs, median {vmed:.2f} µs"
    )

if __name__ == "__main__":
    main()
