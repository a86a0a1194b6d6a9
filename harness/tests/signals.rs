//! Signals to the runner. SIGINT, SIGTERM and SIGHUP in the middle of a run end it through its own exit
//! path: exit code 1, a report with what was gathered (`complete: false`, `stopped_by`), the global
//! knobs as they were, no worker process and no temporary file left. A SIGKILL cannot be caught: the
//! raised hugetlb pool stays raised, and the next run finds the restore journal and puts it back first,
//! saying so; the journal restores KSM and THP knobs the same way.
//!
//! The tests in this file run one at a time: they share the hugetlb pool, the journal, and the check
//! that no process of this madcheck binary is left.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::NR_HUGEPAGES;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const JOURNAL: &str = "/run/madcheck/restore-journal.json";

/// A scratch directory (the run's TMPDIR, its report and stderr), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("madcheck-signals-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("tmp")).expect("create the scratch directory");
        Scratch(d)
    }
    /// What is left in the run's TMPDIR (worker directories, disk files).
    fn tmp_left(&self) -> Vec<String> {
        std::fs::read_dir(self.0.join("tmp")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"))
}

/// Every global knob a run could touch (`support::read_knobs`, the list global_state.rs checks).
fn snapshot() -> Vec<(String, String)> {
    support::read_knobs()
}

fn changed(before: &[(String, String)], after: &[(String, String)]) -> Vec<String> {
    before.iter().zip(after).filter(|(a, b)| a != b).map(|((p, a), (_, b))| format!("{p}: {a} -> {b}")).collect()
}

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_madcheck")
}

fn corpus() -> String {
    format!("{}/../cases/corpus", env!("CARGO_MANIFEST_DIR"))
}

/// Processes running this madcheck binary (the runner or its workers), other than `except`.
fn our_processes() -> Vec<u32> {
    let me = std::fs::canonicalize(exe()).unwrap();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == me) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits (up to 10 s) until no process of this binary is left, and returns the ones that stay.
fn processes_left() -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = our_processes();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A long run (every named case, hugetlb ones included, then 200,000 generated scenarios) with its
/// TMPDIR, report and stderr in `s`.
fn start_long_run(s: &Scratch) -> Child {
    Command::new(exe())
        .args(["run", "--quiet", "--findings", "none", "--generate", "200000", "--seed", "4", "--cases", &corpus(), "--report"])
        .arg(s.0.join("report.json"))
        .env("TMPDIR", s.0.join("tmp"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.0.join("stderr")).unwrap())
        .spawn()
        .expect("madcheck starts")
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("madcheck did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `cond` holds or `limit` passes; returns whether it held.
fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn stop_mid_run(sig: libc::c_int, name: &str) {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = snapshot();
    let s = Scratch::new(name);
    let mut child = start_long_run(&s);
    // Let it get going: results gathered and, where this machine lets it, the pool raised.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(child.try_wait().unwrap().is_none(), "the run ended before the signal");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    let status = wait_for(&mut child, Duration::from_secs(60));
    let err = std::fs::read_to_string(s.0.join("stderr")).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{name}: exit code (status {status:?}); stderr:\n{err}");
    assert!(err.contains(&format!("stopped by {name}")), "{name}: stderr does not say so:\n{err}");
    let text = std::fs::read_to_string(s.0.join("report.json")).expect("the report of the stopped run is written");
    let r: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    assert_eq!(r["complete"], false, "{name}");
    assert_eq!(r["interrupted"], true, "{name}");
    assert_eq!(r["stopped_by"], name, "{name}");
    assert_eq!(r["exit_code"], 1, "{name}");
    let (ran, planned) = (r["scenarios"].as_u64().unwrap(), r["scenarios_planned"].as_u64().unwrap());
    assert!(ran > 0 && ran < planned, "{name}: {ran} of {planned} scenarios in the report");
    assert_eq!(r["not_run"].as_u64(), Some(planned - ran), "{name}");
    assert_eq!(changed(&before, &snapshot()), Vec::<String>::new(), "{name}: the run left global state changed");
    assert_eq!(processes_left(), Vec::<u32>::new(), "{name}: madcheck processes left behind");
    assert_eq!(s.tmp_left(), Vec::<String>::new(), "{name}: temporary files left in the run's TMPDIR");
    assert!(!Path::new(JOURNAL).exists() || !read(JOURNAL).contains(&format!("\"pid\": {}", child.id())), "{name}: journal left");
}

#[test]
fn sigint_mid_run_writes_an_incomplete_report_and_restores_the_knobs() {
    stop_mid_run(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_mid_run_writes_an_incomplete_report_and_restores_the_knobs() {
    stop_mid_run(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_mid_run_writes_an_incomplete_report_and_restores_the_knobs() {
    stop_mid_run(libc::SIGHUP, "SIGHUP");
}

/// A quick run of one named case, whose start recovers the journal; returns its stderr.
fn next_run(s: &Scratch) -> String {
    let o = Command::new(exe())
        .args(["run", "--quiet", "--findings", "none", "--case"])
        .arg(format!("{}/dontneed_private_anon_reads_zero.json", corpus()))
        .env("TMPDIR", s.0.join("tmp"))
        .stdin(Stdio::null())
        .output()
        .expect("madcheck runs");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "the next run: {err}");
    err
}

#[test]
fn after_a_sigkill_the_next_run_restores_the_pool_from_the_journal() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = snapshot();
    let old = read(NR_HUGEPAGES);
    let s = Scratch::new("sigkill");
    let _recover = Recover;
    // The journal is written only when a run raises the pool: not when 8 free huge pages exist already.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let field = |name: &str| -> i64 {
        meminfo.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    if field("HugePages_Free:") - field("HugePages_Rsvd:") >= 8 {
        eprintln!("8 free huge pages exist already: no run raises the pool here, so there is no journal to test");
        return;
    }
    let mut attempts = 0;
    let mut child = loop {
        attempts += 1;
        let mut child = start_long_run(&s);
        if until(Duration::from_secs(20), || read(NR_HUGEPAGES) != old) {
            break child;
        }
        let _ = child.kill();
        let _ = child.wait();
        let err = std::fs::read_to_string(s.0.join("stderr")).unwrap_or_default();
        if err.contains("hugetlb: cannot raise") || err.contains("hugetlb: open") {
            eprintln!("this run may not change vm.nr_hugepages (not root?): no journal to test:\n{err}");
            assert!(!Path::new(JOURNAL).exists(), "a journal without a raised pool");
            return;
        }
        // Another madcheck run on this machine owns the pool: wait for it, a few times.
        assert!(
            err.contains("another madcheck run holds the huge page pool") && attempts < 5,
            "the run never raised vm.nr_hugepages (it was {old}; as root it must, unless 8 free huge pages exist):\n{err}"
        );
        std::thread::sleep(Duration::from_secs(5));
    };
    // Write-ahead: the journal holds the old value while the pool is raised.
    let journal = read(JOURNAL);
    assert!(journal.contains(NR_HUGEPAGES) && journal.contains(&format!("\"value\": \"{old}\"")), "journal: {journal}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
    // The workers see their stdin close and exit, removing their directories.
    assert_eq!(processes_left(), Vec::<u32>::new(), "workers outlived the SIGKILLed runner");
    assert_eq!(s.tmp_left(), Vec::<String>::new(), "temporary files left after the SIGKILL");
    let raised = read(NR_HUGEPAGES);
    assert_ne!(raised, old, "a SIGKILLed run cannot restore the pool; the journal must");
    let err = next_run(&s);
    let said = format!("restored {NR_HUGEPAGES} to {old} (was {raised}): left changed by madcheck run {}", child.id());
    assert!(err.contains(&said), "the next run does not say it restored the pool ({said}):\n{err}");
    assert!(!Path::new(JOURNAL).exists(), "the journal is gone once restored: {}", read(JOURNAL));
    assert!(!Path::new(JOURNAL).parent().unwrap().exists(), "its directory too");
    assert_eq!(changed(&before, &snapshot()), Vec::<String>::new(), "global state after the recovery");
}

/// Should the SIGKILL test fail half-way, a run's start puts the pool back from the journal.
struct Recover;

impl Drop for Recover {
    fn drop(&mut self) {
        if Path::new(JOURNAL).exists() {
            let _ = Command::new(exe())
                .args(["run", "--quiet", "--findings", "none", "--case"])
                .arg(format!("{}/dontneed_private_anon_reads_zero.json", corpus()))
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// Puts a knob back when dropped, should the test fail half-way.
struct Knob(&'static str, String);

impl Drop for Knob {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, format!("{}\n", self.1));
    }
}

#[test]
fn the_journal_restores_ksm_and_thp_knobs_too() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let knobs = ["/sys/kernel/mm/ksm/pages_to_scan", "/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan"];
    let mut guards = Vec::new();
    let mut entries = Vec::new();
    for k in knobs {
        let old = read(k);
        let n: u64 = old.parse().unwrap_or_else(|_| panic!("{k}: {old}"));
        guards.push(Knob(k, old.clone()));
        // A run that changed the knob and was killed: its journal entry, then the changed value.
        entries.push(serde_json::json!({ "knob": k, "value": old, "pid": 999_999 }));
        if let Err(e) = std::fs::write(k, format!("{}\n", n + 1)) {
            eprintln!("{k}: cannot change it ({e}; not root?): the journal's KSM/THP restore is not tested here");
            return;
        }
    }
    // Also an entry that names a file that is not a knob: never written.
    entries.push(serde_json::json!({ "knob": "/etc/madcheck-not-a-knob", "value": "x", "pid": 999_999 }));
    // Added to the journal already there, if any: its entries are a dead run's and must not be lost.
    let mut all: Vec<serde_json::Value> =
        std::fs::read_to_string(JOURNAL).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    all.extend(entries);
    std::fs::create_dir_all("/run/madcheck").unwrap();
    std::fs::write(JOURNAL, serde_json::to_string_pretty(&all).unwrap()).unwrap();
    let s = Scratch::new("knobs");
    let err = next_run(&s);
    for g in &guards {
        assert_eq!(read(g.0), g.1, "{} not restored:\n{err}", g.0);
        assert!(err.contains(&format!("restored {} to {}", g.0, g.1)), "{err}");
    }
    assert!(err.contains("ignored \"/etc/madcheck-not-a-knob\": not a knob madcheck changes"), "{err}");
    assert!(!Path::new("/etc/madcheck-not-a-knob").exists());
    assert!(!Path::new(JOURNAL).exists(), "the journal is gone once restored");
    assert!(!Path::new(JOURNAL).parent().unwrap().exists(), "its directory too");
}
