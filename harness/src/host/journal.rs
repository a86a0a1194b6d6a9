//! The restore journal: the old value of every global knob a run changes, written down *before* the
//! change, so a run that dies without restoring (SIGKILL, a second ^C, a power cut of the runner only)
//! is undone by the next run when it starts.
//!
//! Invariant: an entry exists for as long as the knob may differ from its recorded value: `record`
//! (write-ahead) precedes the write of the knob, `forget` follows the write back. The journal is read and
//! changed only by the owner of the hugetlb pool's flock (`hugepool`), so a run never restores a knob
//! under a live run that changed it. Only the knobs in `KNOBS` are ever written back: the journal is a
//! file in a shared directory and must not become a way to write anywhere as root.
//!
//! The file lives in `/run/madcheck/` (tmpfs: it goes at reboot, as the knobs' values do), or under
//! `$MADCHECK_RUN_DIR` when that is set. It is JSON: `[{"knob": PATH, "value": OLD, "pid": PID}]`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The knobs madcheck may change and so may put back: the hugetlb pool, KSM and THP.
pub const KNOBS: &[&str] = &["/proc/sys/vm/nr_hugepages", "/sys/kernel/mm/ksm/", "/sys/kernel/mm/transparent_hugepage/"];

/// Overrides the journal's directory (tests, or a system without /run).
pub const RUN_DIR_ENV: &str = "MADCHECK_RUN_DIR";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The knob's path (`/proc/sys/vm/nr_hugepages`).
    pub knob: String,
    /// The value to write back, as found before the first change.
    pub value: String,
    /// The run that changed it.
    pub pid: u32,
}

/// Where the journal is.
pub fn path() -> PathBuf {
    let dir = std::env::var_os(RUN_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/madcheck"));
    dir.join("restore-journal.json")
}

fn allowed(knob: &str) -> bool {
    !knob.contains("/../") && KNOBS.iter().any(|k| if k.ends_with('/') { knob.starts_with(k) } else { knob == *k })
}

/// The value to write back for what a knob reads as: sysfs choice knobs read `always [madvise] never`
/// and take the bracketed word.
pub fn knob_value(read: &str) -> String {
    let t = read.trim();
    match (t.find('['), t.find(']')) {
        (Some(a), Some(b)) if a < b => t[a + 1..b].to_string(),
        _ => t.to_string(),
    }
}

fn load(p: &Path) -> Result<Vec<Entry>, String> {
    match std::fs::read_to_string(p) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: not a restore journal: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: cannot read: {e}", p.display())),
    }
}

fn store(p: &Path, entries: &[Entry]) -> Result<(), String> {
    if entries.is_empty() {
        return match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: cannot remove: {e}", p.display())),
            _ => {
                // The directory too, when nothing else is in it: the machine is left as it was found.
                if let Some(dir) = p.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
                Ok(())
            }
        };
    }
    let dir = p.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(entries).map_err(|e| e.to_string())? + "\n";
    // Written whole and renamed, then synced: a crash leaves the old journal or the new one.
    let tmp = p.with_extension(format!("json.{}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot write: {e}", p.display())
    })
}

/// Note `knob`'s current value `old` before changing it. An entry already there for the knob (from a
/// run that died) keeps its older value: that is the one the machine had.
pub fn record(knob: &str, old: &str) -> Result<(), String> {
    if !allowed(knob) {
        return Err(format!("{knob} is not a knob madcheck may change"));
    }
    let p = path();
    let mut entries = load(&p)?;
    if !entries.iter().any(|e| e.knob == knob) {
        entries.push(Entry { knob: knob.to_string(), value: knob_value(old), pid: std::process::id() });
    }
    store(&p, &entries)
}

/// The knob has its recorded value again: drop its entry (and the file with the last one).
pub fn forget(knob: &str) -> Result<(), String> {
    let p = path();
    let mut entries = load(&p)?;
    entries.retain(|e| e.knob != knob);
    store(&p, &entries)
}

/// Put back every knob a dead run left changed. Returns one line per knob for the user (what was
/// restored, or why it could not be), and keeps the entries that could not be restored.
pub fn recover() -> Vec<String> {
    let p = path();
    let entries = match load(&p) {
        Ok(e) => e,
        Err(e) => return vec![format!("restore journal: {e} (left in place)")],
    };
    let mut lines = Vec::new();
    let mut kept = Vec::new();
    for e in entries {
        if !allowed(&e.knob) {
            lines.push(format!("restore journal {}: ignored {:?}: not a knob madcheck changes", p.display(), e.knob));
            continue;
        }
        let now = std::fs::read_to_string(&e.knob).map(|s| knob_value(&s)).unwrap_or_else(|err| format!("unreadable: {err}"));
        match std::fs::write(&e.knob, format!("{}\n", e.value)) {
            Ok(()) => lines.push(format!(
                "restored {} to {} (was {now}): left changed by madcheck run {} that did not finish (restore journal {})",
                e.knob,
                e.value,
                e.pid,
                p.display()
            )),
            Err(err) => {
                lines.push(format!("restore journal: cannot restore {} to {}: {err} (kept in {})", e.knob, e.value, p.display()));
                kept.push(e);
            }
        }
    }
    if let Err(e) = store(&p, &kept) {
        lines.push(format!("restore journal: {e}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_memory_knobs_may_be_restored() {
        assert!(allowed("/proc/sys/vm/nr_hugepages"));
        assert!(allowed("/sys/kernel/mm/ksm/run"));
        assert!(allowed("/sys/kernel/mm/transparent_hugepage/khugepaged/defrag"));
        assert!(!allowed("/etc/passwd"));
        assert!(!allowed("/proc/sys/vm/nr_hugepages_x"));
        assert!(!allowed("/sys/kernel/mm/ksm/../../../../etc/shadow"));
    }

    #[test]
    fn choice_knobs_give_the_selected_word() {
        assert_eq!(knob_value("always [madvise] never\n"), "madvise");
        assert_eq!(knob_value("16\n"), "16");
    }
}
