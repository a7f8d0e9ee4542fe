//! One node's HTTP forward proxy (the node's `HTTP_PROXY`): every Freshdesk request the node
//! sends passes through it and is recorded with its arrival time, so a test can say which node
//! sent which request — the simulator alone only sees the agent key, which every node shares.
//!
//! It is HTTP-aware (one record per request, keep-alive or not) and forwards each request on
//! a task of its own, so a request whose client went away (killed, paused, timed out) is still
//! delivered and processed, as by a real Freshdesk front end.

use actix_web::dev::ServerHandle;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

/// One request a node sent to Freshdesk.
#[derive(Debug, Clone)]
pub struct ProxiedRequest {
    pub method: String,
    /// `127.0.0.1:PORT` of the simulator it was for.
    pub host: String,
    pub path: String,
    /// When the whole request had reached the proxy.
    pub at: SystemTime,
    /// The simulator's answer (`None` while in flight or when it could not be reached).
    pub status: Option<u16>,
}

impl ProxiedRequest {
    /// A request that changes something at Freshdesk.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

type Log = Arc<Mutex<Vec<ProxiedRequest>>>;

/// A running proxy on its own thread and actix system; dropping it stops it.
pub struct RecordingProxy {
    port: u16,
    log: Log,
    server: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl RecordingProxy {
    /// Listen on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let log = Log::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let state = log.clone();
        let thread = std::thread::Builder::new()
            .name("node-proxy".into())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let upstream = reqwest::Client::builder()
                        .no_proxy()
                        .build()
                        .expect("the proxy's upstream client");
                    let data = web::Data::new((state, upstream));
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                            .default_service(web::to(forward))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0))
                    .expect("the proxy binds");
                    let port = server.addrs()[0].port();
                    let server = server.run();
                    ready_tx
                        .send((server.handle(), port))
                        .expect("the test waits for the proxy");
                    let _ = server.await;
                });
            })
            .expect("the proxy thread starts");
        let (server, port) = ready_rx.recv().expect("the proxy started");
        Self {
            port,
            log,
            server,
            thread: Some(thread),
        }
    }

    /// The value of the node's `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.log.lock().expect("proxy log").clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        drop(self.server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Headers that belong to one hop, not to the request or response.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "proxy-connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
            | "proxy-authorization"
    )
}

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    data: web::Data<(Log, reqwest::Client)>,
) -> HttpResponse {
    let (log, upstream) = data.get_ref().clone();
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.to_string());
    let method = req.method().as_str().to_string();
    let index = {
        let mut log = log.lock().expect("proxy log");
        log.push(ProxiedRequest {
            method: method.clone(),
            host: host.clone(),
            path: req.path().to_string(),
            at: SystemTime::now(),
            status: None,
        });
        log.len() - 1
    };
    let mut request = upstream.request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method"),
        format!("http://{host}{path_and_query}"),
    );
    for (name, value) in req.headers() {
        if !hop_by_hop(name.as_str()) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let request = request.body(body.to_vec());
    // On a task of its own: it completes even when the node goes away meanwhile.
    let exchange = actix_rt::spawn(async move {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers: Vec<(String, Vec<u8>)> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        let bytes = response.bytes().await?;
        log.lock().expect("proxy log")[index].status = Some(status);
        Ok::<_, reqwest::Error>((status, headers, bytes))
    });
    match exchange.await {
        Ok(Ok((status, headers, bytes))) => {
            let mut response = HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status).expect("an HTTP status"),
            );
            for (name, value) in headers {
                if hop_by_hop(&name) {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(&value),
                ) {
                    response.append_header((name, value));
                }
            }
            response.body(bytes.to_vec())
        }
        _ => HttpResponse::BadGateway().finish(),
    }
}
