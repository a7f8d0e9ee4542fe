//! `ticketsync demo`, black-box: the real binary on two free ports must finish on its own,
//! exit 0 and print the three outcomes (FAQ answer, customer_requested, missing_knowledge);
//! with `--keep-running` it prints the admin console's URL, serves it, and stops on Ctrl-C.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use testkit::free_port;
use testkit::process::wait_with_timeout;

/// The demo takes well under a second once built; this only guards against a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Read a child's pipe to the end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// `ticketsync demo` on two free ports with `extra` arguments, stdout and stderr piped; the
/// child and the service's port.
fn start_demo(extra: &[&str]) -> (Child, u16) {
    let port = free_port();
    let mut sim_port = free_port();
    while sim_port == port {
        sim_port = free_port();
    }
    let child = Command::new(env!("CARGO_BIN_EXE_ticketsync"))
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--sim-port",
            &sim_port.to_string(),
        ])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the ticketsync binary");
    (child, port)
}

#[test]
fn the_demo_runs_the_whole_flow_and_prints_every_outcome() {
    let (mut child, port) = start_demo(&[]);
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let status = wait_with_timeout(&mut child, TIMEOUT);
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let report = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");

    let status =
        status.unwrap_or_else(|| panic!("the demo did not finish in {TIMEOUT:?}\n{report}"));
    assert!(status.success(), "the demo failed: {status}\n{report}");
    for expected in [
        "reset your password",
        "customer_requested",
        "missing_knowledge",
    ] {
        assert!(
            stdout.contains(expected),
            "stdout lacks {expected:?}\n{report}"
        );
    }
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/api/v1/inspect")),
        "the URLs to explore are printed\n{report}"
    );
}

#[test]
fn the_demo_kept_running_prints_the_console_url_and_serves_the_sign_in_page() {
    let (mut child, port) = start_demo(&["--keep-running"]);
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let (lines, received) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });

    let console = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + TIMEOUT;
    let mut printed = Vec::new();
    let announced = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) if line.starts_with("Admin console: ") => break line,
            Ok(line) => printed.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the demo printed no console URL in {TIMEOUT:?}\n{}",
                    printed.join("\n")
                );
            }
        }
    };
    assert!(
        announced.contains(&console) && announced.contains("admin token demo-"),
        "the console URL and the demo's admin token: {announced}"
    );

    let page = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the HTTP client")
        .block_on(async {
            let response = reqwest::get(&console).await.expect("the console answers");
            let url = response.url().to_string();
            (
                response.status(),
                url,
                response.text().await.unwrap_or_default(),
            )
        });
    assert_eq!(page.0, reqwest::StatusCode::OK, "{page:?}");
    assert!(page.1.ends_with("/sign-in"), "{page:?}");
    assert!(page.2.contains("Admin token"), "{page:?}");

    // Ctrl-C stops both servers and the demo exits cleanly.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("send SIGINT");
    let status = wait_with_timeout(&mut child, TIMEOUT);
    reader.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| panic!("the demo ignored Ctrl-C\n{stderr}"));
    assert!(
        status.success(),
        "the demo failed on Ctrl-C: {status}\n{stderr}"
    );
}
