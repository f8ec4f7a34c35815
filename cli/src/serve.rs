//! `stripe-brevo serve`: the connector on one machine.
//! - `POST /webhooks/stripe` answers exactly like the webhook Lambda (same
//!   `shared::pipeline::ingest::handle_webhook`; raw body bytes; a body over
//!   1 MiB is a JSON 413 like the Lambda's, never read whole into memory);
//! - a worker consumes the queue (receive → consumer → ack, or retry later);
//! - the poller runs every `--poll-interval`.
//!
//! Ctrl-C / SIGTERM: stop accepting, let the current batch finish (bounded),
//! exit. Killed at any point, nothing is lost: a message is deleted only
//! after the consumer is done with it, so unacknowledged ones become
//! visible again after the visibility timeout and are processed on restart.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::StreamExt;
use shared::config::ProcessEnv;
use shared::domain::signature::Verifier;
use shared::pipeline::ingest::{handle_webhook, WebhookRequest, WebhookResponse, MAX_BODY_BYTES};
use shared::ports::{EventQueue, SystemClock};
use shared::wiring::SignatureConfig;
use tokio::sync::{watch, Notify};

use crate::clients::{self, AppConsumer};
use crate::dry_run::CliBrevo;
use crate::queue::WorkQueue;
use crate::state::{Backend, StateChoice};
use crate::{poll, worker};

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port of the webhook endpoint.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Address to listen on (127.0.0.1: only this machine; put a tunnel or a
    /// reverse proxy with TLS in front for Stripe).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// How often the poller runs (e.g. 30s, 5m, 1h); 0 switches it off.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub poll_interval: String,
    /// Seconds a received message stays invisible before it is retried
    /// (after a crash, unacknowledged messages come back after this long).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub visibility_timeout: u64,
}

struct App {
    verifier: Verifier,
    queue: Arc<dyn EventQueue>,
    /// Wakes the worker when a webhook was queued.
    wake: Arc<Notify>,
}

pub async fn run(choice: StateChoice, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = clients::settings()?;
    let poll_every = shared::settings::parse_duration(&args.poll_interval)
        .with_context(|| format!("--poll-interval {:?}: use e.g. 30s, 5m, 1h (0 = off)", args.poll_interval))?;
    let visibility = i64::try_from(args.visibility_timeout.max(1)).unwrap_or(120);
    let backend = Backend::open(&choice, visibility).await?;
    let verifier = SignatureConfig::from_env(&ProcessEnv, &settings)?.verifier(backend.aws.as_ref()).await?;
    let stripe = clients::stripe_reader(&settings, backend.aws.clone()).await?;
    let stripe_client = stripe.client().clone();
    let brevo = CliBrevo::Real(clients::brevo_client(&settings, backend.aws.clone()).await?);
    let consumer = Arc::new(clients::consumer(settings.clone(), &backend, brevo, stripe, visibility, false));

    let wake = Arc::new(Notify::new());
    let app = Arc::new(App { verifier, queue: Arc::clone(&backend.queue), wake: Arc::clone(&wake) });
    let router = Router::new().route("/webhooks/stripe", any(webhook)).with_state(app);
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("--host {:?} --port {}", args.host, args.port))?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    println!("stripe-brevo serve: POST http://{local}/webhooks/stripe  (state: {})", backend.describe);
    println!(
        "worker: on; poller: {}",
        if poll_every.is_zero() { "off".to_owned() } else { format!("every {}", args.poll_interval) }
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let backend = Arc::new(backend);
    // Not spawned: the consumer's future is not `'static + Send`-provable
    // (higher-ranked closure lifetimes), so it runs in this task beside the signal.
    let worker = work_loop(Arc::clone(&backend.work), Arc::clone(&consumer), wake, stop_rx.clone());
    let poller_task = (!poll_every.is_zero()).then(|| {
        tokio::spawn(poll_loop(settings.clone(), Arc::clone(&backend), stripe_client, poll_every, stop_rx.clone()))
    });

    let mut server_stop = stop_rx.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|s| *s).await;
    });
    let server_task = tokio::spawn(async move { server.await });

    tokio::pin!(worker);
    tokio::select! {
        () = &mut worker => {},
        () = shutdown_signal() => {
            eprintln!("shutting down: finishing the current batch…");
            let _ = stop_tx.send(true);
            let grace = Duration::from_secs(30);
            if tokio::time::timeout(grace, &mut worker).await.is_err() {
                eprintln!("worker did not finish in {grace:?}; unacknowledged messages will be retried on the next start");
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(p) = poller_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), p).await;
    }
    match tokio::time::timeout(Duration::from_secs(5), server_task).await {
        Ok(Ok(Ok(()))) | Err(_) => {}
        Ok(Ok(Err(e))) => eprintln!("server stopped with an error: {e}"),
        Ok(Err(e)) => eprintln!("server task failed: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `POST /webhooks/stripe`.
async fn webhook(State(app): State<Arc<App>>, method: Method, headers: HeaderMap, body: Body) -> Response {
    let signature = headers.get("stripe-signature").map(|v| v.to_str().unwrap_or(""));
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    // Read at most one byte past the limit: enough for the use case to answer 413.
    let bytes = if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        vec![0u8; MAX_BODY_BYTES + 1]
    } else {
        let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(4096).min(MAX_BODY_BYTES + 1));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return to_response(WebhookResponse {
                    status: 400,
                    body: r#"{"error":"unreadable_body"}"#.to_owned(),
                    allow: None,
                });
            };
            let room = MAX_BODY_BYTES + 1 - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() > MAX_BODY_BYTES {
                break;
            }
        }
        buf
    };
    let answer = handle_webhook(
        &app.verifier,
        &app.queue,
        &SystemClock,
        WebhookRequest { method: method.as_str(), signature, body: &bytes },
    )
    .await;
    if answer.status == 200 {
        app.wake.notify_one();
    }
    to_response(answer)
}

fn to_response(answer: WebhookResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response();
    if let Some(allow) = answer.allow {
        resp.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    resp
}

/// Receives and consumes until told to stop (between batches).
async fn work_loop(
    queue: Arc<dyn WorkQueue>,
    consumer: Arc<AppConsumer>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut totals = worker::Totals::default();
    loop {
        if *stop.borrow() {
            break;
        }
        match queue.receive(worker::BATCH_SIZE).await {
            Ok(deliveries) if !deliveries.is_empty() => {
                if let Err(e) = worker::run_batch(queue.as_ref(), &consumer, &deliveries, &mut totals).await {
                    tracing::error!(cause = %format!("{e:#}"), "could not settle a batch; its messages will be retried");
                }
                if let Some(hint) = totals.key_refused.take() {
                    tracing::error!("{hint}; messages are retried and end in the dead-letter queue if it is not fixed");
                }
            }
            Ok(_) => {
                tokio::select! {
                    () = wake.notified() => {},
                    () = tokio::time::sleep(Duration::from_secs(1)) => {},
                    _ = stop.changed() => {},
                }
            }
            Err(e) => {
                tracing::error!(cause = %format!("{e:#}"), "could not receive from the queue; retrying in 2 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {},
                    _ = stop.changed() => {},
                }
            }
        }
    }
}

/// Runs a poller pass at once, then every `every`.
async fn poll_loop(
    settings: Arc<shared::settings::Settings>,
    backend: Arc<Backend>,
    stripe: shared::adapters::stripe::StripeClient,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let opts = poll::PassOptions::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let pb = indicatif::ProgressBar::hidden();
        let pass = poll::run_once(&settings, &backend, stripe.clone(), &opts, &pb);
        tokio::select! {
            res = pass => match res {
                Ok(report) => tracing::info!(objects = report.objects(), messages = report.messages(), "poller pass done"),
                Err(e) => tracing::warn!(cause = %format!("{e:#}"), "poller pass failed; next one at the next tick"),
            },
            // Pages are checkpointed: stopping mid-pass resumes next time.
            _ = stop.changed() => break,
        }
    }
}
