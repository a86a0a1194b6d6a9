//! The worker's wire formats: the frames it sends (`Frame`), the commands a live child takes
//! (`ChildCmd`), and where frames go (`Out`). See the module doc of `worker` for the protocol.

use crate::host::sys;
use serde::{Deserialize, Serialize};
use simulator::observe::Observation;
use simulator::program::{Step, StepId};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// One message from the worker (or from a forked child to its parent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Frame {
    Point { id: StepId, obs: Observation },
    /// The end of one program. `error` is an infrastructure failure (the scenario says nothing);
    /// `poisoned` means the host left the model's scope during the scenario; `exiting` means the worker
    /// exits right after this frame (its arena window is dirty), so the runner replaces it at once.
    Done {
        poisoned: Option<String>,
        error: Option<String>,
        #[serde(default)]
        exiting: bool,
    },
}

/// The environment variable that asks the worker to pin itself to one CPU.
pub const CPU_ENV: &str = "MADCHECK_WORKER_CPU";

/// The first byte of a request frame that asks the worker to run the program in a fork()ed scenario
/// child (`Worker::submit_with`); a JSON text never starts with it.
pub const FORK_REQUEST: u8 = b'F';

/// The per-worker directory for disk files; the runner removes it if the worker dies.
pub fn temp_dir_for(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("madcheck-worker-{pid}"))
}

pub(super) const STDIN: RawFd = 0;
pub(super) const STDOUT: RawFd = 1;

/// The environment variable naming the worker's notify descriptor (the write end of a pipe whose read
/// end the runner polls instead of the frame pipe, `Proc::start`): the runner then wakes once per
/// program, not at every point. Without it (a worker started by hand or by a test) nothing is notified.
pub const NOTIFY_ENV: &str = "MADCHECK_NOTIFY_FD";

/// The notify descriptor, -1 for none (`init_notify`).
static NOTIFY_FD: AtomicI32 = AtomicI32::new(-1);
/// Frame bytes written to stdout since the last notify byte (by this process; a fork child inherits it).
static UNNOTIFIED: AtomicUsize = AtomicUsize::new(0);
/// Notify at the latest after this many frame bytes: half the frame pipe's capacity, so the frame pipe
/// never fills with bytes no notify byte announces (a worker blocked on it while the runner sleeps).
static NOTIFY_EVERY: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Take the notify descriptor from `NOTIFY_ENV` (checked open); `pipe_capacity` is the frame pipe's size.
pub(super) fn init_notify(pipe_capacity: usize) -> Result<(), String> {
    let Ok(text) = std::env::var(NOTIFY_ENV) else { return Ok(()) };
    let fd: RawFd = text.parse().map_err(|_| format!("{NOTIFY_ENV}={text:?} is not a descriptor number"))?;
    // SAFETY: F_GETFD only inspects the descriptor table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("{NOTIFY_ENV}={fd} is not an open descriptor"));
    }
    NOTIFY_EVERY.store((pipe_capacity / 2).max(1), Ordering::Relaxed);
    NOTIFY_FD.store(fd, Ordering::Relaxed);
    Ok(())
}

/// Write frame bytes to stdout, notifying the runner when half a pipe's worth has gone unannounced.
pub(super) fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    sys::write_all(STDOUT, bytes).map_err(|e| format!("write frame: {}", sys::strerror(e)))?;
    if UNNOTIFIED.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len() >= NOTIFY_EVERY.load(Ordering::Relaxed) {
        notify()?;
    }
    Ok(())
}

/// Wake the runner: everything written to stdout so far is there to read. The worker calls it after
/// every program's `Done` (whoever wrote it); the runner also wakes at EOF when the worker dies.
pub(super) fn notify() -> Result<(), String> {
    let fd = NOTIFY_FD.load(Ordering::Relaxed);
    UNNOTIFIED.store(0, Ordering::Relaxed);
    if fd < 0 {
        return Ok(());
    }
    sys::write_all(fd, b"n").map_err(|e| format!("write notify byte: {}", sys::strerror(e)))
}

/// Where frames go: stdout in the worker, a pipe in a forked child.
pub(super) struct Out {
    pub(super) fd: RawFd,
}

impl Out {
    pub(super) fn send(&self, f: &Frame) -> Result<(), String> {
        let bytes = super::codec::encode_framed(f)?;
        if self.fd == STDOUT {
            write_stdout(&bytes)?;
        } else {
            sys::write_all(self.fd, &bytes).map_err(|e| format!("write frame: {}", sys::strerror(e)))?;
        }
        if let Frame::Point { id, .. } = f {
            if self.fd == STDOUT {
                note_sent(*id);
            }
        }
        // Only the worker itself (stdout), never a fork child (a pipe), does an injected fault.
        if self.fd == STDOUT && matches!(f, Frame::Point { .. }) {
            super::faults::after_point();
        }
        Ok(())
    }
}

/// Where a scenario child (`program::run_forked`) records the last point it wrote to stdout: one
/// `MAP_SHARED` word made by the worker, so that the worker still knows it after the child died.
/// Encoding: 0 for none, else `(step + 1) | (child + 1) << 32` (child 0 meaning a top-level point).
static LAST_POINT: std::sync::atomic::AtomicPtr<std::sync::atomic::AtomicU64> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn note_sent(id: StepId) {
    let p = LAST_POINT.load(std::sync::atomic::Ordering::Relaxed);
    if !p.is_null() {
        let v = (id.step as u64 + 1) | (id.child.map_or(0, |c| c as u64 + 1) << 32);
        // SAFETY: `p` points into the shared page `last_point_word` mapped and never unmaps.
        unsafe { (*p).store(v, std::sync::atomic::Ordering::SeqCst) };
    }
}

/// The shared word (mapped on first use), reset to "no point yet".
pub(super) fn last_point_word() -> Result<&'static std::sync::atomic::AtomicU64, String> {
    let mut p = LAST_POINT.load(std::sync::atomic::Ordering::Relaxed);
    if p.is_null() {
        // SAFETY: a fresh anonymous shared page, outside the arena (the kernel picks the address below
        // mmap_base), kept for the worker's lifetime.
        let m = unsafe {
            libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
        };
        if m == libc::MAP_FAILED {
            return Err(format!("mmap the shared last-point word: {}", sys::strerror(sys::errno())));
        }
        p = m.cast();
        LAST_POINT.store(p, std::sync::atomic::Ordering::Relaxed);
    }
    // SAFETY: as above; an AtomicU64 at the start of a page is aligned.
    let w = unsafe { &*p };
    w.store(0, std::sync::atomic::Ordering::SeqCst);
    Ok(w)
}

/// Decode `last_point_word`'s value.
pub(super) fn decode_last_point(v: u64) -> Option<StepId> {
    (v != 0).then(|| StepId { step: (v & 0xffff_ffff) as u32 - 1, child: match v >> 32 { 0 => None, c => Some(c as u32 - 1) }, grandchild: None })
}

/// Why a program stopped: a scenario-level infrastructure error (reported in `Done`), or the output
/// stream is gone (the worker exits).
pub(super) enum Fatal {
    Scenario(String),
    Output(String),
}

/// One `in_child` step for the live child: the parent's step index (the point's id) and the step. With
/// `observe_with`, the parent made the call (process_madvise of the child): the child runs nothing and
/// observes itself with that return.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ChildCmd {
    pub(super) step: u32,
    pub(super) run: Step,
    #[serde(default)]
    pub(super) observe_with: Option<simulator::observe::Ret>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::program::{AdviceArg, Backing, FileKind, FileSpec, MapSpec, Program, Prot};

    #[test]
    fn program_round_trips_through_a_frame() {
        let m = MapSpec { page: 0, pages: 2, prot: Prot::RW, backing: Backing::FileShared { file: 0, offset: 3 }, populate: true, locked: false, noreserve: false };
        let p = Program {
            arena_pages: 4,
            files: vec![FileSpec { kind: FileKind::Memfd, pages: 4, readonly: false, sealing: false }],
            maps: vec![m.clone()],
            steps: vec![
                Step::Mmap { map: m },
                Step::Madvise { page: -1, offset: 5, len_pages: 2, len_bytes: -3, advice: AdviceArg::Raw(999) },
                Step::Fork { child: vec![Step::Read { page: 0 }, Step::Mlock { page: 0, pages: 1, onfault: true }] },
                Step::ForkLive,
                Step::InChild { step: Box::new(Step::Write { page: 1, fill: 3 }) },
                Step::ChildExit,
            ],
            word_bits: Some(32),
        };
        let j = sys::encode_frame(&p).unwrap();
        let back: Program = serde_json::from_slice(&j[4..]).unwrap();
        assert_eq!(back, p);
    }
}
