//! The configuration file, black-box (contract §9): the real `ticketsync serve` binary started on a
//! partial `config.toml` must serve with the defaults of every key it omits, and a wrong value
//! must stop it with a non-zero exit and a message naming the key's dotted name and the file.

use std::path::Path;
use std::time::{Duration, Instant};
use testkit::process::toml_string;
use testkit::{free_port, ServiceProcess};

/// Starting takes well under a second once built; this only guards against a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `ticketsync serve --config <dir>/config.toml` with `config` as the file, run in `dir`
/// without any `TICKETSYNC*` variable of the environment; killed on drop.
fn start_serve(dir: &Path, config: &str) -> ServiceProcess {
    let mut serve =
        ServiceProcess::new(env!("CARGO_BIN_EXE_ticketsync"), dir, config).config_only();
    serve.spawn();
    serve
}

/// A TOML string literal of `path`.
fn toml_path(path: &Path) -> String {
    toml_string(&path.display().to_string())
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
    let mut serve = start_serve(dir.path(), &config);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = serve.exited() {
            panic!("the service exited ({status})\n{}", serve.log());
        }
        if let Ok(response) = http.get(&url).send().await {
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /healthz answer within {TIMEOUT:?}\n{}",
            serve.log()
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
    let mut serve = start_serve(dir.path(), &config);
    let status = serve.wait_for_exit(TIMEOUT);
    let stderr = serve.log();
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
