//! Shared by the benchmarks: the machine report, the real `ticketsync` binary as a child
//! process (with its resident memory and CPU time read from `/proc`), admin-API helpers, the
//! simulator, a closed-loop HTTP load generator and percentile/table helpers.
//!
//! Benchmarks measure and print; they never assert on timing.

#![allow(dead_code)]

use freshdesk_sim::{SimClient, SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{json_response, ServiceProcess};

// Each bench compiles this module on its own and uses only some of it.
#[allow(unused_imports)]
pub use testkit::{
    free_port, last_request_seq,
    sim::{AI_AGENT_ID, AI_KEY, FAQ_QUESTION},
};

/// The admin token every benchmarked service is started with.
pub const ADMIN_TOKEN: &str = "bench-admin-token";
/// The release binary cargo built for this bench (`target/release/ticketsync`).
pub const BINARY: &str = env!("CARGO_BIN_EXE_ticketsync");
/// The repository's configuration (the service's embedded defaults).
pub const CONFIG_TOML: &str = include_str!("../../config.toml");

/// Where benches keep their data directories (reused across runs where it saves time).
pub fn bench_data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("target/bench-data is writable");
    dir
}

/// A fresh temporary directory under `target/bench-data` (removed on drop).
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(bench_data_dir())
        .expect("temp dir")
}

/// An integer knob from the environment.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

/// A list of integers from the environment (`"0,100"`).
pub fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {s:?} is not a whole number"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
        .unwrap_or_else(|e| format!("({cmd}: {e})"))
}

/// What the numbers were measured on: printed at the top of every bench.
pub fn print_machine(bench: &str, command: &str) {
    println!("==== ticketsync benchmark: {bench} ====");
    println!("reproduce: {command}");
    println!("date:      {}", sh("date -u '+%Y-%m-%d %H:%M:%S UTC'"));
    println!(
        "commit:    {} {}",
        sh("git -C \"$CARGO_MANIFEST_DIR\" rev-parse --short HEAD 2>/dev/null || echo unknown"),
        sh("git -C \"$CARGO_MANIFEST_DIR\" status --porcelain 2>/dev/null | grep -q . && echo '(working tree modified)'")
    );
    println!("nproc:     {}", sh("nproc"));
    println!("lscpu:");
    for line in sh("lscpu | head -n 15").lines() {
        println!("  {line}");
    }
    println!("free -g:");
    for line in sh("free -g").lines() {
        println!("  {line}");
    }
    println!("loadavg:   {}", sh("cat /proc/loadavg"));
    println!();
}

/// The simulator on its own thread, with `rate_limit_per_min` credits per minute.
pub fn spawn_sim(rate_limit_per_min: u32) -> (SimHandle, SimClient) {
    let sim = freshdesk_sim::spawn(SimConfig {
        rate_limit_per_min,
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let client = sim.client();
    (sim, client)
}

// ------------------------------------------------------------------------------------------
// /proc

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clk_tck() -> f64 {
    sh("getconf CLK_TCK").parse().unwrap_or(100.0)
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`) or a count (`Threads`).
pub fn proc_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// User + system CPU seconds used so far by process `pid` (all its threads).
pub fn proc_cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the whole line.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clk_tck()
}

/// Counts the durability system calls of a process (all threads, including ones it starts
/// later) with `perf stat`, when perf and its syscall tracepoints are available. sled 0.34
/// makes its log durable with `sync_file_range` on Linux (`fsync` only when a segment or
/// snapshot is completed), so all three are counted.
pub struct FsyncCounter {
    child: Option<Child>,
    out: PathBuf,
}

impl FsyncCounter {
    /// Start counting for `pid` (None when perf is not usable).
    pub fn start(pid: u32, out: &Path) -> Self {
        let _ = std::fs::remove_file(out);
        if std::env::var("BENCH_NO_PERF").is_ok() {
            return Self {
                child: None,
                out: out.to_path_buf(),
            };
        }
        let child = Command::new("perf")
            .args([
                "stat",
                "-x",
                ",",
                "-e",
                "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_sync_file_range",
                "-o",
            ])
            .arg(out)
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        // perf needs a moment to attach to every thread.
        std::thread::sleep(Duration::from_millis(300));
        Self {
            child,
            out: out.to_path_buf(),
        }
    }

    /// Stop counting; the number of fsync + fdatasync + sync_file_range calls, if perf
    /// counted.
    pub fn stop(mut self) -> Option<u64> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&self.out).ok()?;
        let _ = std::fs::remove_file(&self.out);
        let mut total = None;
        for line in text.lines() {
            let mut cols = line.split(',');
            let value = cols.next().unwrap_or("");
            if line.contains("sys_enter_") {
                if let Ok(n) = value.trim().parse::<u64>() {
                    *total.get_or_insert(0) += n;
                }
            }
        }
        total
    }
}

/// A CPU profile of a process with `perf record` (for the profiling knobs of the benches).
pub struct PerfRecord(Option<Child>);

impl PerfRecord {
    /// Sample `pid` at 999 Hz into `out`, with call graphs (frame pointers are absent in
    /// release builds, so mostly leaf functions are meaningful).
    pub fn start(pid: u32, out: &Path) -> Self {
        let child = Command::new("perf")
            .args(["record", "-F", "999", "-g", "-o"])
            .arg(out)
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    /// Stop sampling and wait for perf to write its file.
    pub fn stop(mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------------------------------
// The service as a child process

/// `ticketsync serve` as a child process: its root directory holds `config.toml`, the data
/// directory `data/` and `stderr.log` (logs at the default level, `info`, unless `RUST_LOG`
/// is set for the bench); its resident memory and CPU time read from `/proc`.
pub struct Service(ServiceProcess);

impl Service {
    /// A service rooted at `root` (created if needed) that may call the simulator at
    /// `sim_host`; not started yet.
    pub fn new(root: &Path, sim_host: &str, extra_env: &[(&str, String)]) -> Self {
        let mut process = ServiceProcess::new(BINARY, root, CONFIG_TOML)
            .env("TICKETSYNC__SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                format!("[\"{sim_host}\"]"),
            );
        for (k, v) in extra_env {
            process = process.env(k, v.clone());
        }
        Self(process)
    }

    /// Point the service at another simulator (applies at the next `spawn`).
    pub fn set_sim_host(&mut self, sim_host: &str) {
        self.0.set_env(
            "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
            format!("[\"{sim_host}\"]"),
        );
    }

    /// Resident memory of the child, KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_field(self.pid(), "VmRSS").unwrap_or(0)
    }

    /// Peak resident memory of the child, KiB.
    pub fn hwm_kib(&self) -> u64 {
        proc_status_field(self.pid(), "VmHWM").unwrap_or(0)
    }

    /// Threads of the child.
    pub fn threads(&self) -> u64 {
        proc_status_field(self.pid(), "Threads").unwrap_or(0)
    }

    /// CPU seconds the child used so far.
    pub fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(self.pid())
    }
}

impl std::ops::Deref for Service {
    type Target = ServiceProcess;
    fn deref(&self) -> &ServiceProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Service {
    fn deref_mut(&mut self) -> &mut ServiceProcess {
        &mut self.0
    }
}

// ------------------------------------------------------------------------------------------
// Admin API

/// The admin API of a running service.
#[derive(Clone)]
pub struct Admin {
    pub http: reqwest::Client,
    pub base: String,
}

impl Admin {
    pub fn new(base: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base,
        }
    }

    /// Any admin request; (status, JSON body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        json_response(req.send().await.expect("admin request sent")).await
    }

    /// `POST /api/v1/orgs` → the org id.
    pub async fn create_org(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/orgs",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("org id").to_string()
    }

    /// `PUT …/freshdesk` for the simulator at `sim_host` with `extra` settings; the webhook
    /// URL (on this service's base URL).
    pub async fn connect(&self, org: &str, sim_host: &str, extra: Value) -> String {
        let mut settings = json!({"domain": sim_host, "api_key": AI_KEY});
        if let (Some(s), Value::Object(e)) = (settings.as_object_mut(), extra) {
            s.extend(e);
        }
        let (status, body) = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/orgs/{org}/freshdesk"),
                Some(settings),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let url = body["webhook_url"].as_str().expect("webhook_url");
        format!("{}{}", self.base, &url[url.find("/webhooks/").unwrap()..])
    }

    /// `GET /api/v1/inspect`.
    pub async fn inspect(&self) -> Value {
        self.call(reqwest::Method::GET, "/api/v1/inspect", None)
            .await
            .1
    }

    /// Wait until every webhook was delivered and the engine has nothing queued or pending,
    /// four polls in a row (bounded by `timeout`; returns whether it settled).
    pub async fn settle(&self, sim: &SimClient, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        while quiet < 4 {
            if Instant::now() > deadline {
                return false;
            }
            let delivered = sim
                .deliveries()
                .await
                .map(|d| {
                    d.iter()
                        .all(|d| d.dropped || d.status.is_some() || d.error.is_some())
                })
                .unwrap_or(false);
            let inspect = self.inspect().await;
            let idle = inspect["inbox_depth"] == 0 && inspect["pending_effects"] == 0;
            quiet = if delivered && idle { quiet + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }
}

// ------------------------------------------------------------------------------------------
// Closed-loop load generator

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

// ------------------------------------------------------------------------------------------
// Numbers

/// The `p`-th percentile (0–100) of sorted values (nearest rank); 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentile of f64 samples (sorted here).
pub fn percentile_f64(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A plain text table: a header row and rows of cells, columns padded to their widest cell
/// (the first column left-aligned, the others right-aligned).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(cell.chars().count());
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(width.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
    }
}

/// `x` with `d` decimals.
pub fn f(x: f64, d: usize) -> String {
    format!("{x:.d$}")
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The simulator, the release service and one org connected to it, with the simulator's
/// automation rules pointed at the service's webhook: the setup the end-to-end and credits
/// benches share. The data directory lives as long as this value.
pub struct ConnectedBench {
    pub sim: SimHandle,
    pub simc: SimClient,
    pub service: Service,
    pub admin: Admin,
    pub org: String,
    _root: tempfile::TempDir,
}

/// Start everything and connect; waits until the first-connect work has settled.
pub async fn connected_bench(prefix: &str, rate_limit: u32, settle: Duration) -> ConnectedBench {
    let (sim, simc) = spawn_sim(rate_limit);
    let root = temp_dir(prefix);
    let mut service = Service::new(root.path(), &sim.host(), &[]);
    service.spawn();
    let http = reqwest::Client::new();
    service.wait_ready(&http, Duration::from_secs(60)).await;
    let admin = Admin::new(service.base());
    let org = admin.create_org("Bench").await;
    let hook = admin.connect(&org, &sim.host(), json!({})).await;
    simc.set_webhook(&freshdesk_sim::WebhookConfig::to(hook))
        .await
        .expect("webhook set");
    admin.settle(&simc, settle).await;
    ConnectedBench {
        sim,
        simc,
        service,
        admin,
        org,
        _root: root,
    }
}
