//! `ticketsync demo`, black-box: the real binary on two free ports must finish on its own,
//! exit 0 and print the three outcomes (FAQ answer, customer_requested, missing_knowledge).

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;
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

#[test]
fn the_demo_runs_the_whole_flow_and_prints_every_outcome() {
    let port = free_port();
    let mut sim_port = free_port();
    while sim_port == port {
        sim_port = free_port();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticketsync"))
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--sim-port",
            &sim_port.to_string(),
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the ticketsync binary");
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
