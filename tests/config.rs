//! The configuration file, black-box (SPEC §9): the real `ticketsync serve` binary started on a
//! partial `config.toml` must serve with the defaults of every key it omits, and a wrong value
//! must stop it with a non-zero exit and a message naming the key's dotted name and the file.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Starting takes well under a second once built; this only guards against a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// `ticketsync serve --config <dir>/config.toml` with `config` as the file, run in `dir`
/// without any `TICKETSYNC__*` override of the environment; killed on drop.
struct Serve {
    child: Child,
    stderr: PathBuf,
}

impl Serve {
    fn start(dir: &Path, config: &str) -> Self {
        let file = dir.join("config.toml");
        std::fs::write(&file, config).expect("config written");
        let stderr = dir.join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ticketsync"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("stderr file"));
        for (name, _) in std::env::vars() {
            if name.starts_with("TICKETSYNC__") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().expect("the ticketsync binary starts");
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The exit status, or `None` while it still runs.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll the service process")
    }

    /// Wait until the process exits; panics after [`TIMEOUT`].
    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service was expected to exit but still runs\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TOML string literal of `path`.
fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

#[tokio::test]
async fn a_file_with_only_a_server_and_a_storage_section_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"config-test-token\"\n\n\
         [storage]\npath = {}\n",
        toml_path(&dir.path().join("data"))
    );
    let mut serve = Serve::start(dir.path(), &config);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = serve.exited() {
            panic!("the service exited ({status})\n{}", serve.stderr());
        }
        if let Ok(response) = http.get(&url).send().await {
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /healthz answer within {TIMEOUT:?}\n{}",
            serve.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_wrong_value_exits_non_zero_naming_the_dotted_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\nadmin_token = \"config-test-token\"\n\n\
         [storage]\npath = {}\n\n\
         [engine]\nmax_ai_replies_per_ticket = \"ten\"\n",
        free_port(),
        toml_path(&dir.path().join("data"))
    );
    let mut serve = Serve::start(dir.path(), &config);
    let status = serve.wait_for_exit();
    let stderr = serve.stderr();
    assert!(!status.success(), "exit status {status}\n{stderr}");
    assert!(
        stderr.contains("engine.max_ai_replies_per_ticket"),
        "the key's dotted name is missing:\n{stderr}"
    );
    let file = dir.path().join("config.toml").display().to_string();
    assert!(
        stderr.contains(&file),
        "the file {file} is missing:\n{stderr}"
    );
}
