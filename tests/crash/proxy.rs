//! A TCP proxy between the service and the simulator's API that behaves like a real
//! Freshdesk front end: a request whose client went away (killed, or timed out) is still
//! delivered and processed. (The simulator alone, being actix-web, may drop a handler whose
//! client disconnected, which hides the "write landed after its client gave up" case.)
//!
//! It forwards bytes unchanged, notes each request line it forwards, counts requests whose
//! response has not come back yet, and can hold chosen requests before forwarding them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the proxy forwarded.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// When it reached the proxy.
    pub at: Instant,
    /// How long it was held before being forwarded.
    pub held: Duration,
}

/// Which requests to hold, and for how long.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    pub method: String,
    /// Paths ending with this.
    pub path_suffix: String,
    pub hold: Duration,
    /// Hold only the first matching request of each path.
    pub first_per_path_only: bool,
}

#[derive(Default)]
struct Shared {
    seen: Vec<Seen>,
    in_flight: usize,
    hold: Option<Hold>,
}

/// The running proxy (on its own thread and runtime, so it outlives any test pause).
pub struct Proxy {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Proxy {
    /// Listen on a free port and forward every connection to `upstream` (`host:port`).
    pub fn start(upstream: String) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let port = std_listener.local_addr().expect("proxy addr").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("freshdesk-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("proxy listener");
                    loop {
                        tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => match accepted {
                                Ok((client, _)) => {
                                    tokio::spawn(connection(client, upstream.clone(), state.clone()));
                                }
                                Err(_) => return,
                            },
                        }
                    }
                });
            })
            .expect("proxy thread");
        Self {
            port,
            shared,
            stop: Some(stop),
        }
    }

    /// `127.0.0.1:PORT`: the "Freshdesk domain" to give the service.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests forwarded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().expect("proxy state").seen.clone()
    }

    /// Requests forwarded (or held) whose response has not arrived yet.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().expect("proxy state").in_flight
    }

    /// Hold matching requests from now on (None: hold nothing).
    pub fn set_hold(&self, hold: Option<Hold>) {
        self.shared.lock().expect("proxy state").hold = hold;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How long an orphaned upstream exchange is drained at most.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

async fn connection(client: TcpStream, upstream: String, shared: Arc<Mutex<Shared>>) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // This connection's requests without a response yet, and whether its client is gone.
    let pending = Arc::new(AtomicUsize::new(0));
    let client_closed = Arc::new(AtomicBool::new(false));

    // Client → upstream. When the client goes away the upstream write half is handed back
    // (not dropped: that would send a FIN) so the request already sent is still processed.
    let up = {
        let (pending, client_closed, shared) =
            (pending.clone(), client_closed.clone(), shared.clone());
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &buf[..n];
                let mut hold = Duration::ZERO;
                if let Some((method, path)) = request_line(chunk) {
                    let mut s = shared.lock().expect("proxy state");
                    if let Some(h) = s.hold.clone() {
                        let first = !s.seen.iter().any(|r| r.method == method && r.path == path);
                        if method == h.method
                            && path.ends_with(&h.path_suffix)
                            && (first || !h.first_per_path_only)
                        {
                            hold = h.hold;
                        }
                    }
                    s.in_flight += 1;
                    pending.fetch_add(1, Ordering::SeqCst);
                    s.seen.push(Seen {
                        method,
                        path,
                        at: Instant::now(),
                        held: hold,
                    });
                }
                if !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                }
                if server_write.write_all(chunk).await.is_err() {
                    break;
                }
            }
            client_closed.store(true, Ordering::SeqCst);
            server_write
        }
    };
    // Upstream → client; a response arriving marks its request answered. Writes to a client
    // that went away are dropped while the upstream keeps being drained.
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut client_gone = false;
        let mut closed_since: Option<Instant> = None;
        loop {
            let n =
                match tokio::time::timeout(Duration::from_millis(100), server_read.read(&mut buf))
                    .await
                {
                    Err(_) => {
                        if client_closed.load(Ordering::SeqCst) {
                            let since = *closed_since.get_or_insert_with(Instant::now);
                            if pending.load(Ordering::SeqCst) == 0 || since.elapsed() > DRAIN_LIMIT
                            {
                                break;
                            }
                        }
                        continue;
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => n,
                };
            if response_line(&buf[..n]) {
                let _ =
                    pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_sub(1));
                let mut s = shared.lock().expect("proxy state");
                s.in_flight = s.in_flight.saturating_sub(1);
            }
            if !client_gone && client_write.write_all(&buf[..n]).await.is_err() {
                client_gone = true;
            }
        }
    };
    let (_upstream_write, ()) = tokio::join!(up, down);
}

/// `METHOD /path` of a chunk that starts an HTTP/1.1 request.
fn request_line(chunk: &[u8]) -> Option<(String, String)> {
    let line_end = chunk.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&chunk[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/1") || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some((method.to_string(), path.to_string()))
}

/// Whether a chunk starts an HTTP/1.1 response.
fn response_line(chunk: &[u8]) -> bool {
    chunk.starts_with(b"HTTP/1.")
}
