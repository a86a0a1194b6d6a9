//! Fault injection, worker side (`MADCHECK_INJECT_FAULTS`, see `run::faults`): a worker that claims a
//! fault token does it to itself right after sending the first point of a scenario, so the runner sees
//! a worker that dies, hangs or exits in the middle of a scenario, as one broken from outside would.
//!
//! Invariant: each token (`kill`, `stop`, `exit` in the directory `FAULT_DIR_ENV` names) is claimed by
//! exactly one worker process, by renaming it (atomic), so each fault happens once per run whatever the
//! number of workers and replacements. Without the variable nothing here does anything.

use std::sync::atomic::{AtomicU8, Ordering};

/// The directory of fault tokens, set by the runner for its workers only when faults are injected.
pub const FAULT_DIR_ENV: &str = "MADCHECK_FAULT_DIR";

/// The fault this worker does after sending its next point (0: none).
static ARMED: AtomicU8 = AtomicU8::new(0);

const KINDS: [(&str, u8); 3] = [("kill", 1), ("stop", 2), ("exit", 3)];

/// The exit status of a worker that exits mid-scenario on purpose.
pub const EXIT_STATUS: i32 = 75;

/// Before a program of `points` observation points, having served `served` programs: claim a token
/// whose threshold this worker has reached (only for programs with at least two points, so the fault
/// lands between two of them).
pub(super) fn arm(served: u64, points: usize) {
    let Some(dir) = std::env::var_os(FAULT_DIR_ENV) else { return };
    if points < 2 || ARMED.load(Ordering::Relaxed) != 0 {
        return;
    }
    let dir = std::path::PathBuf::from(dir);
    for (name, code) in KINDS {
        let token = dir.join(name);
        let Some(after) = std::fs::read_to_string(&token).ok().and_then(|s| s.trim().parse::<u64>().ok()) else { continue };
        if served < after {
            continue;
        }
        if std::fs::rename(&token, dir.join(format!("{name}.claimed-{}", std::process::id()))).is_ok() {
            ARMED.store(code, Ordering::Relaxed);
            return;
        }
    }
}

/// Called by the worker after it sent a point to the runner.
pub(super) fn after_point() {
    match ARMED.swap(0, Ordering::Relaxed) {
        0 => {}
        // SAFETY: signalling ourselves; _exit ends the process without unwinding.
        1 => unsafe {
            libc::raise(libc::SIGKILL);
        },
        2 => unsafe {
            libc::raise(libc::SIGSTOP);
        },
        _ => unsafe { libc::_exit(EXIT_STATUS) },
    }
}

/// Is a fault armed for the current program? Such a program runs in the worker itself, never in a
/// scenario child, so the fault hits the worker as before.
pub(super) fn armed() -> bool {
    ARMED.load(Ordering::Relaxed) != 0
}
