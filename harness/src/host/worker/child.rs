//! The forked children of a scenario: a `fork` child that runs its own steps and exits, and the live
//! child of `fork_live` that takes one `in_child` command at a time until `child_exit`.

use crate::host::observe::FileIdent;
use crate::host::sys::{self, Fd};
use crate::host::worker::protocol::{ChildCmd, Fatal, Frame, Out};
use crate::host::worker::step::{do_step, Ctx, ScenarioFile};
use simulator::observe::{Errno, Observation, Ret, Signal};
use simulator::program::{Program, Step, StepId};
use std::os::fd::RawFd;

/// The child of a `fork_live` step, alive or already dead.
pub(super) struct LiveChild {
    pid: libc::pid_t,
    /// Write end of the command pipe (None once closed by `child_exit`).
    pub(super) cmd: Option<Fd>,
    /// Read end of the answer pipe.
    res: Fd,
    /// Set once the child died by this signal; it has been reaped then.
    pub(super) dead: Option<Signal>,
    reaped: bool,
    /// The worker's CPU mask before `fork_live` pinned it (and so the child) to one CPU; restored on drop.
    saved_affinity: Option<libc::cpu_set_t>,
    /// A pidfd of the child (for process_madvise), opened right after fork; -1 if pidfd_open failed.
    pub(super) pidfd: Fd,
}

/// Pin this process to the CPU it runs on, if it may run on more than one; returns the old mask.
/// While a live child exists, parent and child must share one CPU: a fault in one of them can leave a
/// folio in that CPU's LRU batch (off the LRU, e.g. being activated), and PAGEOUT/COLD skip folios that
/// are not on the LRU after draining only the caller's CPU [S 6.12 mm/madvise.c:madvise_pageout
/// (lru_add_drain), madvise_cold_or_pageout_pte_range (!folio_test_lru); mm/swap.c:folio_activate].
/// Run workers are pinned already; golden-check workers are not (T 6.18.44: the last PAGEOUT of
/// pageout_skips_file_page_mapped_by_live_child kept the pages in one bless out of two, unpinned).
fn pin_to_current_cpu() -> Option<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read and write it.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 || libc::CPU_COUNT(&old) <= 1 {
            return None;
        }
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return None;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut one);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) == 0).then_some(old)
    }
}

impl LiveChild {
    /// waitpid, retrying on EINTR.
    pub(super) fn reap(&mut self) -> Result<i32, String> {
        let mut status = 0;
        loop {
            // SAFETY: reaping our own child.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                self.reaped = true;
                return Ok(status);
            }
            if sys::errno() != libc::EINTR {
                self.reaped = true;
                return Err(format!("waitpid live child: {}", sys::strerror(sys::errno())));
            }
        }
    }

    /// Read one answer frame; `Ok(None)` at EOF (the child is gone).
    fn read_frame(&self) -> Result<Option<Frame>, String> {
        let mut len = [0u8; 4];
        match sys::read_exact(self.res.0, &mut len) {
            Ok(false) | Err(0) => return Ok(None),
            Ok(true) => {}
            Err(e) => return Err(format!("read live child: {}", sys::strerror(e))),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > sys::MAX_FRAME {
            return Err(format!("live child frame length {len} is too large"));
        }
        let mut body = vec![0u8; len];
        match sys::read_exact(self.res.0, &mut body) {
            Ok(true) => {}
            Ok(false) | Err(0) => return Ok(None),
            Err(e) => return Err(format!("read live child: {}", sys::strerror(e))),
        }
        super::codec::decode(&body).map(Some).map_err(|e| format!("bad frame from live child: {e}"))
    }

    /// The child's answer did not come: reap it. A signal is the scenario's outcome (recorded in
    /// `dead`); any other end is an infrastructure failure.
    fn died(&mut self, what: &str) -> Result<Signal, String> {
        let status = self.reap()?;
        if libc::WIFSIGNALED(status) {
            let sig = Signal::from_raw(libc::WTERMSIG(status));
            self.dead = Some(sig);
            Ok(sig)
        } else {
            Err(format!("{what}: live child exited with status {}", libc::WEXITSTATUS(status)))
        }
    }
}

impl Drop for LiveChild {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: our own, not yet reaped child (so the pid cannot have been reused).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.reap();
        }
        if let Some(old) = self.saved_affinity.take() {
            // SAFETY: restoring the mask read by pin_to_current_cpu.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &old) };
        }
    }
}

pub(super) fn run_fork(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
    child: &[Step],
    files: &[ScenarioFile],
    idents: &[FileIdent],
    out: &Out,
) -> Result<(), Fatal> {
    run_fork_at(ctx, prog, step, None, child, files, idents, out)
}

/// The point ids of a fork at `step` (`cstep: None`) or of the nested fork that is child step
/// `cstep - 1` of the fork at `step`: `j` None is the forking process's view after the fork, `Some(j)`
/// the (grand)child's views.
fn fork_point(step: u32, cstep: Option<u32>, j: Option<u32>) -> StepId {
    match cstep {
        None => StepId { step, child: j, grandchild: None },
        Some(c) => StepId { step, child: Some(c), grandchild: j },
    }
}

/// `run_fork`, or with `cstep` the nested fork a fork child runs (a grandchild): its frames go to the
/// child's pipe (`out`), which the worker forwards in turn.
#[allow(clippy::too_many_arguments)]
fn run_fork_at(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
    cstep: Option<u32>,
    child: &[Step],
    files: &[ScenarioFile],
    idents: &[FileIdent],
    out: &Out,
) -> Result<(), Fatal> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Fatal::Scenario(format!("fork step {step}: pipe2: {}", sys::strerror(sys::errno()))));
    }
    let (r, w) = (Fd(fds[0]), Fd(fds[1]));
    // SAFETY: the worker is single-threaded, so the child may run ordinary code; it ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = sys::errno();
        drop((r, w));
        let obs = ctx.obs.observe(Ret::Err(Errno::from_raw(e)), prog.arena_pages, idents).map_err(Fatal::Scenario)?;
        return out.send(&Frame::Point { id: fork_point(step, cstep, None), obs }).map_err(Fatal::Output);
    }
    if pid == 0 {
        drop(r);
        let code = child_main(ctx, prog, step, cstep, child, files, idents, w.0);
        // SAFETY: leave without running the parent's destructors or flushing anything twice.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    // Read everything the child sends, then reap it. Straight into `buf`'s spare capacity: a zeroed read
    // buffer would write (and so copy-on-write fault) pages the child still shares, 16 for 64 KiB.
    let mut buf = Vec::new();
    loop {
        match sys::read_append(r.0, &mut buf, 16 << 10) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(Fatal::Scenario(format!("fork step {step}: read child pipe: {}", sys::strerror(e)))),
        }
    }
    drop(r);
    let status = sys::wait_child(pid).map_err(|e| Fatal::Scenario(format!("fork step {step}: waitpid: {}", sys::strerror(e))))?;
    let mut received = 0u32;
    let mut pos = 0;
    let mut child_error = None;
    while let Some((s, e)) = sys::frame_bounds(&buf[pos..]).map_err(Fatal::Scenario)? {
        let body = &buf[pos + s..pos + e];
        match super::codec::decode(body) {
            Ok(Frame::Point { id, .. }) => {
                // Only the child's own points count towards where it died; a top-level child also
                // forwards its grandchild's points (`grandchild` set), which are not its steps.
                if id.grandchild.is_some() == cstep.is_some() {
                    received += 1;
                }
                // The worker's stdout goes through write_stdout (it notifies the runner); a fork child
                // forwarding its grandchild's frames writes to the pipe to its parent.
                if out.fd == super::protocol::STDOUT {
                    super::protocol::write_stdout(&buf[pos..pos + e]).map_err(Fatal::Output)?;
                } else {
                    sys::write_all(out.fd, &buf[pos..pos + e]).map_err(|e| Fatal::Output(format!("write frame: {}", sys::strerror(e))))?;
                }
            }
            Ok(Frame::Done { error, .. }) => child_error = error,
            Err(err) => return Err(Fatal::Scenario(format!("fork step {step}: bad frame from child: {err}"))),
        }
        pos += e;
    }
    if let Some(e) = child_error {
        return Err(Fatal::Scenario(format!("fork step {step}: child: {e}")));
    }
    if libc::WIFSIGNALED(status) {
        if received as usize <= child.len() {
            let obs = Observation { ret: Ret::Signal(Signal::from_raw(libc::WTERMSIG(status))), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None };
            out.send(&Frame::Point { id: fork_point(step, cstep, Some(received)), obs }).map_err(Fatal::Output)?;
        }
    } else if libc::WEXITSTATUS(status) != 0 {
        return Err(Fatal::Scenario(format!("fork step {step}: child exited with status {}", libc::WEXITSTATUS(status))));
    }
    let obs = ctx.obs.observe(Ret::Ok, prog.arena_pages, idents).map_err(Fatal::Scenario)?;
    out.send(&Frame::Point { id: fork_point(step, cstep, None), obs }).map_err(Fatal::Output)
}

/// `fork_live`: fork a child that stays alive and takes `ChildCmd`s; forward its first view (`N.child0`).
/// A failing fork() is outside every scenario's scope, so it is an infrastructure error.
pub(super) fn fork_live(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
    files: &[ScenarioFile],
    idents: &[FileIdent],
    out: &Out,
) -> Result<LiveChild, Fatal> {
    let pipe = || -> Result<(Fd, Fd), Fatal> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: fds is a valid 2-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Fatal::Scenario(format!("fork_live step {step}: pipe2: {}", sys::strerror(sys::errno()))));
        }
        Ok((Fd(fds[0]), Fd(fds[1])))
    };
    let (cmd_r, cmd_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    let saved_affinity = pin_to_current_cpu();
    // SAFETY: the worker is single-threaded, so the child may run ordinary code; it ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = sys::errno();
        if let Some(old) = saved_affinity {
            // SAFETY: restoring the mask read by pin_to_current_cpu.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &old) };
        }
        return Err(Fatal::Scenario(format!("fork_live step {step}: fork: {}", sys::strerror(e))));
    }
    if pid == 0 {
        drop((cmd_w, res_r));
        let code = live_child_main(ctx, prog, step, files, idents, cmd_r.0, res_w.0);
        // SAFETY: leave without running the parent's destructors or flushing anything twice.
        unsafe { libc::_exit(code) };
    }
    drop((cmd_r, res_w));
    // SAFETY: pidfd_open with plain integer arguments.
    let pidfd = Fd(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd);
    let mut c = LiveChild { pid, cmd: Some(cmd_w), res: res_r, dead: None, reaped: false, saved_affinity, pidfd };
    let first = StepId { step, child: Some(0), grandchild: None };
    match c.read_frame().map_err(Fatal::Scenario)? {
        Some(Frame::Point { id, obs }) if id == first => {
            out.send(&Frame::Point { id, obs }).map_err(Fatal::Output)?;
        }
        Some(Frame::Done { error, .. }) => {
            return Err(Fatal::Scenario(format!("fork_live step {step}: child: {}", error.unwrap_or_default())))
        }
        Some(other) => return Err(Fatal::Scenario(format!("fork_live step {step}: unexpected frame {other:?}"))),
        None => {
            let sig = c.died(&format!("fork_live step {step}")).map_err(Fatal::Scenario)?;
            let obs = Observation { ret: Ret::Signal(sig), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None };
            out.send(&Frame::Point { id: first, obs }).map_err(Fatal::Output)?;
        }
    }
    Ok(c)
}

/// Run one `in_child` step in the live child and return its observation (a signal once it died). With
/// `observe_with`, the child runs nothing and observes itself with that return (the parent made the call).
pub(super) fn in_child(c: &mut LiveChild, step: u32, inner: &Step, observe_with: Option<Ret>) -> Result<Observation, String> {
    let signal = |sig| Observation { ret: Ret::Signal(sig), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None };
    if let Some(sig) = c.dead {
        return Ok(signal(sig));
    }
    let frame = sys::encode_frame(&ChildCmd { step, run: inner.clone(), observe_with })?;
    let fd = c.cmd.as_ref().map_or(-1, |f| f.0);
    // Rust ignores SIGPIPE, so a dead child gives EPIPE here, then EOF on the answer pipe.
    let _ = sys::write_all(fd, &frame);
    match c.read_frame()? {
        Some(Frame::Point { id, obs }) if id == (StepId { step, child: None, grandchild: None }) => Ok(obs),
        Some(Frame::Done { error, .. }) => Err(format!("in_child step {step}: child: {}", error.unwrap_or_default())),
        Some(other) => Err(format!("in_child step {step}: unexpected frame {other:?}")),
        None => Ok(signal(c.died(&format!("in_child step {step}"))?)),
    }
}

/// What both kinds of child share: die with the worker, observe right after fork (point `step.child0`),
/// run `body`, and report an error as a `Done` frame. Returns the child's exit code.
fn child_session(
    ctx: &mut Ctx,
    prog: &Program,
    first: StepId,
    idents: &[FileIdent],
    w: RawFd,
    body: impl FnOnce(&mut Ctx, &Out) -> Result<(), String>,
) -> i32 {
    // Die with the worker rather than linger if it is killed.
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let out = Out { fd: w };
    let r = (|| -> Result<(), String> {
        ctx.obs.reopen()?;
        let obs = ctx.obs.observe(Ret::Ok, prog.arena_pages, idents)?;
        out.send(&Frame::Point { id: first, obs })?;
        body(ctx, &out)
    })();
    match r {
        Ok(()) => 0,
        Err(e) => {
            let _ = out.send(&Frame::Done { poisoned: None, error: Some(e), exiting: false });
            2
        }
    }
}

/// The live child: observe right after fork, then run each command and observe; `_exit(0)` at EOF.
fn live_child_main(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
    files: &[ScenarioFile],
    idents: &[FileIdent],
    cmd: RawFd,
    w: RawFd,
) -> i32 {
    child_session(ctx, prog, StepId { step, child: Some(0), grandchild: None }, idents, w, |ctx, out| {
        let mut body = Vec::new();
        loop {
            let mut len = [0u8; 4];
            match sys::read_exact(cmd, &mut len) {
                Ok(false) => return Ok(()),
                Ok(true) => {}
                Err(e) => return Err(format!("read command: {}", sys::strerror(e))),
            }
            body.resize(u32::from_le_bytes(len) as usize, 0);
            sys::read_exact(cmd, &mut body).map_err(|e| format!("read command body: {}", sys::strerror(e)))?;
            let c: ChildCmd = serde_json::from_slice(&body).map_err(|e| format!("bad command: {e}"))?;
            let ret = match c.observe_with {
                Some(ret) => ret,
                None => do_step(ctx, &c.run, files)?,
            };
            let obs = ctx.obs.observe(ret, prog.arena_pages, idents)?;
            out.send(&Frame::Point { id: StepId { step: c.step, child: None, grandchild: None }, obs })?;
        }
    })
}

/// The forked child: observe right after fork, then after each child step. Returns the exit code.
#[allow(clippy::too_many_arguments)]
fn child_main(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
    cstep: Option<u32>,
    child: &[Step],
    files: &[ScenarioFile],
    idents: &[FileIdent],
    w: RawFd,
) -> i32 {
    child_session(ctx, prog, fork_point(step, cstep, Some(0)), idents, w, |ctx, out| {
        for (k, s) in child.iter().enumerate() {
            let here = k as u32 + 1;
            if let (Step::Fork { child: grandchild }, None) = (s, cstep) {
                // A fork child forks again: the grandchild's points and then this child's view.
                return_on_fatal(run_fork_at(ctx, prog, step, Some(here), grandchild, files, idents, out))?;
                continue;
            }
            let ret = do_step(ctx, s, files)?;
            let obs = ctx.obs.observe(ret, prog.arena_pages, idents)?;
            out.send(&Frame::Point { id: fork_point(step, cstep, Some(here)), obs })?;
        }
        Ok(())
    })
}

fn return_on_fatal(r: Result<(), Fatal>) -> Result<(), String> {
    r.map_err(|f| match f {
        Fatal::Scenario(e) | Fatal::Output(e) => e,
    })
}
