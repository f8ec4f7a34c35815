#!/usr/bin/env python3
"""Builds events/ from Stripe's own fixture objects (sandbox/fixtures).

Writes, for each handled event type:
  events/stripe/<type>.json                 the raw Stripe event (as Stripe POSTs it)
  events/webhook/apigw-v2/<type>.json       an API Gateway HTTP API (v2) request
and a Function URL and a REST API (v1) request for customer.created, an SQS
batch for the consumer, the poller's schedule event and a backfill override.
Requests are signed with the sample secret `whsec_sample` at a fixed time, so
they are stale: re-sign them with scripts/sign-event before invoking.

Only the customer id, e-mail and a few amounts are changed from the fixtures so
that the samples tell one customer's story.
"""
import base64, copy, hashlib, hmac, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = json.load(open(os.path.join(ROOT, "sandbox/fixtures/stripe_fixtures.json")))["resources"]
OUT = os.path.join(ROOT, "events")
SECRET = "whsec_sample"
T0 = 1763800000  # 2025-11-22T08:26:40Z
CUS = "cus_QXg1o8vcGmoR32"


def obj(kind, **changes):
    o = copy.deepcopy(FIX[kind])
    o.update(changes)
    return o


customer = obj("customer", email="jenny.rosen@example.com", name="Jenny Rosen", phone="+1 (415) 555-0100",
               metadata={"customer_tier": "gold"}, created=T0 - 86400 * 90)
charge = obj("charge", customer=CUS, amount=2000, amount_captured=2000, created=T0 - 3600, status="succeeded", paid=True)
refunded = obj("charge", customer=CUS, amount=2000, amount_captured=2000, amount_refunded=2000, refunded=True,
               created=T0 - 3600, status="succeeded", paid=True)
pi = obj("payment_intent", customer=CUS, amount=2000, amount_received=2000, status="succeeded", created=T0 - 3600)
pi_failed = obj("payment_intent", customer=CUS, amount=2000, amount_received=0, status="requires_payment_method", created=T0 - 60)
dispute = obj("dispute", charge=charge["id"], amount=2000, created=T0 - 30)
sub = obj("subscription", customer=CUS, status="active", created=T0 - 86400 * 30, start_date=T0 - 86400 * 30)
sub_trial = obj("subscription", customer=CUS, status="trialing", trial_end=T0 + 3 * 86400)
sub_canceled = obj("subscription", customer=CUS, status="canceled", canceled_at=T0)
invoice = obj("invoice", customer=CUS, status="open", amount_due=2000, amount_paid=0, attempt_count=1)
invoice_paid = obj("invoice", customer=CUS, status="paid", amount_due=2000, amount_paid=2000)
session = obj("checkout.session", customer=CUS, status="expired", amount_total=2000, currency="usd",
              customer_details={"email": "jenny.rosen@example.com", "name": "Jenny Rosen"})

EVENTS = {
    "customer.created": customer,
    "customer.updated": customer,
    "customer.deleted": dict(customer, deleted=True),
    "payment_intent.succeeded": pi,
    "payment_intent.payment_failed": pi_failed,
    "charge.succeeded": charge,
    "charge.refunded": refunded,
    "charge.dispute.created": dispute,
    "customer.subscription.created": sub,
    "customer.subscription.updated": sub,
    "customer.subscription.deleted": sub_canceled,
    "customer.subscription.trial_will_end": sub_trial,
    "invoice.payment_failed": invoice,
    "invoice.paid": invoice_paid,
    "checkout.session.expired": session,
}


def event(etype, o, n):
    return {
        "id": "evt_sample_%02d_%s" % (n, etype.replace(".", "_")),
        "object": "event",
        "api_version": "2024-06-20",
        "created": T0 + n,
        "data": {"object": o},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": etype,
    }


def sign(body, t=T0 + 100):
    sig = hmac.new(SECRET.encode(), ("%d." % t).encode() + body.encode(), hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, sig)


def apigw_v2(body, domain="abc123.execute-api.us-east-1.amazonaws.com", route="POST /webhooks/stripe"):
    return {
        "version": "2.0",
        "routeKey": route,
        "rawPath": "/webhooks/stripe",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": sign(body),
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "host": domain,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": "POST", "path": "/webhooks/stripe", "protocol": "HTTP/1.1",
                     "sourceIp": "54.187.174.169", "userAgent": "Stripe/1.0"},
            "requestId": "sample-request",
            "routeKey": route,
            "stage": "$default",
            "time": "22/Nov/2025:08:28:20 +0000",
            "timeEpoch": (T0 + 100) * 1000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def function_url(body):
    req = apigw_v2(body, domain="abcdefghijklmnop.lambda-url.us-east-1.on.aws", route="$default")
    # Function URLs base64-encode bodies they consider binary; show that form.
    req["body"] = base64.b64encode(body.encode()).decode()
    req["isBase64Encoded"] = True
    return req


def apigw_v1(body):
    headers = {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": sign(body)}
    return {
        "resource": "/webhooks/stripe",
        "path": "/webhooks/stripe",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "abc", "stage": "prod", "requestId": "sample-request",
            "identity": {"sourceIp": "54.187.174.169"}, "resourcePath": "/webhooks/stripe",
            "httpMethod": "POST", "apiId": "abc123", "path": "/prod/webhooks/stripe",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def dump(path, value):
    path = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=False)
        f.write("\n")


def main():
    bodies = {}
    for n, (etype, o) in enumerate(EVENTS.items()):
        ev = event(etype, o, n)
        body = json.dumps(ev, separators=(",", ":"))
        bodies[etype] = body
        dump("stripe/%s.json" % etype, ev)
        dump("webhook/apigw-v2/%s.json" % etype, apigw_v2(body))
    dump("webhook/function-url/customer.created.json", function_url(bodies["customer.created"]))
    dump("webhook/apigw-v1/customer.created.json", apigw_v1(bodies["customer.created"]))
    records = []
    for i, etype in enumerate(["customer.created", "payment_intent.succeeded", "invoice.payment_failed"]):
        ev = json.loads(bodies[etype])
        records.append({
            "messageId": "0000000%d-sample" % i,
            "receiptHandle": "sample-receipt-%d" % i,
            "body": bodies[etype],
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str((T0 + 100) * 1000),
                           "SenderId": "AIDASAMPLE", "ApproximateFirstReceiveTimestamp": str((T0 + 101) * 1000)},
            "messageAttributes": {
                "event_id": {"stringValue": ev["id"], "dataType": "String", "stringListValues": [], "binaryListValues": []},
                "type": {"stringValue": etype, "dataType": "String", "stringListValues": [], "binaryListValues": []},
                "source": {"stringValue": "webhook", "dataType": "String", "stringListValues": [], "binaryListValues": []},
                "livemode": {"stringValue": "false", "dataType": "String", "stringListValues": [], "binaryListValues": []},
            },
            "md5OfBody": hashlib.md5(bodies[etype].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stripe-brevo-events",
            "awsRegion": "us-east-1",
        })
    dump("sqs/batch.json", {"Records": records})
    dump("schedule/scheduled.json", {
        "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2025-11-22T08:30:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/stripe-brevo-poller"], "detail": {},
    })
    dump("schedule/backfill.json", {"mode": "backfill", "since": "2023-01-01", "resources": ["customers", "charges", "subscriptions"]})


if __name__ == "__main__":
    main()
