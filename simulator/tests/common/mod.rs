//! Test helpers: a simulator per test, a Freshdesk API client with Basic auth, a webhook
//! receiver, and polling with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine as _;
use freshdesk_sim::{spawn, SimClient, SimConfig, SimHandle};
use parking_lot::Mutex;
use serde_json::Value;

/// A running simulator and its control client.
pub struct TestSim {
    pub handle: SimHandle,
    pub control: SimClient,
}

impl TestSim {
    pub fn start() -> Self {
        Self::with(SimConfig::default())
    }

    pub fn with(config: SimConfig) -> Self {
        let handle = spawn(config).expect("simulator starts");
        let control = handle.client();
        TestSim { handle, control }
    }

    /// A Freshdesk API client authenticated with `key`.
    pub fn api(&self, key: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{}/api/v2", self.handle.base_url()),
            auth: Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{key}:X"))
            )),
        }
    }

    /// A Freshdesk API client without credentials.
    pub fn anonymous(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{}/api/v2", self.handle.base_url()),
            auth: None,
        }
    }
}

/// A minimal Freshdesk API client.
pub struct Api {
    http: reqwest::Client,
    base: String,
    auth: Option<String>,
}

/// An answer, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    }

    pub fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .parse()
            .expect("numeric header")
    }
}

impl Api {
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("simulator reachable");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body readable"),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
}

/// A webhook receiver: records every POST body and answers 500 to the first `fail_first`.
pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    fail_first: Arc<AtomicUsize>,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Self {
        Self::failing_first(0)
    }

    pub fn failing_first(failures: usize) -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let fail_first = Arc::new(AtomicUsize::new(failures));
        let (tx, rx) = std::sync::mpsc::channel();
        let (b, f) = (bodies.clone(), fail_first.clone());
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let (b, f) = (b.clone(), f.clone());
                    App::new().default_service(web::to(move |body: web::Bytes| {
                        let (b, f) = (b.clone(), f.clone());
                        async move {
                            let failing = f
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok();
                            if failing {
                                return HttpResponse::InternalServerError().finish();
                            }
                            let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                                Value::String(String::from_utf8_lossy(&body).into())
                            });
                            b.lock().push(value);
                            HttpResponse::Accepted().finish()
                        }
                    }))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("receiver binds");
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((server.handle(), port)).expect("test waits");
                let _ = server.await;
            });
        });
        let (server, port) = rx.recv().expect("receiver started");
        Receiver {
            url: format!("http://127.0.0.1:{port}/webhooks/freshdesk/test-token"),
            bodies,
            fail_first,
            server,
            thread: Some(thread),
        }
    }

    /// Bodies received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().clone()
    }

    /// Waits until at least `n` bodies arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        eventually(|| async { Some(self.bodies()).filter(|b| b.len() >= n) }).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `probe` until it returns `Some`, for at most 5 seconds.
pub async fn eventually<T, F, Fut>(mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `triggered_event` of each body.
pub fn events(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| {
            b["triggered_event"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}
