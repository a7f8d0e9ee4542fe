//! A closed-loop HTTP load generator.

use super::percentile;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a load run observed.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// 2xx answers.
    pub ok: u64,
    /// Non-2xx answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors.
    pub errors: u64,
    /// Latency of every answered request (any status), microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

impl LoadResult {
    /// 2xx answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentile in milliseconds.
    pub fn p_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) as f64 / 1000.0
    }

    /// Non-2xx answers in all.
    pub fn non_2xx(&self) -> u64 {
        self.statuses.values().sum()
    }
}

/// `concurrency` clients, each sending its next request as soon as the previous one is
/// answered, until `duration` has passed or `max_requests` were sent. `make(n)` builds the
/// n-th request (n counts from 0 across all clients).
pub async fn closed_loop<F>(
    http: &reqwest::Client,
    concurrency: usize,
    duration: Duration,
    max_requests: u64,
    make: F,
) -> LoadResult
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (http, make, next) = (http.clone(), make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut part = LoadResult::default();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests {
                    break;
                }
                let t = Instant::now();
                match make(&http, n).send().await {
                    Ok(res) => {
                        let status = res.status();
                        let _ = res.bytes().await;
                        part.latencies_us.push(t.elapsed().as_micros() as u64);
                        if status.is_success() {
                            part.ok += 1;
                        } else {
                            *part.statuses.entry(status.as_u16()).or_default() += 1;
                        }
                    }
                    Err(_) => part.errors += 1,
                }
            }
            part
        }));
    }
    let mut total = LoadResult::default();
    for task in tasks {
        let part = task.await.expect("load task");
        total.ok += part.ok;
        total.errors += part.errors;
        for (s, n) in part.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        total.latencies_us.extend(part.latencies_us);
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// An HTTP client for load: one pooled connection per concurrent client, Nagle off.
pub fn load_client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}
