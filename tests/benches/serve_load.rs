//! `stripe-brevo serve` throughput and latency for signed webhooks on
//! loopback: starts the release CLI binary (`--poll-interval 0`, a fresh
//! SQLite state file in a temp dir, Stripe and Brevo pointed at closed
//! loopback ports so nothing leaves the machine), then sends signed
//! `customer.subscription.updated` events (compact JSON, a unique event id
//! each) over C keep-alive HTTP/1.1 connections on 127.0.0.1, bounded both by
//! a request count and by a time limit. A 200 means the event was verified,
//! parsed and durably written to the local queue. Prints accepted events/s,
//! latency percentiles, the server's peak RSS (VmHWM) and its queue depth
//! afterwards (`status --json`). Figures are printed, never asserted.
//!
//! Run: `cargo build --release -p stripe-brevo && cargo bench -p e2e-tests --bench serve_load`
//! Knobs (env): STRIPE_BREVO_BIN (default target/release/stripe-brevo),
//! SERVE_LOAD_REQUESTS (20000), SERVE_LOAD_SECS (30), SERVE_LOAD_CONNS (16),
//! SERVE_LOAD_CLIENT_THREADS (1).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::domain::signature::sign_header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "whsec_serve_load_bench_0123456789";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One pre-built HTTP/1.1 request per event: unique id, signed now.
fn requests(n: usize, port: u16) -> (Vec<Vec<u8>>, usize) {
    let raw = std::fs::read_to_string(root().join("events/stripe/customer.subscription.updated.json")).unwrap();
    let mut v: Value = serde_json::from_str(&raw).unwrap();
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut size = 0;
    let out = (0..n)
        .map(|i| {
            v["id"] = Value::String(format!("evt_serve_load_{t}_{i:07}"));
            let body = serde_json::to_vec(&v).unwrap();
            size = body.len();
            let sig = sign_header(&[SECRET], t, &body);
            let mut req = format!(
                "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n\
                 Content-Type: application/json; charset=utf-8\r\nStripe-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(&body);
            req
        })
        .collect();
    (out, size)
}

/// Reads one HTTP/1.1 response (Content-Length or chunked body) and returns its status.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let body_start = end + 4;
            match len {
                Some(len) => {
                    while buf.len() < body_start + len {
                        let mut chunk = [0u8; 4096];
                        let n = s.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    buf.drain(..body_start + len);
                }
                None => {
                    // chunked: read until the terminating 0-size chunk.
                    while !buf[body_start..].windows(5).any(|w| w == b"0\r\n\r\n") {
                        let mut chunk = [0u8; 4096];
                        let n = s.read(&mut chunk).await?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let p = buf[body_start..].windows(5).position(|w| w == b"0\r\n\r\n").unwrap();
                    buf.drain(..body_start + p + 5);
                }
            }
            return Ok(status);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let n = env_num("SERVE_LOAD_REQUESTS", 20_000);
    let secs = env_num("SERVE_LOAD_SECS", 30);
    let conns = env_num("SERVE_LOAD_CONNS", 16).max(1);
    let client_threads = env_num("SERVE_LOAD_CLIENT_THREADS", 1).max(1);
    let bin = std::env::var("STRIPE_BREVO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/release/stripe-brevo"));
    assert!(bin.exists(), "{} not found: run `cargo build --release -p stripe-brevo` first", bin.display());

    let dir = std::env::temp_dir().join(format!("serve-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.db");
    let log = dir.join("serve.log");
    let port = closed_port();
    let dead_stripe = closed_port();
    let dead_brevo = closed_port();
    let mut child = Command::new(&bin)
        .args(["--state", state.to_str().unwrap(), "serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--poll-interval", "0"])
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("STRIPE_SECRET_KEY", "sk_test_serve_load_bench")
        .env("BREVO_API_KEY", "xkeysib-serve-load-bench")
        .env("STRIPE_API_BASE", format!("http://127.0.0.1:{dead_stripe}"))
        .env("BREVO_API_BASE", format!("http://127.0.0.1:{dead_brevo}"))
        .env_remove("CONNECTOR_CONFIG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("/webhooks/stripe"), "serve did not start: {line:?} (log {})", log.display());
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    println!("serve: {}", line.trim());
    let hwm_idle = vm_hwm_kb(pid);

    let (reqs, body_bytes) = requests(n, port);
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    let load_before = loadavg();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(client_threads).enable_all().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs as u64);
    let started = Instant::now();
    let results: Vec<(Vec<Duration>, [usize; 4])> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let reqs = Arc::clone(&reqs);
            let next = Arc::clone(&next);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                // [200, other status, io error, reconnects]
                let mut counts = [0usize; 4];
                let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = Vec::with_capacity(8192);
                loop {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= reqs.len() {
                        break;
                    }
                    let t0 = Instant::now();
                    let r = async {
                        s.write_all(&reqs[i]).await?;
                        read_response(&mut s, &mut buf).await
                    }
                    .await;
                    match r {
                        Ok(200) => {
                            lat.push(t0.elapsed());
                            counts[0] += 1;
                        }
                        Ok(_) => counts[1] += 1,
                        Err(_) => {
                            counts[2] += 1;
                            buf.clear();
                            s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                            s.set_nodelay(true).unwrap();
                            counts[3] += 1;
                        }
                    }
                }
                (lat, counts)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed();
    let load_after = loadavg();
    let hwm_loaded = vm_hwm_kb(pid);

    let mut lat: Vec<Duration> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    lat.sort();
    let mut counts = [0usize; 4];
    for (_, c) in &results {
        for (total, n) in counts.iter_mut().zip(c) {
            *total += n;
        }
    }
    let sent = counts[0] + counts[1] + counts[2];
    let bounded_by = if sent >= n { "request count" } else { "time limit" };

    // Graceful stop (SIGTERM to our own child), then read the queue depth.
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let stop = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if stop.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new(&bin)
        .args(["--state", state.to_str().unwrap(), "status", "--json"])
        .env("STRIPE_SECRET_KEY", "sk_test_serve_load_bench")
        .env("BREVO_API_KEY", "xkeysib-serve-load-bench")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok());
    let queue = status.as_ref().map(|s| {
        let q = s.get("queue").cloned().unwrap_or(Value::Null);
        q.to_string()
    });

    println!(
        "SERVE_LOAD requests_planned={n} time_limit_s={secs} connections={conns} client_threads={client_threads} body_bytes={body_bytes} \
         bounded_by=\"{bounded_by}\""
    );
    println!(
        "SERVE_LOAD accepted_200={} other_status={} io_errors={} elapsed_s={:.3} accepted_per_s={:.0}",
        counts[0],
        counts[1],
        counts[2],
        elapsed.as_secs_f64(),
        counts[0] as f64 / elapsed.as_secs_f64()
    );
    println!(
        "SERVE_LOAD latency_ms p50={:.3} p90={:.3} p99={:.3} p999={:.3} max={:.3}",
        pct(&lat, 0.50),
        pct(&lat, 0.90),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        lat.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN)
    );
    println!(
        "SERVE_LOAD server_vmhwm_kb idle={} after_load={}",
        hwm_idle.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
        hwm_loaded.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
    );
    println!("SERVE_LOAD loadavg before=\"{load_before}\" after=\"{load_after}\"");
    println!("SERVE_LOAD queue_after_stop={}", queue.unwrap_or_else(|| "unavailable".into()));
    let log_lines = std::fs::read_to_string(&log).map(|s| s.lines().count()).unwrap_or(0);
    println!("SERVE_LOAD server_log_lines={log_lines} (the server's stderr at the default log level)");
    let _ = std::fs::remove_dir_all(&dir);
}
