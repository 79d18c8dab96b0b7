//! The CLI's way to a running broker: its management HTTP API, one request per
//! connection, with basic auth by a broker user.

use std::net::SocketAddr;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// A running broker's management API.
pub struct ApiClient {
    addr: SocketAddr,
    authorization: String,
}

impl ApiClient {
    /// The API at `addr`, logging in as `user`.
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        ApiClient {
            addr,
            authorization: format!("Basic {token}"),
        }
    }

    /// `GET path`, as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, String> {
        self.call(Method::DELETE, path, None).await
    }

    /// `DELETE path` with a JSON body (a binding's arguments).
    pub async fn delete_with(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call(Method::DELETE, path, Some(body)).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let unreachable = |e: &dyn std::fmt::Display| {
            format!(
                "cannot reach the management API at {} ({e}); is the broker running, with \
                 [management] on? (--management-listen ADDR:PORT points elsewhere)",
                self.addr
            )
        };
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(connection);
        let payload = body.map(Value::to_string).unwrap_or_default();
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(AUTHORIZATION, &self.authorization)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| format!("bad request {path}: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("{method} {path}: the broker sent no JSON ({e})"))?
        };
        match status {
            s if s.is_success() => Ok(value),
            StatusCode::UNAUTHORIZED => Err(format!(
                "the broker refused the login (use --user and --password, or WARREN_USER and \
                 WARREN_PASSWORD): {}",
                reason(&value)
            )),
            s => Err(format!("{method} {path}: {s}: {}", reason(&value))),
        }
    }
}

/// The `reason` of RabbitMQ's error shape.
fn reason(value: &Value) -> String {
    value
        .get("reason")
        .and_then(Value::as_str)
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// A path segment with everything but unreserved characters percent-encoded (the
/// vhost `/` becomes `%2F`).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("/"), "%2F");
        assert_eq!(segment("orders.new-1_x~"), "orders.new-1_x~");
        assert_eq!(segment("a b/é"), "a%20b%2F%C3%A9");
    }
}
