//! The C floor for `madcheck bench`: runs the compiled `scen_min` (bench/floor/README.md) on every CPU at
//! once and reads its `worker L4 lean` throughput, so madcheck's observed steps/s can be put against what
//! a minimal C worker does on the same machine in the same minute.
//!
//! Invariant: every floor process started here is killed and reaped before `run_floor` returns, also on
//! an error.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The line of `scen_min CPU SECS` that is the floor (a long-lived worker, 4 regions, lean observation).
const FLOOR_LINE: &str = "worker L4 lean";

/// What one floor measurement found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Floor {
    /// Observed calls/s per CPU, in CPU order.
    pub per_cpu: Vec<f64>,
    /// Their sum: the floor of the whole machine.
    pub total: f64,
    pub seconds: f64,
}

struct Reaped(Vec<Child>);
impl Drop for Reaped {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run `exe CPU SECS` on CPUs 0..cpus at the same time; each prints `cpuN worker L4 lean RATE` first.
pub fn run_floor(exe: &Path, cpus: usize, secs: f64) -> Result<Floor, String> {
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("floor seconds must be positive, not {secs}"));
    }
    let mut kids = Reaped(Vec::new());
    for cpu in 0..cpus {
        let c = Command::new(exe)
            .arg(cpu.to_string())
            .arg(format!("{secs}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run the floor {}: {e}", exe.display()))?;
        kids.0.push(c);
    }
    let mut per_cpu = Vec::new();
    for (cpu, c) in kids.0.iter_mut().enumerate() {
        let out = c.stdout.take().ok_or("floor started without a stdout pipe")?;
        let mut lines = BufReader::new(out).lines();
        let rate = loop {
            match lines.next() {
                None => return Err(format!("the floor on cpu {cpu} ended without a {FLOOR_LINE:?} line")),
                Some(Err(e)) => return Err(format!("reading the floor on cpu {cpu}: {e}")),
                Some(Ok(l)) => {
                    if let Some(rest) = l.strip_prefix(&format!("cpu{cpu} {FLOOR_LINE} ")) {
                        break rest.trim().parse::<f64>().map_err(|e| format!("floor line {l:?}: {e}"))?;
                    }
                }
            }
        };
        per_cpu.push(rate);
    }
    // The program goes on to measure other designs; they are not the floor.
    drop(kids);
    std::thread::sleep(Duration::from_millis(20));
    Ok(Floor { total: per_cpu.iter().sum(), per_cpu, seconds: secs })
}

/// Peak resident set of this process (the runner), in kB (getrusage's ru_maxrss). Not the children's:
/// under `cargo xtask bench` those include the C compiler that built the floor.
pub fn peak_rss_kb() -> u64 {
    // SAFETY: getrusage fills a zeroed struct.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss.max(0) as u64
    }
}

/// The 1-, 5- and 15-minute load averages (/proc/loadavg), as printed there.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
