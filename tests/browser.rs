//! The admin console in a real browser: the real `ticketsync` binary and the Freshdesk
//! simulator, driven by `tests/browser/console.test.mjs` (Node's test runner and
//! `playwright-core` on Debian's Chromium, `/usr/bin/chromium`).
//!
//! This file only sets the stage: it starts the simulator in-process and the binary as a
//! child process (a known admin token, the simulator as an insecure host, the storage backend
//! of `TICKETSYNC_TEST_BACKEND`, a short self-test wait), then runs `node --test` with what the scenarios need in
//! its environment, forwards its output and fails when it fails. The screenshots land in
//! `target/console-screenshots/`.
//!
//! Without Node, `tests/browser/node_modules` (`npm ci --prefix tests/browser`) or Chromium it
//! prints `SKIPPED (browser): …` and passes, unless `TICKETSYNC_TEST_BROWSER_REQUIRED=1`
//! (set by `.ci/run`), which makes a missing piece a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::process::wait_with_timeout;
use testkit::ServiceProcess;

/// The operator token the service is started with.
const ADMIN_TOKEN: &str = "browser-admin-token-4b8e21";
/// How long the self-test waits for each rule's webhook: the scenario with Rule 2 switched off
/// waits this long for it.
const SELF_TEST_WAIT_SECS: u64 = 3;
/// The browser the scenarios drive (Debian's `chromium` package).
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a start of the service may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole browser run; the scenarios have their own, shorter deadlines.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn an_admin_walks_the_console_in_a_real_browser() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(missing) = missing_prerequisite(&package) {
        assert!(
            std::env::var("TICKETSYNC_TEST_BROWSER_REQUIRED").as_deref() != Ok("1"),
            "the browser test is required (TICKETSYNC_TEST_BROWSER_REQUIRED=1) but {missing}"
        );
        // Straight to stderr, past the test harness's capture, like testkit's PostgreSQL skips.
        let _ = writeln!(std::io::stderr(), "SKIPPED (browser): {missing}");
        return;
    }

    let sim = freshdesk_sim::spawn(freshdesk_sim::SimConfig::default()).expect("simulator starts");
    let dir = tempfile::Builder::new()
        .prefix("ticketsync-browser-")
        .tempdir()
        .expect("temp dir");
    let mut service = ServiceProcess::new(
        env!("CARGO_BIN_EXE_ticketsync"),
        dir.path(),
        include_str!("../config.toml"),
    )
    .against_simulator(&sim.host(), ADMIN_TOKEN)
    .env(
        "TICKETSYNC__SELF_TEST__WAIT_SECS",
        SELF_TEST_WAIT_SECS.to_string(),
    );
    service.spawn();
    let http = reqwest::Client::new();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to wait for readiness")
        .block_on(service.wait_ready(&http, READY_TIMEOUT));

    let screenshots = screenshot_dir();
    // Only this run's pages: a renamed scenario leaves no stale picture behind.
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).expect("the screenshot directory");
    println!("screenshots: {}", screenshots.display());
    let mut node = Command::new("node")
        .args([
            "--test",
            "--test-reporter=spec",
            "--test-reporter-destination=stdout",
            "console.test.mjs",
        ])
        .current_dir(&package)
        .env("CONSOLE_URL", service.base())
        .env("SIM_URL", sim.base_url())
        .env("SIM_DOMAIN", sim.host())
        .env("ADMIN_AGENT_KEY", freshdesk_sim::ADMIN_KEY)
        .env("PLAIN_AGENT_KEY", freshdesk_sim::AGENT_KEY)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOT_DIR", &screenshots)
        .spawn()
        .expect("node starts");
    let status = wait_with_timeout(&mut node, RUN_TIMEOUT);
    service.kill();
    let log = service.log_tail(80);
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("the browser scenarios failed ({status})\n{log}"),
        None => panic!("the browser scenarios did not finish in {RUN_TIMEOUT:?}\n{log}"),
    }
}

/// What keeps the scenarios from running here, with how to install it; `None` when
/// everything is in place.
fn missing_prerequisite(package: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|out| out.status.success()) {
        return Some("`node` (20 or later) is not on PATH: apt-get install nodejs npm".into());
    }
    if !package.join("node_modules/playwright-core").is_dir() {
        return Some(format!(
            "{} has no node_modules/playwright-core: npm ci --prefix tests/browser",
            package.display()
        ));
    }
    if !Path::new(CHROMIUM).is_file() {
        return Some(format!("{CHROMIUM} is missing: apt-get install chromium"));
    }
    None
}

/// `target/console-screenshots` (next to the test's temporary directory, `target/tmp`).
fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("console-screenshots")
}
