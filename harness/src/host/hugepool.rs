//! The hugetlb pool a run needs, and the `/proc/meminfo` counters hugetlb scenarios observe.
//!
//! Invariant: one madcheck process at a time owns the pool (an exclusive flock on
//! /proc/sys/vm/nr_hugepages itself, so no lock file is left behind): the counters are global, so two
//! runs would see each other's pages, and two runs raising and restoring the value would leave it
//! changed. `vm.nr_hugepages` is raised only when the free, unreserved pool is too small, and the old
//! value is written back when the `HugePool` is dropped (the run ended, failed, was interrupted with one
//! ^C or SIGTERM, or panicked). Without the lock or the privilege to raise the pool, hugetlb scenarios
//! are unsupported with the reason; they never run against a pool that could run dry mid-scenario.
//! A run may wait a bounded time for the lock (`--wait-for-hugepool SECS`): the test suite does, so that
//! it holds while another madcheck run is on the machine.
//! The old value is written to the restore journal (`journal`) before the pool is raised, and the owner
//! of the lock puts back whatever a dead run's journal holds before anything else (`restored`).

use simulator::observe::HugeDelta;

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// Free, unreserved huge pages a run wants when a huge page is `hugetlb_pages` base pages: a hugetlb
/// scenario maps at most two 512-page slots of arena and two of file, with one private copy each (see
/// cases::generate), and scenarios run one at a time; smaller huge pages (ppc64 radix with 64K pages: 32
/// base pages) need proportionally more of them (`simulator::observe::pool_free_unreserved`).
pub fn want_unreserved(hugetlb_pages: u64) -> u64 {
    simulator::observe::pool_free_unreserved(hugetlb_pages) as u64
}

/// [`want_unreserved`] for this kernel's default huge page (`Hugepagesize` in /proc/meminfo) and page
/// size; the 4K-page answer (8) when there is no hugetlbfs.
pub fn want_unreserved_here() -> u64 {
    let kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("Hugepagesize:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    want_unreserved(kb * 1024 / page)
}

/// The `HugePages_*` lines of /proc/meminfo (default huge page size), in huge pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub total: i64,
    pub free: i64,
    pub rsvd: i64,
    pub surp: i64,
}

impl Counters {
    pub fn read() -> Result<Counters, String> {
        let text = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("read /proc/meminfo: {e}"))?;
        Counters::parse(&text).ok_or_else(|| "no HugePages_* lines in /proc/meminfo".to_string())
    }

    pub fn parse(text: &str) -> Option<Counters> {
        let field = |name: &str| -> Option<i64> {
            text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok())
        };
        Some(Counters {
            total: field("HugePages_Total:")?,
            free: field("HugePages_Free:")?,
            rsvd: field("HugePages_Rsvd:")?,
            surp: field("HugePages_Surp:")?,
        })
    }

    /// The change from `base` to `self`, as scenarios observe it.
    pub fn since(self, base: Counters) -> HugeDelta {
        HugeDelta { free: self.free - base.free, rsvd: self.rsvd - base.rsvd, surp: self.surp - base.surp }
    }
}

/// In a disposable guest only: raise `vm.nr_hugepages` again before a hugetlb scenario when fewer than
/// [`want_unreserved_here`] free, unreserved huge pages are left, because a destructive scenario before it may
/// have leaked some (hugetlb mremap leaves reservations counted until reboot). The guest is thrown away,
/// so nothing is written back.
pub fn top_up_in_guest() -> Result<(), String> {
    if !crate::host::guest::disposable_guest() {
        return Ok(());
    }
    let c = Counters::read()?;
    let short = want_unreserved_here() as i64 - (c.free - c.rsvd);
    if short > 0 {
        let total = std::fs::read_to_string(NR_HUGEPAGES).map_err(|e| format!("read {NR_HUGEPAGES}: {e}"))?;
        let total: i64 = total.trim().parse().map_err(|_| format!("{NR_HUGEPAGES}: {total:?} is not a number"))?;
        std::fs::write(NR_HUGEPAGES, format!("{}\n", total + short)).map_err(|e| format!("write {NR_HUGEPAGES}: {e}"))?;
    }
    Ok(())
}

/// The pool for one run. Dropping it restores `vm.nr_hugepages` if it was raised.
#[derive(Debug, Default)]
pub struct HugePool {
    /// The value to write back.
    restore: Option<i64>,
    /// The open /proc/sys/vm/nr_hugepages holding the exclusive flock (released on drop, after the
    /// restore).
    lock: Option<std::fs::File>,
    /// What the restore journal of a run that died put back when this run took the pool, one line each
    /// (for the user: the caller prints them).
    pub restored: Vec<String>,
}

/// Take the pool's lock without waiting: `Err` says why not.
#[cfg(test)]
fn lock_pool() -> Result<std::fs::File, String> {
    lock_pool_within(std::time::Duration::ZERO)
}

/// Take the pool's lock, waiting up to `wait` for another run to release it (polled every 20 ms: a
/// blocking flock could not be bounded without a signal). `Err` says why not.
fn lock_pool_within(wait: std::time::Duration) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(NR_HUGEPAGES).map_err(|e| format!("hugetlb: open {NR_HUGEPAGES}: {e}"))?;
    let deadline = std::time::Instant::now() + wait;
    let mut said = false;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(format!("hugetlb: flock {NR_HUGEPAGES}: {e}"));
        }
        if std::time::Instant::now() >= deadline {
            let waited = if wait.is_zero() { String::new() } else { format!(", still after waiting {} s", wait.as_secs()) };
            return Err(format!(
                "hugetlb: another madcheck run holds the huge page pool (flock on /proc/sys/vm/nr_hugepages{waited})"
            ));
        }
        if !said {
            eprintln!("madcheck: another madcheck run holds the huge page pool; waiting up to {} s for it", wait.as_secs());
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl HugePool {
    /// Make sure `want` free, unreserved huge pages exist. Returns the pool guard and, when hugetlb
    /// scenarios cannot run, why.
    pub fn prepare(want: u64) -> (HugePool, Option<String>) {
        HugePool::prepare_within(want, std::time::Duration::ZERO)
    }

    /// `prepare`, waiting up to `wait` for another run to release the pool.
    pub fn prepare_within(want: u64, wait: std::time::Duration) -> (HugePool, Option<String>) {
        let lock = match lock_pool_within(wait) {
            Ok(f) => Some(f),
            Err(why) => return (HugePool::default(), Some(why)),
        };
        // The pool's owner first undoes what a dead run left changed (its flock died with it).
        let restored = crate::host::journal::recover();
        let unavailable = |why: String| (HugePool { restore: None, lock: None, restored: restored.clone() }, Some(why));
        let before = match Counters::read() {
            Ok(c) => c,
            Err(e) => return unavailable(format!("hugetlb: {e}")),
        };
        let spare = before.free - before.rsvd;
        if spare >= want as i64 {
            return (HugePool { restore: None, lock, restored }, None);
        }
        let target = before.total + (want as i64 - spare);
        let cannot_raise = |e: std::io::Error| {
            format!(
                "hugetlb: cannot raise vm.nr_hugepages from {} to {target}: {e} (run as root, or reserve {want} \
                 free huge pages beforehand)",
                before.total
            )
        };
        // Opened first, so a run without the privilege says so rather than failing on the journal.
        let knob = match std::fs::OpenOptions::new().write(true).open(NR_HUGEPAGES) {
            Ok(f) => f,
            Err(e) => return unavailable(cannot_raise(e)),
        };
        // Write-ahead: the old value is on disk before the knob changes, so a SIGKILL cannot lose it.
        if let Err(e) = crate::host::journal::record(NR_HUGEPAGES, &before.total.to_string()) {
            return unavailable(format!("hugetlb: not raising vm.nr_hugepages: cannot write the restore journal: {e}"));
        }
        if let Err(e) = std::io::Write::write_all(&mut &knob, format!("{target}\n").as_bytes()) {
            let _ = crate::host::journal::forget(NR_HUGEPAGES);
            return unavailable(cannot_raise(e));
        }
        let pool = HugePool { restore: Some(before.total), lock, restored: restored.clone() };
        match Counters::read() {
            Ok(now) if now.free - now.rsvd >= want as i64 => (pool, None),
            Ok(now) => {
                let why = format!(
                    "hugetlb: vm.nr_hugepages={target} gave only {} free huge pages (memory too fragmented?)",
                    now.free - now.rsvd
                );
                drop(pool);
                unavailable(why)
            }
            Err(e) => {
                drop(pool);
                unavailable(format!("hugetlb: {e}"))
            }
        }
    }

    /// Whether this guard will write a value back.
    pub fn raised(&self) -> Option<i64> {
        self.restore
    }
}

impl Drop for HugePool {
    fn drop(&mut self) {
        if let Some(old) = self.restore.take() {
            match std::fs::write(NR_HUGEPAGES, format!("{old}\n")) {
                // Restored: the journal entry has done its job.
                Ok(()) => {
                    if let Err(e) = crate::host::journal::forget(NR_HUGEPAGES) {
                        eprintln!("madcheck: warning: {e}");
                    }
                }
                // Left in the journal, so the next run tries again.
                Err(e) => eprintln!("madcheck: warning: could not restore vm.nr_hugepages to {old}: {e}"),
            }
        }
        // Then let the next run have the pool.
        self.lock.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_at_a_time_owns_the_pool() {
        let Ok(first) = lock_pool() else { return };
        let second = lock_pool();
        assert!(second.as_ref().is_err_and(|w| w.contains("another madcheck run")), "{second:?}");
        // A bounded wait gives up with the reason once the time is over ...
        let t = std::time::Instant::now();
        let waited = lock_pool_within(std::time::Duration::from_millis(200));
        assert!(waited.as_ref().is_err_and(|w| w.contains("still after waiting")), "{waited:?}");
        assert!(t.elapsed() >= std::time::Duration::from_millis(200));
        // ... and takes the pool as soon as the owner lets go.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(first);
        });
        assert!(lock_pool_within(std::time::Duration::from_secs(60)).is_ok());
        releaser.join().unwrap();
        assert!(lock_pool().is_ok());
    }

    #[test]
    fn the_pool_scales_with_smaller_huge_pages() {
        // 4K pages, 2 MiB: 8 huge pages; ppc64 radix 64K pages, 2 MiB = 32 base pages: the same 4,096
        // base pages of huge memory are 128 huge pages (a 512-page private mapping reserves 16); hash
        // 64K, 16 MiB = 256 base pages: 16; huge pages of a slot or more, or none: 8.
        assert_eq!(want_unreserved(512), 8);
        assert_eq!(want_unreserved(32), 128);
        assert_eq!(want_unreserved(256), 16);
        assert_eq!(want_unreserved(2048), 8);
        assert_eq!(want_unreserved(0), 8);
    }

    #[test]
    fn parses_meminfo_and_takes_deltas() {
        let text = "MemTotal: 1 kB\nHugePages_Total:      16\nHugePages_Free:       15\nHugePages_Rsvd:        3\n\
                    HugePages_Surp:        0\nHugepagesize:       2048 kB\n";
        let c = Counters::parse(text).unwrap();
        assert_eq!(c, Counters { total: 16, free: 15, rsvd: 3, surp: 0 });
        let base = Counters { total: 16, free: 16, rsvd: 0, surp: 0 };
        assert_eq!(c.since(base), HugeDelta { free: -1, rsvd: 3, surp: 0 });
        assert_eq!(Counters::parse("MemTotal: 1 kB\n"), None);
    }
}
