//! The worker's wire formats: the frames it sends (`Frame`), the commands a live child takes
//! (`ChildCmd`), and where frames go (`Out`). See the module doc of `worker` for the protocol.

use crate::host::sys;
use serde::{Deserialize, Serialize};
use simulator::observe::Observation;
use simulator::program::{Step, StepId};
use std::os::fd::RawFd;
use std::path::PathBuf;

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

/// The per-worker directory for disk files; the runner removes it if the worker dies.
pub fn temp_dir_for(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("madcheck-worker-{pid}"))
}

pub(super) const STDIN: RawFd = 0;
pub(super) const STDOUT: RawFd = 1;

/// Where frames go: stdout in the worker, a pipe in a forked child.
pub(super) struct Out {
    pub(super) fd: RawFd,
}

impl Out {
    pub(super) fn send(&self, f: &Frame) -> Result<(), String> {
        let bytes = sys::encode_frame(f)?;
        sys::write_all(self.fd, &bytes).map_err(|e| format!("write frame: {}", sys::strerror(e)))?;
        // Only the worker itself (stdout), never a fork child (a pipe), does an injected fault.
        if self.fd == STDOUT && matches!(f, Frame::Point { .. }) {
            super::faults::after_point();
        }
        Ok(())
    }
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
        let m = MapSpec { page: 0, pages: 2, prot: Prot::RW, backing: Backing::FileShared { file: 0, offset: 3 }, populate: true, locked: false };
        let p = Program {
            arena_pages: 4,
            files: vec![FileSpec { kind: FileKind::Memfd, pages: 4, readonly: false }],
            maps: vec![m.clone()],
            steps: vec![
                Step::Mmap { map: m },
                Step::Madvise { page: -1, offset: 5, len_pages: 2, len_bytes: -3, advice: AdviceArg::Raw(999) },
                Step::Fork { child: vec![Step::Read { page: 0 }, Step::Mlock { page: 0, pages: 1, onfault: true }] },
                Step::ForkLive,
                Step::InChild { step: Box::new(Step::Write { page: 1, fill: 3 }) },
                Step::ChildExit,
            ],
        };
        let j = sys::encode_frame(&p).unwrap();
        let back: Program = serde_json::from_slice(&j[4..]).unwrap();
        assert_eq!(back, p);
    }
}
