//! A TCP proxy between a client and the broker that a test can cut, hold or make
//! refuse: connection losses on demand, with the broker itself left running.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// A proxy listening on `127.0.0.1:0`, forwarding to one upstream address.
pub struct Proxy {
    addr: SocketAddr,
    control: Arc<Control>,
    accept: JoinHandle<()>,
}

struct Control {
    links: Mutex<Vec<AbortHandle>>,
    refusing: AtomicBool,
    /// True: bytes from the broker are held back (the client hears nothing).
    hold: watch::Sender<bool>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let control = Arc::new(Control {
            links: Mutex::new(Vec::new()),
            refusing: AtomicBool::new(false),
            hold: watch::channel(false).0,
        });
        let accepting = Arc::clone(&control);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accepting.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let hold = accepting.hold.subscribe();
                let task = tokio::spawn(link(client, upstream, hold));
                accepting.links.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            control,
            accept,
        }
    }

    /// `amqp://guest:guest@PROXY/%2f`.
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Drops every proxied connection, on both sides, as a network failure would.
    pub fn cut(&self) {
        for link in self.control.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// While on, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.control.refusing.store(on, Ordering::SeqCst);
    }

    /// While on, nothing from the broker reaches the client (what the client sends
    /// still reaches the broker).
    pub fn hold_replies(&self, on: bool) {
        self.control.hold.send_replace(on);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn link(client: TcpStream, upstream: SocketAddr, hold: watch::Receiver<bool>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending ends the link, dropping both sockets.
    tokio::select! {
        () = pump(client_read, server_write, None) => {}
        () = pump(server_read, client_write, Some(hold)) => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut hold: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(hold) = &mut hold
            && hold.wait_for(|held| !held).await.is_err()
        {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
