//! What a bench prints: the machine it ran on, percentiles and tables.

use super::sh;

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
    println!("service:   {}", super::service_binary());
    println!();
}

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
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
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
