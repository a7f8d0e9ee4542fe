//! `ticketsync serve` as a child process, for the tests and benches that need the real
//! binary (SIGKILL, resident memory, captured output, exit codes).

use reqwest::StatusCode;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `ticketsync serve --config <root>/config.toml`, run in `root`, not started until
/// [`spawn`](Self::spawn). Every `TICKETSYNC*` variable of the caller's environment is
/// removed; unless built with [`config_only`](Self::config_only), the listen address
/// (127.0.0.1 and a port chosen once, kept across restarts), the public URL and the storage
/// path (`<root>/data`) are set through the environment, then whatever [`env`](Self::env)
/// added. Each start appends to the stdout and stderr files (by default `<root>/stdout.log`
/// and `<root>/stderr.log`; stderr gets a `===== start N =====` line first). Dropping it
/// kills the child.
pub struct ServiceProcess {
    binary: PathBuf,
    root: PathBuf,
    port: u16,
    managed: bool,
    env: Vec<(String, String)>,
    stdout: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl ServiceProcess {
    /// A service of `binary` rooted at `root` (created if needed), with `config_toml`
    /// written as `<root>/config.toml`.
    pub fn new(binary: impl Into<PathBuf>, root: &Path, config_toml: &str) -> Self {
        std::fs::create_dir_all(root).expect("service root directory");
        std::fs::write(root.join("config.toml"), config_toml).expect("config.toml written");
        Self {
            binary: binary.into(),
            root: root.to_path_buf(),
            port: crate::free_port(),
            managed: true,
            env: Vec::new(),
            stdout: root.join("stdout.log"),
            stderr: root.join("stderr.log"),
            child: None,
            starts: 0,
        }
    }

    /// Set no listen address, public URL nor storage path: the file says everything.
    pub fn config_only(mut self) -> Self {
        self.managed = false;
        self
    }

    /// One more environment variable for every start (applied after the defaults, so it
    /// may replace one).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The storage backend of `TICKETSYNC_TEST_BACKEND` ([`crate::pg::TestBackend`]), a fixed
    /// admin token, and the simulator at `sim_host` allowed over plain HTTP: a service an
    /// admin client can connect to the simulator.
    pub fn against_simulator(mut self, sim_host: &str, admin_token: &str) -> Self {
        for (key, value) in crate::pg::TestBackend::from_env().overrides() {
            self = self.env(key, value);
        }
        self.env("TICKETSYNC__SERVER__ADMIN_TOKEN", admin_token)
            .env(
                "TICKETSYNC__FRESHDESK__INSECURE_HOSTS",
                format!("[\"{sim_host}\"]"),
            )
    }

    /// Where each start appends its stdout and stderr (the same file is fine).
    pub fn output_to(mut self, stdout: &Path, stderr: &Path) -> Self {
        self.stdout = stdout.to_path_buf();
        self.stderr = stderr.to_path_buf();
        self
    }

    /// Replace (or add) an environment variable, for the next start.
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data directory, `<root>/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The file the child's stderr goes to.
    pub fn log_path(&self) -> &Path {
        &self.stderr
    }

    /// How many times the binary was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Whether a child was started and not killed, stopped or found exited.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The child's pid (panics when not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the service is running").id()
    }

    /// Start the binary (not waiting for readiness).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the service is already running");
        self.starts += 1;
        let open = |path: &Path| -> File {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("an output file of the service")
        };
        let mut stderr = open(&self.stderr);
        let _ = writeln!(stderr, "===== start {} =====", self.starts);
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(self.root.join("config.toml"))
            .current_dir(&self.root);
        for (name, _) in std::env::vars() {
            if name.starts_with("TICKETSYNC") {
                command.env_remove(name);
            }
        }
        if self.managed {
            command
                .env(
                    "TICKETSYNC__SERVER__LISTEN",
                    format!("127.0.0.1:{}", self.port),
                )
                .env("TICKETSYNC__SERVER__PUBLIC_URL", self.base())
                .env(
                    "TICKETSYNC__STORAGE__PATH",
                    toml_string(&self.data_dir().display().to_string()),
                );
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(open(&self.stdout))
            .stderr(stderr);
        self.child = Some(command.spawn().expect("the ticketsync binary starts"));
    }

    /// Poll `GET /readyz` (5 ms apart) until it answers 200; how long that took. Panics,
    /// with the end of the log, when the child exits or `timeout` passes.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, timeout: Duration) -> Duration {
        let started = Instant::now();
        let url = format!("{}/readyz", self.base());
        loop {
            self.assert_alive();
            if let Ok(r) = http.get(&url).send().await {
                if r.status() == StatusCode::OK {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < timeout,
                "the service was not ready within {timeout:?}\n{}",
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The exit status if the child exited on its own (it is then no longer running).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("poll the child");
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Panic (with the end of the log) if the child exited on its own.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "the service exited on its own ({status})\n{}",
                self.log_tail(60)
            );
        }
    }

    /// Wait until the child exits on its own; panics (with the log) after `timeout`.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service was expected to exit but still runs\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the child (what `Child::kill` sends on Unix) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop gracefully (SIGINT, as Ctrl-C), SIGKILL after `grace`; whether it exited on its
    /// own within `grace`.
    pub fn stop(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The whole stderr file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The last `n` lines of the stderr file.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].join("\n");
        format!(
            "--- last {n} lines of {} ---\n{tail}",
            self.stderr.display()
        )
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Wait for `child` until `timeout`; kill it and return `None` when it is still running.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child process") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TOML basic string holding `s` (paths, in configuration values and overrides).
pub fn toml_string(s: &str) -> String {
    format!("{s:?}")
}
