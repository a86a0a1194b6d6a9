//! The worker pool side of the host backend: `Worker`, a handle on one `madcheck worker` process that
//! submits framed programs and collects their observations as a `HostRun`.
//!
//! Invariant: a `Worker` stays usable whatever its process does: a process that died or hung is
//! replaced transparently (from a pre-started spare once one died), and a program that could damage the
//! worker itself is refused before it is sent (`check_program`).
//!
//! Invariant: no process a worker forked outlives the run as a zombie. A worker that dies by a signal (a
//! scenario's SIGSEGV, a timeout's SIGKILL, someone else's kill) while a `fork_live` or `fork` child of
//! its scenario exists orphans that child; PR_SET_PDEATHSIG kills it, but its zombie went to init, which
//! need not reap it (about 1 per 1,200 generated scenarios on 6.18.44, `harness/tests/zombies.rs`). The
//! process that starts workers is therefore their children's subreaper and reaps them (`reap_orphans`).

use simulator::observe::Observation;
use simulator::program::StepId;

/// What one scenario produced on the host.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// One observation per point reached, in `Program::step_ids` order. When the worker (or a forked
    /// child) died by a signal at a point, that point is present with `ret: Signal(..)` and empty
    /// vmas/pages, and nothing after it (for a child: nothing after it in that child).
    pub points: Vec<(StepId, Observation)>,
    /// The host left the model's scope (e.g. reclaim by someone else during the scenario): do not compare.
    pub poisoned: Option<String>,
    /// The worker hung and was killed after the timeout; `points` holds what arrived before.
    pub timed_out: bool,
}

use crate::host::sys;
use crate::host::worker::{temp_dir_for, Frame, CPU_ENV, FORK_REQUEST};
use simulator::observe::{Ret, Signal};
use simulator::program::{Program, Step, ARENA};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A handle on one worker process. The process behind it is replaced transparently when it dies or
/// hangs; `Worker` itself stays usable.
pub struct Worker {
    exe: PathBuf,
    cpu: Option<usize>,
    proc: Option<Proc>,
    /// A started, idle process kept ready once this handle has had to replace one, so the next
    /// replacement costs nothing on the scenario's path (scenarios that die by a signal are common).
    spare: Option<Proc>,
    /// A program was submitted and not yet collected.
    pending: bool,
}

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    buf: Vec<u8>,
    /// The read buffer, kept: allocating (and zeroing) 64 KiB for every scenario showed in profiles.
    chunk: Vec<u8>,
    /// The read end of the worker's notify pipe (`worker::NOTIFY_ENV`), or None once it reached EOF (the
    /// worker is gone: frames are then read as they come, up to the frame pipe's EOF). The worker writes
    /// a byte after each program's `Done` and after every half frame pipe of frames, so `collect` sleeps
    /// on it and wakes once per program instead of at every point (both pipes are non-blocking here).
    notify: Option<std::os::fd::OwnedFd>,
}

/// Set O_NONBLOCK on our end of a pipe.
fn set_nonblocking(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let ok = unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        fl >= 0 && libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) == 0
    };
    if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Make this process the reaper of its workers' orphans [S 6.12 kernel/exit.c:find_new_reaper: an
/// orphan goes to the nearest ancestor with PR_SET_CHILD_SUBREAPER, else to init]. Idempotent.
fn adopt_orphans() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: prctl with plain integer arguments.
    ONCE.call_once(|| unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    });
}

/// Reap the orphans of dead workers that were re-parented to this process, and return how many are
/// still alive (PR_SET_PDEATHSIG has killed them, but they may not have finished dying yet).
///
/// An orphan is told apart by its process group: every worker leads its own (`Proc::start`), and what
/// it forks stays in it, so a child of ours in a group that is neither its own nor ours came from a
/// worker. Workers themselves (group leaders) are left to their `Child`, and anything else this process
/// started (in our group) to whoever waits for it, so no one's `waitpid` is stolen. The children are
/// listed by /proc/self/task/*/children (CONFIG_PROC_CHILDREN, set in Debian's and this host's
/// kernels); without it nothing is reaped here and the orphans go to init when the run ends.
pub fn reap_orphans() -> usize {
    // SAFETY: getpgrp has no preconditions.
    let ours = unsafe { libc::getpgrp() } as u32;
    let mut alive = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut kids: Vec<u32> = Vec::new();
    for t in tasks.filter_map(|t| t.ok()) {
        if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
            kids.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    for pid in kids {
        let Some((state, pgrp)) = state_and_group(pid) else { continue };
        if pgrp == pid || pgrp == ours {
            continue;
        }
        if state != 'Z' {
            alive += 1;
            continue;
        }
        let mut status = 0;
        // SAFETY: reaping a zombie child of ours that no one else waits for.
        unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
    }
    alive
}

/// `reap_orphans` until none is left alive or `limit` has passed.
pub fn reap_orphans_within(limit: Duration) {
    let deadline = Instant::now() + limit;
    while reap_orphans() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// State and process group of `pid`, from /proc/<pid>/stat.
fn state_and_group(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let mut f = text.get(text.rfind(')')? + 2..)?.split_whitespace();
    let state = f.next()?.chars().next()?;
    let pgrp = f.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

impl Proc {
    fn start(exe: &Path, cpu: Option<usize>) -> std::io::Result<Proc> {
        adopt_orphans();
        // A new process mostly replaces one that died: collect what that one orphaned before.
        reap_orphans();
        let mut cmd = Command::new(exe);
        cmd.arg("worker").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        // Its own process group, so a terminal's ^C (SIGINT to the foreground group) reaches only the
        // runner, which stops handing out scenarios and reports the run as interrupted; a worker that
        // got the SIGINT too would report `observed signal 2` as a divergence.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match cpu {
            Some(c) => cmd.env(CPU_ENV, c.to_string()),
            None => cmd.env_remove(CPU_ENV),
        };
        // The zero-page probe, made once here instead of in every worker (a failed probe: the worker
        // probes itself and says why it failed).
        match crate::host::observe::zero_pfns_once(sys::page_size()) {
            Ok(text) => cmd.env(crate::host::observe::ZERO_PFN_ENV, text),
            Err(_) => cmd.env_remove(crate::host::observe::ZERO_PFN_ENV),
        };
        // The notify pipe: close-on-exec both ends, so a worker another job thread starts meanwhile does not
        // inherit them (it would hold the write end open past this worker's death); only this child keeps
        // its write end across its exec (cleared between its fork and exec, under the same number).
        let mut fds = [-1; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and ours.
        let (notify_r, notify_w) = unsafe {
            use std::os::fd::FromRawFd;
            (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
        };
        let w = notify_w.as_raw_fd();
        cmd.env(crate::host::worker::NOTIFY_ENV, w.to_string());
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl (async-signal-safe).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::fcntl(w, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        drop(notify_w);
        let mut child = spawned?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("worker started without piped stdin/stdout"));
        };
        if let Err(e) = set_nonblocking(stdout.as_raw_fd()).and_then(|()| set_nonblocking(notify_r.as_raw_fd())) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(Proc { child, stdin: Some(stdin), stdout, buf: Vec::new(), chunk: vec![0u8; 64 << 10], notify: Some(notify_r) })
    }

    /// Kill (if still running) and reap; remove the temp directory a killed worker could not.
    fn kill_and_reap(mut self) -> Option<std::process::ExitStatus> {
        let _ = self.child.kill();
        let st = self.child.wait().ok();
        let _ = std::fs::remove_dir_all(temp_dir_for(self.child.id()));
        st
    }
}

/// Reject programs that could damage the worker itself: every page range must stay inside the arena
/// window, and a madvise range outside it is allowed only where the kernel refuses it before walking
/// any VMA (unaligned start, overflowing length, unknown advice).
pub fn check_program(prog: &Program, page_size: u64) -> Result<(), String> {
    if prog.arena_pages > ARENA.max_pages {
        return Err(format!("arena_pages {} exceeds the arena's {} pages", prog.arena_pages, ARENA.max_pages));
    }
    let top = ARENA.max_pages as u64 + ARENA.gap_pages;
    let in_window = |what: &str, page: u32, pages: u64| -> Result<(), String> {
        if page as u64 + pages > top {
            Err(format!("{what} at page {page} (+{pages}) leaves the arena window ({top} pages)"))
        } else {
            Ok(())
        }
    };
    let nfiles = prog.files.len();
    let check_map = |what: &str, m: &simulator::program::MapSpec| -> Result<(), String> {
        in_window(what, m.page, m.pages as u64)?;
        match m.backing.file() {
            Some((f, _)) if f as usize >= nfiles => Err(format!("{what} maps file {f}, but there are {nfiles} files")),
            _ => Ok(()),
        }
    };
    for (i, m) in prog.maps.iter().enumerate() {
        check_map(&format!("map {i}"), m)?;
    }
    fn steps(
        list: &[Step],
        depth: u8,
        ps: u64,
        in_window: &dyn Fn(&str, u32, u64) -> Result<(), String>,
        check_map: &dyn Fn(&str, &simulator::program::MapSpec) -> Result<(), String>,
    ) -> Result<(), String> {
        let lo = ARENA.base - ARENA.gap_pages * ps;
        let hi = ARENA.base + (ARENA.max_pages as u64 + ARENA.gap_pages) * ps;
        for (i, s) in list.iter().enumerate() {
            let what = format!("step {i} ({})", s.op());
            match s {
                Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
                    // What the syscall receives: the arguments reduced to this process's word (`usize`, the
                    // kernel's on a native process: 32 bits on armhf), checked in that word's arithmetic.
                    let addr = ARENA.base.wrapping_add((*page as u64).wrapping_mul(ps)).wrapping_add(*offset as u64) as usize;
                    let len = (*len_pages as u64).wrapping_mul(ps).wrapping_add(*len_bytes as u64) as usize;
                    let ps_w = ps as usize;
                    let refused_early = !addr.is_multiple_of(ps_w)
                        || advice.advice().is_none()
                        || len.checked_add(ps_w - 1).map(|l| l & !(ps_w - 1)).and_then(|l| addr.checked_add(l)).is_none();
                    let (addr, len) = (addr as u64, len as u64);
                    let end = addr.wrapping_add(len);
                    if !refused_early && len != 0 && (addr < lo || end > hi) {
                        return Err(format!("{what}: range {addr:#x}+{len:#x} leaves the arena window"));
                    }
                }
                Step::Write { page, .. } | Step::Read { page } | Step::TryWrite { page, .. } | Step::TryRead { page } => {
                    in_window(&what, *page, 1)?
                }
                Step::Mprotect { page, pages, .. }
                | Step::Munmap { page, pages }
                | Step::Mlock { page, pages, .. }
                | Step::Munlock { page, pages } => in_window(&what, *page, *pages as u64)?,
                Step::Mmap { map } => check_map(&what, map)?,
                Step::Mseal { page, pages } | Step::PkeyMprotect { page, pages, .. } => in_window(&what, *page, *pages as u64)?,
                Step::PkeyAlloc { .. } | Step::PkeyFree { .. } | Step::PkeySet { .. } => {}
                Step::Ftruncate { .. } | Step::Fallocate { .. } | Step::Close { .. } | Step::Seal { .. } if depth > 0 => {
                    return Err(format!("{what}: a file step inside a fork child is not supported"))
                }
                Step::Ftruncate { .. } | Step::Fallocate { .. } | Step::Close { .. } | Step::Seal { .. } => {}
                Step::ProcessMadvise { iov, .. } => {
                    if depth > 0 {
                        return Err(format!("{what}: only a top-level step"));
                    }
                    // Elements whose length does not fit ssize_t fail the whole call up front.
                    for e in iov.iter().flatten() {
                        let (addr, len) = e.raw(ARENA.base, ps);
                        // iov_base and iov_len as this process's word (`isize`: ssize_t).
                        let (addr, len) = (addr as usize as u64, len as usize as u64);
                        if (len as usize as isize) >= 0 && (addr < lo || addr.checked_add(len).is_none_or(|end| end > hi)) {
                            return Err(format!("{what}: element {addr:#x}+{len:#x} leaves the arena window"));
                        }
                    }
                }
                Step::Mremap { page, pages, new_pages, to, .. } => {
                    in_window(&what, *page, *pages as u64)?;
                    match to {
                        None => in_window(&what, *page, *new_pages as u64)?,
                        Some(t) => in_window(&what, *t, (*new_pages as u64).max(1))?,
                    }
                }
                Step::Fork { child } => {
                    // A fork child may fork once more (a grandchild), the grandchild may not.
                    if depth > 1 {
                        return Err(format!("{what}: a fork inside a grandchild is not supported"));
                    }
                    steps(child, depth + 1, ps, in_window, check_map)?;
                }
                Step::ForkLive | Step::ChildExit => {
                    if depth > 0 {
                        return Err(format!("{what}: only a top-level step"));
                    }
                }
                Step::InChild { step } => {
                    if depth > 0 || matches!(**step, Step::Fork { .. } | Step::ForkLive | Step::InChild { .. } | Step::ChildExit) {
                        return Err(format!("{what}: in_child runs one plain step"));
                    }
                    steps(std::slice::from_ref(&**step), 1, ps, in_window, check_map)?;
                }
            }
        }
        Ok(())
    }
    steps(&prog.steps, 0, page_size, &in_window, &check_map)
}

impl Worker {
    /// Start `exe worker`, pinned to `cpu` if given.
    pub fn spawn(exe: &Path, cpu: Option<usize>) -> std::io::Result<Worker> {
        let proc = Proc::start(exe, cpu)?;
        Ok(Worker { exe: exe.to_path_buf(), cpu, proc: Some(proc), spare: None, pending: false })
    }

    /// The worker process's pid, if one is running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    fn live_proc(&mut self) -> Result<&mut Proc, String> {
        let dead = match self.proc.as_mut() {
            None => true,
            Some(p) => !matches!(p.child.try_wait(), Ok(None)),
        };
        if dead {
            if let Some(p) = self.proc.take() {
                p.kill_and_reap();
            }
            let p = match self.take_spare() {
                Some(p) => p,
                None => Proc::start(&self.exe, self.cpu)
                    .map_err(|e| format!("cannot start worker {}: {e}", self.exe.display()))?,
            };
            self.proc = Some(p);
        }
        self.proc.as_mut().ok_or_else(|| "no worker".to_string())
    }

    /// Kill and reap the current process (if any) and start its replacement at once.
    fn replace(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill_and_reap();
        }
        self.start_spare();
    }

    /// Start the next process now rather than at the next submit, so its exec and start-up overlap
    /// the caller's own work (simulating, comparing). A failure here is reported by the next submit.
    fn start_spare(&mut self) {
        if self.proc.is_none() {
            self.proc = self.take_spare().or_else(|| Proc::start(&self.exe, self.cpu).ok());
        }
        if self.spare.is_none() {
            self.spare = Proc::start(&self.exe, self.cpu).ok();
        }
    }

    /// The spare process, if it is still alive.
    fn take_spare(&mut self) -> Option<Proc> {
        let mut p = self.spare.take()?;
        if matches!(p.child.try_wait(), Ok(None)) {
            Some(p)
        } else {
            p.kill_and_reap();
            None
        }
    }

    /// Send one program without waiting for its results.
    pub fn submit(&mut self, prog: &Program) -> Result<(), String> {
        self.submit_with(prog, false)
    }

    /// `submit`, asking the worker (`fork`) to run the program in a fork()ed child of itself, as it does
    /// anyway for one that would retire it (`worker::program::run_forked`): the runner asks for a program
    /// the model expects to end by a signal, which would otherwise kill the worker and cost an exec to
    /// replace it. The observations are the same either way; the request frame is the program's JSON
    /// prefixed by the byte `F` (a JSON text never starts with it).
    pub fn submit_with(&mut self, prog: &Program, fork: bool) -> Result<(), String> {
        if self.pending {
            return Err("submit while a previous program is still pending; collect it first".into());
        }
        check_program(prog, sys::page_size() as u64)?;
        let mut frame = sys::encode_frame(prog)?;
        if fork {
            frame.insert(4, FORK_REQUEST);
            let len = u32::try_from(frame.len() - 4).map_err(|_| "frame too large".to_string())?;
            frame[..4].copy_from_slice(&len.to_le_bytes());
        }
        for attempt in 0..2 {
            let p = self.live_proc()?;
            let sent = match p.stdin.as_mut() {
                Some(w) => w.write_all(&frame).and_then(|_| w.flush()),
                None => Err(std::io::Error::other("worker stdin closed")),
            };
            match sent {
                Ok(()) => {
                    self.pending = true;
                    return Ok(());
                }
                Err(_) if attempt == 0 => {
                    // The worker died between scenarios (e.g. exited after a dirty teardown): replace it.
                    if let Some(p) = self.proc.take() {
                        p.kill_and_reap();
                    }
                }
                Err(e) => return Err(format!("cannot send the program to a fresh worker: {e}")),
            }
        }
        Err("unreachable: submit retry loop".into())
    }

    /// Gather the observations of the submitted program. `Err` only for infrastructure failure.
    pub fn collect(&mut self, prog: &Program, timeout: Duration) -> Result<HostRun, String> {
        if !self.pending {
            return Err("collect without a submitted program".into());
        }
        self.pending = false;
        let deadline = Instant::now() + timeout;
        let mut points: Vec<(StepId, Observation)> = Vec::new();
        let Some(p) = self.proc.as_mut() else { return Err("no worker process".into()) };
        let fd = p.stdout.as_raw_fd();
        loop {
            // Decode every complete frame already buffered.
            let mut pos = 0;
            while let Some((s, e)) = sys::frame_bounds(&p.buf[pos..])? {
                let frame = crate::host::worker::decode_frame(&p.buf[pos + s..pos + e]);
                pos += e;
                match frame {
                    Ok(Frame::Point { id, obs }) => points.push((id, obs)),
                    Ok(Frame::Done { poisoned, error: None, exiting }) => {
                        p.buf.drain(..pos);
                        if exiting {
                            self.replace();
                        }
                        return Ok(HostRun { points, poisoned, timed_out: false });
                    }
                    Ok(Frame::Done { error: Some(e), exiting, .. }) => {
                        p.buf.drain(..pos);
                        if exiting {
                            self.replace();
                        }
                        return Err(format!("worker: {e}"));
                    }
                    Err(e) => {
                        self.replace();
                        return Err(format!("undecodable frame from worker: {e}"));
                    }
                }
            }
            p.buf.drain(..pos);
            let now = Instant::now();
            if now >= deadline {
                self.replace();
                return Ok(HostRun { points, poisoned: None, timed_out: true });
            }
            let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
            // Sleep on the notify pipe while the worker lives (one wake-up per program), on the frame
            // pipe itself once the notify pipe is at EOF (the worker died: read up to the frames' EOF).
            let notify = p.notify.as_ref().map(|n| n.as_raw_fd());
            let mut pfd = libc::pollfd { fd: notify.unwrap_or(fd), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = sys::errno();
                if e == libc::EINTR {
                    continue;
                }
                return Err(format!("poll on worker {}: {}", if notify.is_some() { "notify pipe" } else { "stdout" }, sys::strerror(e)));
            }
            if rc == 0 {
                continue; // the deadline check above handles the timeout
            }
            if let Some(nfd) = notify {
                // Consume the notify bytes, then read everything the worker wrote before them.
                let mut bytes = [0u8; 64];
                loop {
                    match sys::read_some(nfd, &mut bytes) {
                        Ok(0) => {
                            p.notify = None;
                            break;
                        }
                        Ok(n) if n == bytes.len() => {}
                        Ok(_) => break,
                        Err(e) if e == libc::EAGAIN => break,
                        Err(e) => return Err(format!("read worker notify pipe: {}", sys::strerror(e))),
                    }
                }
                loop {
                    match sys::read_some(fd, &mut p.chunk) {
                        // EOF: the worker is gone; the frame pipe path above sees it again.
                        Ok(0) => {
                            p.notify = None;
                            break;
                        }
                        Ok(n) => {
                            p.buf.extend_from_slice(&p.chunk[..n]);
                            if n < p.chunk.len() {
                                break;
                            }
                        }
                        Err(e) if e == libc::EAGAIN => break,
                        Err(e) => return Err(format!("read worker stdout: {}", sys::strerror(e))),
                    }
                }
                continue;
            }
            match sys::read_some(fd, &mut p.chunk) {
                Ok(0) => return self.worker_died(prog, points),
                Ok(n) => p.buf.extend_from_slice(&p.chunk[..n]),
                Err(e) if e == libc::EAGAIN => {}
                Err(e) => return Err(format!("read worker stdout: {}", sys::strerror(e))),
            }
        }
    }

    /// EOF on the worker's stdout: reap it. A signal is the scenario's outcome at the next point; any
    /// other exit is an infrastructure failure.
    fn worker_died(&mut self, prog: &Program, mut points: Vec<(StepId, Observation)>) -> Result<HostRun, String> {
        let Some(p) = self.proc.take() else { return Err("no worker process".into()) };
        let status = p.kill_and_reap();
        self.start_spare();
        match status.and_then(|s| s.signal()) {
            Some(sig) => {
                let ids = prog.step_ids();
                // The point after the last one received (not the first missing one: a child that died
                // early legitimately leaves later child ids unreceived).
                let next = match points.last() {
                    None => ids.first().copied(),
                    Some((last, _)) => ids.iter().position(|i| i == last).and_then(|k| ids.get(k + 1).copied()),
                };
                if let Some(id) = next {
                    let obs = Observation { ret: Ret::Signal(Signal::from_raw(sig)), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None };
                    points.push((id, obs));
                }
                Ok(HostRun { points, poisoned: None, timed_out: false })
            }
            None => Err(format!(
                "worker exited ({}) after {} points without finishing the program",
                status.map(|s| s.to_string()).unwrap_or_else(|| "status unknown".into()),
                points.len()
            )),
        }
    }

    /// `submit` then `collect`.
    pub fn run(&mut self, prog: &Program, timeout: Duration) -> Result<HostRun, String> {
        self.submit(prog)?;
        self.collect(prog, timeout)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut procs: Vec<Proc> = self.proc.take().into_iter().chain(self.spare.take()).collect();
        // Closing stdin lets an idle worker exit and clean up after itself; give it a moment, then kill.
        for p in &mut procs {
            p.stdin = None;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        for mut p in procs {
            while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            p.kill_and_reap();
        }
        // The orphans of the processes just ended (and of any before them) die within milliseconds.
        reap_orphans_within(Duration::from_millis(500));
    }
}
