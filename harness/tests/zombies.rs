//! No zombie outlives a run: a worker that dies by a signal while a child of its scenario exists (a
//! `fork_live` child, a `fork` child) orphans that child, and the orphan's zombie must be reaped, not
//! left to an init that may never reap it (issue 16: about 1 per 1,200 generated scenarios).
//!
//! This test binary makes itself a child subreaper, so an orphan that escapes madcheck comes here (and
//! stays a zombie, since nothing here reaps it) instead of going to init, where it would vanish from
//! sight on a machine whose init reaps. Its own binary: the attribute must not affect other tests.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A scenario that orphans a live child for sure: the parent dies of SIGSEGV while the child lives.
const ORPHANING_CASE: &str = r#"{
  "id": "parent_dies_while_its_live_child_lives",
  "description": "the parent writes to a read-only page while a live child exists: SIGSEGV ends the parent, and its child is orphaned",
  "arena_pages": 4,
  "maps": [{"page": 1, "pages": 2, "prot": "r--", "kind": "anon_private"}],
  "steps": [
    {"op": "read", "page": 1},
    {"op": "fork_live"},
    {"op": "in_child", "step": {"op": "read", "page": 2}},
    {"op": "write", "page": 1, "fill": 7}
  ]
}
"#;

#[test]
fn no_zombie_is_left_after_a_generated_run() {
    // SAFETY: prctl with plain integer arguments, on this test process.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    let me = std::process::id();
    let dir = std::env::temp_dir().join(format!("madcheck-zombies-{me}"));
    std::fs::create_dir_all(&dir).unwrap();
    let case = dir.join("parent_dies_while_its_live_child_lives.json");
    std::fs::write(&case, ORPHANING_CASE).unwrap();
    let report = dir.join("r.json");
    let mut run = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--generate", "3000", "--seed", "1", "--quiet", "--findings", "none", "--case"])
        .arg(&case)
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("madcheck starts");
    let runner = run.id();
    // Every worker leads its own process group; what it forks stays in that group. Watch the run: the
    // workers seen, and the most zombie orphans (non-leaders of a worker's group) alive at one time.
    let mut workers: Vec<u32> = Vec::new();
    let mut most_zombies = 0;
    let start = Instant::now();
    while matches!(run.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(300) {
        for w in support::children(runner) {
            if support::stat(w).is_some_and(|(_, _, pgrp, _)| pgrp == w) && !workers.contains(&w) {
                workers.push(w);
            }
        }
        let zombies = support::in_groups(&workers).into_iter().filter(|&(pid, state, _, pgrp)| state == 'Z' && pid != pgrp).count();
        most_zombies = most_zombies.max(zombies);
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = run.wait_with_output().expect("madcheck ends");
    let text = std::fs::read_to_string(&report);
    let _ = std::fs::remove_dir_all(&dir);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let rep: serde_json::Value = serde_json::from_str(&text.expect("report")).expect("report JSON");
    assert_eq!(rep["scenarios"], 3001, "{stdout}");
    assert!(!workers.is_empty(), "no worker was seen");

    // Whatever is left of the run's process tree now: orphans that escaped to this process, anything
    // still in a worker's group.
    let left: Vec<String> = support::children(me)
        .into_iter()
        .filter_map(|pid| support::stat(pid).map(|s| (pid, s)))
        .map(|(pid, (state, ppid, pgrp, _))| format!("pid {pid} state {state} ppid {ppid} pgrp {pgrp} (child of this test)"))
        .chain(
            support::in_groups(&workers)
                .into_iter()
                .map(|(pid, state, ppid, pgrp)| format!("pid {pid} state {state} ppid {ppid} pgrp {pgrp} (in a worker's group)")),
        )
        .collect();
    assert!(left.is_empty(), "the run left {} processes behind ({} workers seen):\n{}", left.len(), workers.len(), left.join("\n"));
    // Orphans are reaped as the run goes (every progress tick), not piled up until the end.
    assert!(most_zombies <= 4, "{most_zombies} zombie orphans at once during the run");
    eprintln!("{} workers seen, at most {most_zombies} zombie orphans at once, none left", workers.len());
}
