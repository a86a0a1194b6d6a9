//! The hugetlb pool a run needs, and the `/proc/meminfo` counters hugetlb scenarios observe.
//!
//! Invariant: one madcheck process at a time owns the pool (an exclusive flock on
//! /proc/sys/vm/nr_hugepages itself, so no lock file is left behind): the counters are global, so two
//! runs would see each other's pages, and two runs raising and restoring the value would leave it
//! changed. `vm.nr_hugepages` is raised only when the free, unreserved pool is too small, and the old
//! value is written back when the `HugePool` is dropped (the run ended, failed, was interrupted with one
//! ^C or SIGTERM, or panicked). Without the lock or the privilege to raise the pool, hugetlb scenarios
//! are unsupported with the reason; they never run against a pool that could run dry mid-scenario.

use simulator::observe::HugeDelta;

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// Free, unreserved huge pages a run wants: a hugetlb scenario maps at most two huge pages of arena and
/// two of file, with one private copy each (see cases::generate), and scenarios run one at a time.
pub const WANT_UNRESERVED: u64 = simulator::observe::POOL_FREE_UNRESERVED as u64;

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
/// `WANT_UNRESERVED` free, unreserved huge pages are left, because a destructive scenario before it may
/// have leaked some (hugetlb mremap leaves reservations counted until reboot). The guest is thrown away,
/// so nothing is written back.
pub fn top_up_in_guest() -> Result<(), String> {
    if !crate::host::guest::disposable_guest() {
        return Ok(());
    }
    let c = Counters::read()?;
    let short = WANT_UNRESERVED as i64 - (c.free - c.rsvd);
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
}

/// Take the pool's lock without waiting: `Err` says why not.
fn lock_pool() -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(NR_HUGEPAGES).map_err(|e| format!("hugetlb: open {NR_HUGEPAGES}: {e}"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            "hugetlb: another madcheck run holds the huge page pool (flock on /proc/sys/vm/nr_hugepages)".to_string()
        } else {
            format!("hugetlb: flock {NR_HUGEPAGES}: {e}")
        });
    }
    Ok(f)
}

impl HugePool {
    /// Make sure `want` free, unreserved huge pages exist. Returns the pool guard and, when hugetlb
    /// scenarios cannot run, why.
    pub fn prepare(want: u64) -> (HugePool, Option<String>) {
        let lock = match lock_pool() {
            Ok(f) => Some(f),
            Err(why) => return (HugePool::default(), Some(why)),
        };
        let before = match Counters::read() {
            Ok(c) => c,
            Err(e) => return (HugePool::default(), Some(format!("hugetlb: {e}"))),
        };
        let spare = before.free - before.rsvd;
        if spare >= want as i64 {
            return (HugePool { restore: None, lock }, None);
        }
        let target = before.total + (want as i64 - spare);
        if let Err(e) = std::fs::write(NR_HUGEPAGES, format!("{target}\n")) {
            return (
                HugePool::default(),
                Some(format!(
                    "hugetlb: cannot raise vm.nr_hugepages from {} to {target}: {e} (run as root, or reserve {want} \
                     free huge pages beforehand)",
                    before.total
                )),
            );
        }
        let pool = HugePool { restore: Some(before.total), lock };
        match Counters::read() {
            Ok(now) if now.free - now.rsvd >= want as i64 => (pool, None),
            Ok(now) => {
                let why = format!(
                    "hugetlb: vm.nr_hugepages={target} gave only {} free huge pages (memory too fragmented?)",
                    now.free - now.rsvd
                );
                drop(pool);
                (HugePool::default(), Some(why))
            }
            Err(e) => {
                drop(pool);
                (HugePool::default(), Some(format!("hugetlb: {e}")))
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
            if let Err(e) = std::fs::write(NR_HUGEPAGES, format!("{old}\n")) {
                eprintln!("madcheck: warning: could not restore vm.nr_hugepages to {old}: {e}");
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
        drop(first);
        assert!(lock_pool().is_ok());
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
