//! A worker killed or stopped by someone else (the OOM killer, an administrator, a debugger) is an
//! infrastructure event, not a finding: the scenario it was running is re-run once on a fresh worker,
//! and only a signal or hang that happens again is reported as a divergence (issue 16). Tested from
//! outside the process, as it happens in real life: the workers are found through /proc and signalled
//! during a real run; madcheck has no hook for this.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One run at a time: two would share two CPUs and stretch the stop test's timeout.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Run {
    child: Child,
    report: std::path::PathBuf,
}

/// A failed assertion must not leave the run going or its report behind.
impl Drop for Run {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.report);
    }
}

fn start(tag: &str, args: &[&str]) -> Run {
    let report = std::env::temp_dir().join(format!("madcheck-outside-{tag}-{}.json", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--seed", "1", "--quiet", "--findings", "none", "--report"])
        .arg(&report)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("madcheck starts");
    Run { child, report }
}

impl Run {
    /// A worker in the middle of a scenario if one can be seen (one not blocked reading its next
    /// program, the way an idle worker or a pre-started spare waits), else any worker: a child of the
    /// runner that leads its own process group.
    fn busy_worker(&self) -> Option<u32> {
        let workers: Vec<u32> = support::children(self.child.id())
            .into_iter()
            .filter(|&p| support::stat(p).is_some_and(|(state, _, pgrp, _)| pgrp == p && state != 'Z' && state != 'T'))
            .collect();
        let idle = |p: u32| std::fs::read_to_string(format!("/proc/{p}/wchan")).is_ok_and(|w| w.contains("pipe_read"));
        workers.iter().copied().find(|&p| !idle(p)).or(workers.first().copied())
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait until the workers run scenarios. (A worker lives about 0.1 s: every scenario that ends in a
    /// signal on purpose replaces it.)
    fn wait_for_work(&mut self) {
        let start = Instant::now();
        loop {
            if self.busy_worker().is_some() && start.elapsed() > Duration::from_millis(300) {
                return;
            }
            assert!(self.running(), "madcheck ended before a worker could be signalled");
            assert!(start.elapsed() < Duration::from_secs(120), "no busy worker after 120 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait for the end; the exit code, the report and the output.
    fn finish(mut self) -> (Option<i32>, serde_json::Value, String) {
        // Both pipes drained while waiting, so a long output cannot block madcheck.
        fn drain(r: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut v);
                }
                v
            })
        }
        let (o, e) = (drain(self.child.stdout.take()), drain(self.child.stderr.take()));
        let status = self.child.wait().expect("madcheck ends");
        let out = std::process::Output { status, stdout: o.join().unwrap(), stderr: e.join().unwrap() };
        let text = std::fs::read_to_string(&self.report);
        let _ = std::fs::remove_file(&self.report);
        let shown = format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let text = text.unwrap_or_else(|e| panic!("no report ({e}); {shown}"));
        (out.status.code(), serde_json::from_str(&text).expect("report JSON"), shown)
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling a worker of the madcheck run this test started.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Every re-run is a scenario that matched on the fresh worker, and the run as a whole passed.
fn assert_reruns_matched(code: Option<i32>, rep: &serde_json::Value, shown: &str, why: &str) -> usize {
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(rep["verdicts"]["diverge"], 0, "{shown}");
    assert_eq!(rep["verdicts"]["infra_error"], 0, "{shown}");
    assert_eq!(rep["not_run"], 0, "{shown}");
    let reruns = rep["reruns"].as_array().expect("reruns is a list");
    assert!(!reruns.is_empty(), "no scenario was re-run; {shown}");
    for r in reruns {
        assert!(r["error"].as_str().unwrap_or("").contains(why), "{r}");
        assert!(!rep["divergences"].as_array().unwrap().iter().any(|d| d["scenario"] == r["scenario"]), "{r} diverged");
    }
    // The summary names them.
    assert!(shown.contains("did not happen again on a fresh worker"), "{shown}");
    reruns.len()
}

#[test]
fn a_worker_killed_from_outside_is_rerun_not_a_divergence() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut run = start("kill", &["--generate", "6000"]);
    run.wait_for_work();
    // A few kills, spaced out: a kill that lands between two scenarios just costs a fresh worker, one
    // that lands in a scenario must make it re-run.
    let mut kills = 0;
    while kills < 5 && run.running() {
        if let Some(w) = run.busy_worker() {
            signal(w, libc::SIGKILL);
            kills += 1;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(kills >= 1, "the run ended before a worker could be killed");
    let (code, rep, shown) = run.finish();
    let n = assert_reruns_matched(code, &rep, &shown, "signal SIGKILL");
    assert!(n <= kills, "{n} re-runs for {kills} kills");
    assert_eq!(rep["scenarios"], 6000, "{shown}");
}

#[test]
fn a_worker_stopped_from_outside_times_out_and_is_rerun() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut run = start("stop", &["--generate", "3000", "--timeout-ms", "3000"]);
    run.wait_for_work();
    let w = run.busy_worker().expect("a worker");
    signal(w, libc::SIGSTOP);
    let (code, rep, shown) = run.finish();
    assert_eq!(assert_reruns_matched(code, &rep, &shown, "hung (timeout)"), 1, "{shown}");
    assert_eq!(rep["scenarios"], 3000, "{shown}");
    // The stopped worker was killed (a stopped process takes SIGKILL) and reaped.
    assert!(support::stat(w).is_none(), "worker {w} is still there: {:?}", support::stat(w));
}
