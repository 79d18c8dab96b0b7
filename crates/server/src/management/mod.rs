//! The management HTTP API: RabbitMQ-shaped JSON for the parts monitoring tools and
//! scripts use (`/api/overview`, `/api/queues`, ...), the operations of
//! `operations.rs` (delete, purge, get, unbind, redrive), `/api/definitions`,
//! Prometheus metrics (`/metrics`), and a web page (`/`) that charts queue depth from
//! the API in the browser.
//!
//! Reads are served from snapshots: each request lists the vhosts' queues and asks
//! each queue task for its depth with a `Stats` command, which, unlike a declare,
//! does not count as a use of the queue (`x-expires`).
//!
//! Message counters are kept by each queue task (`QueueStats::counters`); their rates
//! come from one sampler task (`rates.rs`) that publishes them every 5 s. Channels are
//! described by their connection tasks and consumers by their queue tasks when asked
//! (`clients.rs`); broker-wide counts (unroutable messages, blocked connections) are
//! atomics in [`Monitoring`].

mod api;
mod clients;
mod definitions;
mod effective;
mod history;
mod json;
mod metrics;
mod monitoring;
mod operations;
mod rates;

pub use json::table as field_table_json;
pub(crate) use monitoring::{BlockedMark, Monitoring, UnroutableOutcome};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::policy::Resolved;
use crate::queue::{Command, QueueHandle, QueueStats};

/// The web page: plain HTML and JavaScript, no build step.
const PAGE: &str = include_str!("page.html");

/// Serves the API until shutdown.
pub(crate) async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
    tokio::spawn(rates::sample(broker.clone(), shutdown.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "management accept failed");
                    continue;
                }
            },
        };
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let broker = broker.clone();
                async move { Ok::<_, Infallible>(respond(&broker, peer, request).await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        debug!(peer = %peer, error = %e, "management connection ended");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

async fn respond(
    broker: &Broker,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    if ![Method::GET, Method::POST, Method::DELETE].contains(&method) {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let path = request.uri().path().to_owned();
    // The page holds no data: it logs in to the API itself.
    if path == "/" || path == "/index.html" {
        return reply(StatusCode::OK, "text/html; charset=utf-8", PAGE);
    }
    // Prometheus scrapers do not log in (RabbitMQ's metrics endpoint neither).
    if path == "/metrics" {
        let channels = clients::describe(broker).await;
        let channels = channels.iter().map(|d| d.channels.len()).sum();
        let body = metrics::render(broker, &stats(broker).await, channels);
        return reply(StatusCode::OK, "text/plain; version=0.0.4", body);
    }
    let Some(user) = authorized(broker, peer, &request) else {
        let mut response = error(StatusCode::UNAUTHORIZED, "Not_Authorized");
        // The challenge makes a browser ask for a login; the web page asks by itself
        // (a browser's dialog would block a headless one for good).
        if !request.headers().contains_key("x-requested-with") {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic realm=\"warren\""),
            );
        }
        return response;
    };
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if method != Method::GET {
        let query = request.uri().query().unwrap_or("").to_owned();
        let body = match Limited::new(request.into_body(), BODY_MAX).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("cannot read the body: {e}"),
                );
            }
        };
        return change(broker, &user, &method, &segments, &query, &body).await;
    }
    let samples = api::SamplesWanted::from_query(request.uri().query().unwrap_or(""));
    let body = match segments.as_slice() {
        ["api", "definitions"] => definitions::definitions(broker),
        ["api", "overview"] => {
            let channels = clients::describe(broker).await;
            let channels = channels.iter().map(|d| d.channels.len()).sum();
            api::overview(broker, &stats(broker).await, channels)
        }
        ["api", "channels"] | ["api", "channels", ""] => {
            clients::channels(&clients::describe(broker).await, None)
        }
        ["api", "vhosts", vhost, "channels"] if broker.vhosts().contains_key(*vhost) => {
            clients::channels(&clients::describe(broker).await, Some(vhost))
        }
        ["api", "consumers"] | ["api", "consumers", ""] => clients::consumers(broker, None).await,
        ["api", "consumers", vhost] if broker.vhosts().contains_key(*vhost) => {
            clients::consumers(broker, Some(vhost)).await
        }
        ["api", "queues"] | ["api", "queues", ""] => {
            api::queues(&stats(broker).await, None, samples)
        }
        ["api", "queues", vhost] => {
            if !broker.vhosts().contains_key(*vhost) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            api::queues(&stats(broker).await, Some(vhost), samples)
        }
        ["api", "exchanges"] | ["api", "exchanges", ""] => api::exchanges(broker, None),
        ["api", "exchanges", vhost] if broker.vhosts().contains_key(*vhost) => {
            api::exchanges(broker, Some(vhost))
        }
        ["api", "connections"] | ["api", "connections", ""] => api::connections(broker, None),
        ["api", "vhosts", vhost, "connections"] if broker.vhosts().contains_key(*vhost) => {
            api::connections(broker, Some(vhost))
        }
        ["api", "bindings"] | ["api", "bindings", ""] => api::bindings(broker, None),
        ["api", "bindings", vhost] if broker.vhosts().contains_key(*vhost) => {
            api::bindings(broker, Some(vhost))
        }
        ["api", "queues", vhost, name] => {
            match api::queue(&stats(broker).await, vhost, name, samples) {
                Some(body) => body,
                None => return error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    };
    reply(StatusCode::OK, "application/json", body.to_string())
}

/// The largest request body read.
const BODY_MAX: usize = 1 << 20;

/// The POST and DELETE endpoints.
async fn change(
    broker: &Broker,
    user: &str,
    method: &Method,
    segments: &[&str],
    query: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let target = |vhost, name| operations::Target {
        broker,
        user,
        vhost,
        name,
    };
    let done = match (method, segments) {
        (&Method::DELETE, ["api", "queues", vhost, name]) => {
            operations::delete_queue(&target(vhost, name), query).await
        }
        (&Method::DELETE, ["api", "queues", vhost, name, "contents"]) => {
            operations::purge(&target(vhost, name)).await
        }
        (
            &Method::DELETE,
            [
                "api",
                "bindings",
                vhost,
                "e",
                source,
                kind @ ("q" | "e"),
                destination,
                props,
            ],
        ) => {
            let to_queue = *kind == "q";
            operations::delete_binding(&target(vhost, source), to_queue, destination, props, body)
        }
        (&Method::DELETE, ["api", "exchanges", vhost, name]) => {
            operations::delete_exchange(&target(vhost, name), query)
        }
        (&Method::POST, ["api", "queues", vhost, name, "get"]) => {
            operations::get(&target(vhost, name), body).await
        }
        (&Method::POST, ["api", "queues", vhost, name, "redrive"]) => {
            operations::redrive(&target(vhost, name)).await
        }
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    };
    match done {
        Ok(value) => reply(StatusCode::OK, "application/json", value.to_string()),
        Err(refused) => error(
            StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST),
            &refused.reason,
        ),
    }
}

/// Every queue of every vhost with its stats, by vhost name then queue name.
pub(crate) struct Listing {
    pub(crate) queues: Vec<Listed>,
    /// Message rates of the last sampling interval.
    pub(crate) rates: Arc<rates::RateTable>,
}

/// One queue as monitoring sees it.
pub(crate) struct Listed {
    pub(crate) vhost: String,
    pub(crate) queue: QueueHandle,
    pub(crate) stats: QueueStats,
    /// What the vhost's policies set on it, and which policy set each key.
    pub(crate) policy: Resolved,
}

async fn stats(broker: &Broker) -> Listing {
    let mut queues = Vec::new();
    let all = broker.vhosts();
    let mut vhosts: Vec<_> = all.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    drop(all);
    vhosts.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, vhost) in vhosts {
        let mut handles: Vec<QueueHandle> = vhost.snapshot().queues.values().cloned().collect();
        handles.sort_by(|a, b| a.info.name.as_str().cmp(b.info.name.as_str()));
        let policies = vhost.policies();
        for queue in handles {
            // A queue that stopped meanwhile is left out.
            if let Some(stats) = queue.ask(|reply| Command::Stats { reply }).await {
                let policy = policies.resolve(&queue.info.name);
                queues.push(Listed {
                    vhost: name.clone(),
                    queue,
                    stats,
                    policy,
                });
            }
        }
    }
    Listing {
        queues,
        rates: broker.monitoring.rates(),
    }
}

/// HTTP basic auth by a broker user: the user's name.
fn authorized(broker: &Broker, peer: SocketAddr, request: &Request<Incoming>) -> Option<String> {
    let credentials = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })?;
    let colon = credentials.iter().position(|b| *b == b':')?;
    let user = std::str::from_utf8(&credentials[..colon]).ok()?;
    broker
        .users()
        .authenticate(user, &credentials[colon + 1..], peer.ip())
        .ok()
        .map(|_| user.to_owned())
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// RabbitMQ's error shape: `{"error": ..., "reason": ...}`.
fn error(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let error = status.canonical_reason().unwrap_or("error").to_lowercase();
    let body = serde_json::json!({ "error": error, "reason": reason });
    reply(status, "application/json", body.to_string())
}

/// Decodes `%2F` and friends in a path segment (the vhost `/` is `%2F`).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decode("%2F"), "/");
        assert_eq!(percent_decode("%2f"), "/");
        assert_eq!(percent_decode("orders%2Enew"), "orders.new");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
