//! Helpers the integration tests share: the hugetlb pool lock seen from outside a run, and the process
//! tree of a running madcheck read from /proc.
//!
//! One madcheck run at a time owns the hugetlb pool (an exclusive flock on /proc/sys/vm/nr_hugepages,
//! `harness/src/host/hugepool.rs`); another run on the machine (another engineer's, another test
//! binary's) must not make the tests fail, so they wait for the pool and read it inside the lock.

#![allow(dead_code)] // each test binary uses a part of it

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// How long a test waits for another run to let go of the pool (a 100,000-scenario run takes about 50 s).
pub const POOL_WAIT: Duration = Duration::from_secs(600);

/// Run `f` while holding the pool's lock, so no madcheck run has the pool raised meanwhile (an owner
/// writes the old value back before it lets go). Waits up to `POOL_WAIT` for the lock.
pub fn inside_pool_lock<T>(f: impl FnOnce() -> T) -> T {
    let file = std::fs::File::open(NR_HUGEPAGES).unwrap_or_else(|e| panic!("open {NR_HUGEPAGES}: {e}"));
    let deadline = Instant::now() + POOL_WAIT;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the hugetlb pool stayed locked by another run for {POOL_WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let v = f();
    drop(file); // releases the lock
    v
}

/// Whether process `pid` holds the pool's flock, from /proc/locks (read only: probing with flock could
/// take the lock from under a run that is just starting).
pub fn holds_pool_lock(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(NR_HUGEPAGES) else { return false };
    let ino = meta.ino();
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    // "1: FLOCK  ADVISORY  WRITE 1234 00:17:5678 0 EOF"
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 6
            && f[1] == "FLOCK"
            && f[4] == pid.to_string()
            && f[5].rsplit(':').next().and_then(|i| i.parse::<u64>().ok()) == Some(ino)
    })
}

/// Wait until `child` holds the pool's lock; false if it ended (or `limit` passed) first.
pub fn wait_until_it_holds_the_pool(child: &mut std::process::Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if holds_pool_lock(child.id()) {
            return true;
        }
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Fields of /proc/<pid>/stat after the command name: (state, ppid, pgrp, utime + stime).
pub fn stat(pid: u32) -> Option<(char, u32, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((state, num(1)? as u32, num(2)? as u32, num(11)? + num(12)?))
}

/// The children of `pid` (all its threads').
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.filter_map(|t| t.ok()) {
            if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every process on the machine whose process group is one of `groups`, with its stat fields.
pub fn in_groups(groups: &[u32]) -> Vec<(u32, char, u32, u32)> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.filter_map(|e| e.ok()) {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some((state, ppid, pgrp, _)) = stat(pid) {
                if groups.contains(&pgrp) {
                    out.push((pid, state, ppid, pgrp));
                }
            }
        }
    }
    out
}

/// Every global knob a run could touch, with its value (or why it could not be read).
pub fn read_knobs() -> Vec<(String, String)> {
    let mut paths: Vec<String> = [
        NR_HUGEPAGES,
        "/proc/sys/vm/nr_overcommit_hugepages",
        "/proc/sys/vm/max_map_count",
        "/proc/sys/vm/overcommit_memory",
        "/sys/kernel/mm/ksm/run",
        "/sys/kernel/mm/ksm/pages_to_scan",
        "/sys/kernel/mm/ksm/sleep_millisecs",
        "/sys/kernel/mm/ksm/merge_across_nodes",
        "/sys/kernel/mm/ksm/use_zero_pages",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/mm/transparent_hugepage/defrag",
        "/sys/kernel/mm/transparent_hugepage/use_zero_page",
        "/sys/kernel/mm/transparent_hugepage/shmem_enabled",
        "/sys/kernel/mm/transparent_hugepage/khugepaged/defrag",
        "/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Every huge page size's pool.
    if let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
        let mut sizes: Vec<String> = dir.filter_map(|e| e.ok()).map(|e| e.path().display().to_string()).collect();
        sizes.sort();
        for s in sizes {
            for f in ["nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages"] {
                paths.push(format!("{s}/{f}"));
            }
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let v = std::fs::read_to_string(&p).map(|s| s.trim().to_string()).unwrap_or_else(|e| format!("unreadable: {e}"));
            (p, v)
        })
        .collect()
}
