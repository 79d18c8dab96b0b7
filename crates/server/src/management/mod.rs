//! The management HTTP API: RabbitMQ-shaped JSON for the parts monitoring tools read
//! (`/api/overview`, `/api/queues`), and Prometheus metrics (`/metrics`).
//!
//! Read-only and served from snapshots: each request lists the vhosts' queues and asks
//! each queue task for its depth with a `Stats` command, which, unlike a declare,
//! does not count as a use of the queue (`x-expires`).

mod api;
mod json;
mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
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

/// Serves the API until shutdown.
pub(crate) async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
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
    if request.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let path = request.uri().path().to_owned();
    // Prometheus scrapers do not log in (RabbitMQ's metrics endpoint neither).
    if path == "/metrics" {
        let body = metrics::render(broker, &stats(broker).await);
        return reply(StatusCode::OK, "text/plain; version=0.0.4", body);
    }
    if !authorized(broker, peer, &request) {
        let mut response = error(StatusCode::UNAUTHORIZED, "Not_Authorized");
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"warren\""),
        );
        return response;
    }
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = match segments.as_slice() {
        ["api", "overview"] => api::overview(broker, &stats(broker).await),
        ["api", "queues"] | ["api", "queues", ""] => api::queues(&stats(broker).await, None),
        ["api", "queues", vhost] => {
            if !broker.vhosts().contains_key(*vhost) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            api::queues(&stats(broker).await, Some(vhost))
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
        ["api", "queues", vhost, name] => match api::queue(&stats(broker).await, vhost, name) {
            Some(body) => body,
            None => return error(StatusCode::NOT_FOUND, "Not Found"),
        },
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    };
    reply(StatusCode::OK, "application/json", body.to_string())
}

/// Every queue of every vhost with its stats, by vhost name then queue name.
pub(crate) struct Listing {
    pub(crate) queues: Vec<Listed>,
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
    Listing { queues }
}

/// HTTP basic auth by a broker user.
fn authorized(broker: &Broker, peer: SocketAddr, request: &Request<Incoming>) -> bool {
    let Some(credentials) = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
    else {
        return false;
    };
    let Some(colon) = credentials.iter().position(|b| *b == b':') else {
        return false;
    };
    let Ok(user) = std::str::from_utf8(&credentials[..colon]) else {
        return false;
    };
    broker
        .users()
        .authenticate(user, &credentials[colon + 1..], peer.ip())
        .is_ok()
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
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
