//! Fault injection during a real run (`MADCHECK_INJECT_FAULTS=SEED`): one worker is SIGKILLed, one
//! SIGSTOPped (a hang) and one exits, each in the middle of a scenario. Every scenario still gets its
//! verdict (the disturbed ones re-run on a fresh worker and listed in `reruns` with the reason), the run
//! passes (exit 0), the report says which worker took which fault, and nothing is left behind: no
//! process of this binary, no file in the run's TMPDIR (worker directories, the fault tokens).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The check that no process of this binary is left must not see the other test's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_madcheck")
}

/// Processes running this madcheck binary.
fn our_processes() -> Vec<u32> {
    let me = std::fs::canonicalize(exe()).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            std::fs::read_link(e.path().join("exe")).ok().filter(|x| *x == me).map(|_| pid)
        })
        .collect()
}

#[test]
fn killed_stopped_and_exiting_workers_still_give_every_scenario_a_verdict() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = Scratch(std::env::temp_dir().join(format!("madcheck-faults-test-{}", std::process::id())));
    let tmp = s.0.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let report = s.0.join("report.json");
    let mut child = Command::new(exe())
        .args(["run", "--quiet", "--findings", "none", "--generate", "400", "--seed", "3", "--jobs", "2"])
        // The stopped worker is given up after 2 s instead of the default 10.
        .args(["--timeout-ms", "2000", "--report"])
        .arg(&report)
        .env("MADCHECK_INJECT_FAULTS", "7")
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("madcheck starts");
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the run did not end within 180 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();

    // Every fault happened, each to a worker.
    let faults: Vec<&str> = r["fault_injection"].as_array().expect("fault_injection").iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(faults.len(), 3, "{faults:?}");
    for (what, f) in ["SIGKILL", "SIGSTOP", "exit mid-scenario"].iter().zip(&faults) {
        assert!(f.starts_with(what) && f.contains(": worker "), "{what}: {f}");
    }
    assert!(err.contains("faults injected (MADCHECK_INJECT_FAULTS)"), "{err}");

    // Every scenario has its verdict, none lost to the faults.
    assert_eq!(r["scenarios"], 400);
    assert_eq!(r["scenarios_planned"], 400);
    assert_eq!(r["not_run"], 0);
    assert_eq!(r["complete"], true);
    assert_eq!(r["verdicts"]["infra_error"], 0, "{}", r["infra_errors"]);
    assert_eq!(r["verdicts"]["diverge"], 0, "{}", r["divergences"]);

    // Each disturbed scenario was re-run, with the reason.
    let reruns: Vec<String> = r["reruns"].as_array().unwrap().iter().map(|v| v["error"].as_str().unwrap().to_string()).collect();
    for why in ["the host run ended by signal SIGKILL", "the worker hung (timeout)", "worker exited (exit status: 75)"] {
        assert_eq!(reruns.iter().filter(|r| r.contains(why)).count(), 1, "{why:?} in {reruns:?}");
    }

    // Nothing left behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !our_processes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(our_processes(), Vec::<u32>::new(), "madcheck processes left behind");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "left in the run's TMPDIR: {left:?}");
}

#[test]
fn a_bad_fault_seed_is_bad_input() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let o = Command::new(exe())
        .args(["run", "--quiet", "--generate", "1"])
        .env("MADCHECK_INJECT_FAULTS", "many")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("MADCHECK_INJECT_FAULTS=\"many\": not a seed"), "{err}");
}
