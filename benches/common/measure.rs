//! What a process costs: resident memory and CPU time from `/proc`, durability system calls
//! and CPU profiles with `perf`.

use super::sh;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// `perf <args> -o <out> -p <pids>` with its output silenced, given a moment to attach to
/// every thread of the processes; `None` when perf cannot be started.
fn perf_attach(args: &[&str], out: &Path, pids: &[u32]) -> Option<Child> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let child = Command::new("perf")
        .args(args)
        .arg("-o")
        .arg(out)
        .arg("-p")
        .arg(pids.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Counts the durability system calls of processes (all threads, including ones they start
/// later) with `perf stat`, when perf and its syscall tracepoints are available. sled 0.34
/// makes its log durable with `sync_file_range` on Linux (`fsync` only when a segment or
/// snapshot is completed), PostgreSQL with `fdatasync` (`wal_sync_method`), so all three are
/// counted.
pub struct FsyncCounter {
    child: Option<Child>,
    out: PathBuf,
}

impl FsyncCounter {
    /// Start counting for `pids` (counts nothing when perf is not usable).
    pub fn start(pids: &[u32], out: &Path) -> Self {
        let _ = std::fs::remove_file(out);
        if std::env::var("BENCH_NO_PERF").is_ok() {
            return Self {
                child: None,
                out: out.to_path_buf(),
            };
        }
        let child = perf_attach(
            &[
                "stat",
                "-x",
                ",",
                "-e",
                "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_sync_file_range",
            ],
            out,
            pids,
        );
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
        Self(perf_attach(&["record", "-F", "999", "-g"], out, &[pid]))
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
