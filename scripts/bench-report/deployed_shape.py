"""The deployed-shape section of BENCHMARKS.md (§7): backfills through the
three Lambda binaries (tests/tests/deployed_shape.rs, run by scripts/bench
with its DEPLOYED_SHAPE_* knobs), read from the test's `DEPLOYED_SHAPE`
lines. Used by report.py (the whole file) and by `report.py OUT DEST --only
deployed_shape`, which replaces only this section, its summary rows and its
appendix rows in an existing BENCHMARKS.md.
"""
import re

STEPS = ["deployed_shape_500", "deployed_shape_5000"]
HEADING = "## 7. Deployed shape: backfills through the Lambda binaries under account-wide budgets"
ROW_IDS = ("10", "10a", "10b", "10c", "10d")  # 10, 10a: the backfills; 10b Stripe; 10c Brevo


def kv(line):
    return dict(re.findall(r"(\w+)=(\"[^\"]*\"|[^\s{]+)", line))


def phases(text):
    """{phase: merged key/values of its DEPLOYED_SHAPE lines}."""
    out = {}
    for line in (text or "").splitlines():
        m = re.search(r"DEPLOYED_SHAPE (?:rates )?phase=(\w+) (.*)", line)
        if m:
            out.setdefault(m.group(1), {}).update(kv(m.group(2)))
    return out


def setup(text):
    m = re.search(r"DEPLOYED_SHAPE setup: (.*)", text or "")
    return m.group(1) if m else None


def num(d, k, cast=float):
    try:
        return cast(d[k].rstrip("s"))
    except (KeyError, ValueError, AttributeError):
        return None


def section(read, where, why_missing, meta):
    """(summary rows, section lines) from the step logs."""
    rows, w = [], []
    runs = {s: phases(read(s)) for s in STEPS}
    w.append(HEADING)
    w.append("")
    w.append(
        "Source `tests/tests/deployed_shape.rs`: the three release-shaped function binaries driven the way AWS drives "
        "them (a Lambda Runtime API emulator that kills a function at its deadline; the SQS event source mapping over "
        "moto with the template's batch size 100, 5 s window, `MaximumConcurrency` 2 and redrive after 5 receives; the "
        "poller on its schedule, every 20 s here instead of 5 min; the webhook fed API Gateway v2 events), against the "
        "sandboxes at a vendor's pace (Stripe 200 ± 50 ms, Brevo 120 ± 30 ms per request). **The vendors' limits are "
        "the account's**: the Stripe sandbox admits at most 25 requests in any second from all functions together "
        "(Stripe's test-mode limit) and the Brevo sandbox enforces the General plan per account (contacts and events "
        "10/s, orders 5/s). The functions take their parts from the template's `StripeRequestsPerSecond` 20 (the "
        "poller a tenth, 2 r/s; each of the 2 consumer instances 9 r/s) and of `connectors.brevo.rate_limits` 8/8/4 "
        "(4/4/2 per consumer), each paced with a burst of one request (`shared/src/wiring/budget.rs`). Backfill = from "
        "the test's start (seeding, the first poller run) until Brevo holds the state computed from Stripe for every "
        "customer and the queue is empty; then a round of 100 signed webhooks (about 300 events, the poller's copies "
        "merged). The backfill writes contacts by the asynchronous import (batches of at least 10 contacts), so it "
        "needs few Brevo requests; the webhooks phase writes by upsert and sends events. Stripe figures count the functions' requests only (the test's own checks use an observer key); the "
        "busiest second is the most requests that arrived within any one-second window.")
    w.append("")
    w.append("| customers | phase | converged | wall | consumer invocations | timeouts | DLQ | Stripe requests | Stripe r/s mean / busiest second / budget | Stripe 429 | Brevo requests | Brevo 429 (per 1,000) | command |")
    w.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for step in STEPS:
        ph = runs[step]
        if not ph:
            w.append(f"| {step.rsplit('_', 1)[1]} | — | {why_missing(step)} | | | | | | | | | | {where(step)} |")
            continue
        for name in ("backfill", "webhooks"):
            d = ph.get(name)
            if not d:
                continue
            w.append(
                f"| {d.get('customers', '?')} | {name} | {d.get('converged', '?')} | **{d.get('wall', '?')}** | "
                f"{d.get('consumer_invocations', '?')} | **{d.get('consumer_timeouts', '?')}** | **{d.get('dlq', '?')}** | "
                f"{d.get('stripe_account_requests', '?')} | {d.get('stripe_mean_rps', '?')} / **{d.get('stripe_peak_1s', '?')}** / "
                f"{d.get('stripe_budget', '?')} | {d.get('stripe_429', '?')} | {d.get('brevo_phase_requests', '?')} | "
                f"{d.get('brevo_phase_429', '?')} (**{d.get('brevo_429_per_1000', '?')}**) | {where(step)} |")
    w.append("")
    w.append(
        "Timeouts must be 0 and the DLQ empty (the test asserts both, and convergence). The busiest second may exceed "
        "the budget by one request per process (3) where a second begins or ends; the test asserts at most budget + 3 "
        "+ 1 for scheduling jitter (24, under Stripe's 25) and at most 5 Brevo 429s per 1,000 Brevo requests. The consumer invocation count includes the ones that found "
        "only copies already done (deduplicated). Wall times depend on the machine's load (shared, 2 cores; load "
        "average before → after is in the appendix); request counts depend on batch timing, not only on the data.")
    w.append("")
    for step in STEPS:
        s = setup(read(step))
        if s:
            w.append(f"<details><summary>{step}: the test's setup line</summary>\n\n```\n{s}\n```\n</details>\n")
    # summary rows
    for step, rid in zip(STEPS, ROW_IDS):
        d = runs[step].get("backfill")
        n = step.rsplit("_", 1)[1]
        if not d:
            rows.append((rid, f"Deployed shape: backfill of {n} customers", why_missing(step), "0 timeouts, empty DLQ", "—", step))
            continue
        ok = d.get("consumer_timeouts") == "0" and d.get("dlq") == "0" and d.get("converged") == "true"
        rows.append((rid, f"Deployed shape: backfill of {d.get('customers', n)} customers (wall, invocations, timeouts, DLQ)",
                     f"{d.get('wall')}, {d.get('consumer_invocations')} consumer invocations, {d.get('consumer_timeouts')} timeouts, DLQ {d.get('dlq')}",
                     "0 timeouts, empty DLQ", "yes" if ok else "**no**", step))
    peaks = [(s, p) for s in STEPS for p in runs[s].values() if p.get("stripe_peak_1s")]
    if peaks:
        worst = max(int(p["stripe_peak_1s"]) for _, p in peaks)
        budget = float(peaks[0][1].get("stripe_budget", "nan"))
        procs = int(peaks[0][1].get("stripe_processes", "0"))
        means = ", ".join(f"{p['stripe_mean_rps']}" for _, p in peaks)
        rows.append(("10b", "Stripe requests/s of all functions together: busiest second (mean per phase)",
                     f"{worst} (means {means})", f"≤ budget {budget:g} + {procs} + 1", "yes" if worst <= budget + procs + 1 else "**no**",
                     ", ".join(STEPS)))
    b = [(s, p) for s in STEPS for p in runs[s].values() if p.get("brevo_429_per_1000")]
    if b:
        per = ", ".join(f"{p['brevo_429_per_1000']} ({p['brevo_phase_429']} of {p['brevo_phase_requests']})" for _, p in b)
        worst = max(float(p["brevo_429_per_1000"]) for _, p in b)
        rows.append(("10c", f"Brevo 429s per 1,000 Brevo requests at {b[0][1].get('consumer_instances', '2')} consumer instances",
                     per, "≤ 5", "yes" if worst <= 5 else "**no**", ", ".join(STEPS)))
    return rows, w


def splice(existing, rows, section_lines, appendix_rows):
    """`existing` BENCHMARKS.md with this section, its summary rows and its
    appendix rows replaced (or inserted)."""
    lines = existing.splitlines()
    # summary rows: drop ours, insert after the last summary row.
    ours = re.compile(r"^\| (" + "|".join(ROW_IDS) + r") \|")
    lines = [l for l in lines if not ours.match(l)]
    start = next((i for i, l in enumerate(lines) if l.startswith("## Summary")), None)
    if start is not None:
        end = start + 1
        while end < len(lines) and (lines[end].startswith("|") or not lines[end].strip()) and not lines[end].startswith("## "):
            if lines[end].startswith("|"):
                last = end
            end += 1
        lines[last + 1:last + 1] = [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |" for r in rows]
    # the section: replace ours, else insert before the appendix.
    s = next((i for i, l in enumerate(lines) if l.startswith("## 7. Deployed shape")), None)
    if s is not None:
        e = next((i for i in range(s + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        del lines[s:e]
    else:
        s = next((i for i, l in enumerate(lines) if l.startswith("## Appendix")), len(lines))
    lines[s:s] = section_lines
    # appendix rows
    step_row = re.compile(r"^\| (" + "|".join(STEPS) + r") \|")
    lines = [l for l in lines if not step_row.match(l)]
    a = next((i for i, l in enumerate(lines) if l.startswith("## Appendix")), None)
    if a is not None:
        last = max((i for i in range(a, len(lines)) if lines[i].startswith("|")), default=a)
        lines[last + 1:last + 1] = appendix_rows
    return "\n".join(lines) + "\n"
