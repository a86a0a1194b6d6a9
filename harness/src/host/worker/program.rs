//! One program, end to end: files, the initial layout, every step (forks through `child`), teardown,
//! and the reclaim check that poisons a run someone else's reclaim changed.

use crate::host::observe::FileIdent;
use crate::host::sys::{self, Fd};
use crate::host::worker::child::{fork_live, in_child, run_fork, LiveChild};
use crate::host::worker::protocol::{decode_last_point, last_point_word, Fatal, Frame, Out};
use crate::host::worker::step::{do_mmap, do_step, map_fd, Ctx, ScenarioFile, PROCESS_WIDE_ADVICE};
use simulator::observe::{Observation, Ret, Signal};
use simulator::program::{FileKind, Program, Step, StepId, ARENA};

fn uses_advice(steps: &[Step], value: i32) -> bool {
    steps.iter().any(|s| match s {
        Step::Madvise { advice, .. } | Step::ProcessMadvise { advice, .. } => advice.value() == value,
        Step::Fork { child } => uses_advice(child, value),
        Step::InChild { step } => uses_advice(std::slice::from_ref(&**step), value),
        _ => false,
    })
}

/// Reclaim counters: the sum of `pgsteal_*` (reclaim through the LRU scan), plus `pglazyfreed` (lazy-free
/// pages discarded, by whatever path) unless the scenario itself pages out. DAMON's `pageout` action goes
/// through `reclaim_pages()`, which does not count `pgsteal_*`, so `pglazyfreed` is what shows it.
fn reclaim_counter(ctx: &mut Ctx, with_lazyfreed: bool) -> Result<u64, String> {
    if ctx.vmstat.is_none() {
        ctx.vmstat = Some(Fd::open(c"/proc/vmstat", libc::O_RDONLY)?);
    }
    let fd = ctx.vmstat.as_ref().map_or(-1, |f| f.0);
    ctx.vmstat_buf.resize(64 << 10, 0);
    let n = sys::pread_full(fd, &mut ctx.vmstat_buf, 0).map_err(|e| format!("read /proc/vmstat: {}", sys::strerror(e)))?;
    let text = String::from_utf8_lossy(&ctx.vmstat_buf[..n]);
    Ok(text
        .lines()
        .filter(|l| l.starts_with("pgsteal_") || (with_lazyfreed && l.starts_with("pglazyfreed ")))
        .filter_map(|l| l.split_ascii_whitespace().nth(1)?.parse::<u64>().ok())
        .sum())
}

pub(super) fn run_program(ctx: &mut Ctx, prog: &Program, out: &Out) -> Result<Option<String>, Fatal> {
    if prog.arena_pages > ARENA.max_pages {
        return Err(Fatal::Scenario(format!("arena_pages {} exceeds {}", prog.arena_pages, ARENA.max_pages)));
    }
    // Only MADV_FREE scenarios and droppable memory (which reclaim drops, dirty or not) can be changed
    // by reclaim on this host (no swap; file pages re-read equal).
    let lazyfreed = !uses_advice(&prog.steps, 21);
    let before = if uses_advice(&prog.steps, 8) || uses_droppable(prog) {
        Some(reclaim_counter(ctx, lazyfreed).map_err(Fatal::Scenario)?)
    } else {
        None
    };
    // hugetlb scenarios observe the pool counters as changes from here (the runner runs them one at a
    // time, so nothing else moves these counters meanwhile).
    ctx.obs.observe_locked_vm = prog.locks();
    ctx.obs.huge_base = if prog.uses_hugetlb() {
        crate::host::hugepool::top_up_in_guest().map_err(Fatal::Scenario)?;
        Some(ctx.obs.huge_counters().map_err(Fatal::Scenario)?)
    } else {
        None
    };
    let r = (|| {
        let files = create_files(ctx, prog).map_err(Fatal::Scenario)?;
        for (i, m) in prog.maps.iter().enumerate() {
            let fd = map_fd(m, &files).map_err(Fatal::Scenario)?;
            if let Err(e) = do_mmap(ctx, m, fd, libc::MAP_FIXED_NOREPLACE) {
                return Err(Fatal::Scenario(format!("layout map {i} ({m:?}): mmap failed: {}", sys::strerror(e))));
            }
        }
        let idents: Vec<FileIdent> = files.iter().map(|f| f.ident).collect();
        // Dropped (killed and reaped if still alive) on every way out of this closure.
        let mut live: Option<LiveChild> = None;
        for (i, step) in prog.steps.iter().enumerate() {
            let i = i as u32;
            let here = StepId { step: i, child: None, grandchild: None };
            match step {
                Step::Fork { child } => {
                    run_fork(ctx, prog, i, child, &files, &idents, out)?;
                    continue;
                }
                Step::ForkLive => {
                    if live.is_some() {
                        return Err(Fatal::Scenario(format!("step {i}: fork_live while a live child exists")));
                    }
                    live = Some(fork_live(ctx, prog, i, &files, &idents, out)?);
                    ctx.live_pidfd.set(live.as_ref().map_or(-1, |c| c.pidfd.0));
                    let obs = ctx.obs.observe(Ret::Ok, prog.arena_pages, &idents).map_err(Fatal::Scenario)?;
                    out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
                    continue;
                }
                Step::InChild { step: inner } => {
                    let Some(c) = live.as_mut() else {
                        return Err(Fatal::Scenario(format!("step {i}: in_child without a live child")));
                    };
                    let obs = in_child(c, i, inner, None).map_err(Fatal::Scenario)?;
                    out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
                    continue;
                }
                Step::ChildExit => {
                    let Some(mut c) = live.take() else {
                        return Err(Fatal::Scenario(format!("step {i}: child_exit without a live child")));
                    };
                    ctx.live_pidfd.set(-1);
                    if c.dead.is_none() {
                        // EOF on its command pipe: the child _exits; wait for it, so that its mappings
                        // are gone before the parent looks.
                        c.cmd = None;
                        let status = c.reap().map_err(Fatal::Scenario)?;
                        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                            return Err(Fatal::Scenario(format!("step {i}: live child ended with wait status {status:#x}")));
                        }
                    }
                    let obs = ctx.obs.observe(Ret::Ok, prog.arena_pages, &idents).map_err(Fatal::Scenario)?;
                    out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
                    continue;
                }
                // process_madvise of the live child: this process calls, the child observes itself. A
                // child that died has been reaped (the call answers ESRCH); this process is observed.
                Step::ProcessMadvise { target: simulator::program::PidfdTarget::LiveChild, .. } => {
                    if let Some(c) = live.as_mut().filter(|c| c.dead.is_none()) {
                        let ret = do_step(ctx, step, &files).map_err(Fatal::Scenario)?;
                        let obs = in_child(c, i, step, Some(ret)).map_err(Fatal::Scenario)?;
                        out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
                        continue;
                    }
                }
                _ => {}
            }
            let ret = do_step(ctx, step, &files).map_err(Fatal::Scenario)?;
            let obs = ctx.obs.observe(ret, prog.arena_pages, &idents).map_err(Fatal::Scenario)?;
            out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
        }
        ctx.live_pidfd.set(-1);
        drop(live);
        drop(files);
        Ok(())
    })();
    // Teardown: one munmap over the window; files were closed when `files` dropped.
    // SAFETY: the window belongs to the arena; nothing of the worker's own lives there.
    unsafe { libc::munmap(ctx.win_lo as *mut libc::c_void, ctx.win_len as usize) };
    r?;
    // Every scenario starts with mm->locked_vm at 0, since the model counts RLIMIT_MEMLOCK from there.
    // The kernel's count can stay raised after the arena is gone (seen on 6.18.44 after an mremap
    // MREMAP_DONTUNMAP of a VM_LOCKED range), so a worker whose VmLck is not 0 after a scenario that
    // locked anything retires, as after a process-wide advice.
    if prog.locks() && ctx.obs.vm_lck_kb().map_err(Fatal::Scenario)? != 0 {
        ctx.tainted.set(true);
    }
    if let Some(before) = before {
        let after = reclaim_counter(ctx, lazyfreed).map_err(Fatal::Scenario)?;
        if after != before {
            let what = if lazyfreed { "pgsteal+pglazyfreed" } else { "pgsteal" };
            return Ok(Some(format!("reclaim during scenario: {what} +{}", after.wrapping_sub(before))));
        }
    }
    Ok(None)
}

/// Whether a program maps MAP_DROPPABLE memory (layout or mmap step).
fn uses_droppable(prog: &Program) -> bool {
    fn step(s: &Step) -> bool {
        match s {
            Step::Mmap { map } => map.backing == simulator::program::Backing::AnonDroppable,
            Step::Fork { child } => child.iter().any(step),
            Step::InChild { step: inner } => step(inner),
            _ => false,
        }
    }
    prog.maps.iter().any(|m| m.backing == simulator::program::Backing::AnonDroppable) || prog.steps.iter().any(step)
}

/// The worker's directory for disk files, made on first use. A scratch directory that cannot hold it
/// (read-only, full) is not fatal: the runner found that at start (`detect::scratch_unusable`) and sends
/// no disk-file scenario; should one come anyway, it fails with this error.
pub(super) fn scratch(ctx: &mut Ctx) -> &Result<std::path::PathBuf, String> {
    ctx.tmp.get_or_insert_with(|| {
        let tmp = crate::host::worker::temp_dir_for(std::process::id());
        match std::fs::create_dir(&tmp) {
            Ok(()) => Ok(tmp),
            Err(e) => Err(format!("create {}: {e}", tmp.display())),
        }
    })
}

fn create_files(ctx: &mut Ctx, prog: &Program) -> Result<Vec<ScenarioFile>, String> {
    let mut files = Vec::with_capacity(prog.files.len());
    for (i, spec) in prog.files.iter().enumerate() {
        let fd = match spec.kind {
            FileKind::Disk => {
                let path = scratch(ctx).as_ref().map_err(|e| format!("file {i}: {e}"))?.join(format!("f{i}"));
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(|_| format!("temp path {} contains NUL", path.display()))?;
                let fd = Fd::open(&c, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL)?;
                // Unlink at once, so nothing is left behind even if the worker is killed.
                // SAFETY: `c` is NUL-terminated.
                unsafe { libc::unlink(c.as_ptr()) };
                fd
            }
            FileKind::Tmpfs => {
                // A regular file opened by path on the tmpfs mount; the worker's pid keeps names apart.
                let path = std::path::Path::new(crate::host::detect::TMPFS_DIR)
                    .join(format!("madcheck-{}-f{i}", std::process::id()));
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(|_| format!("tmpfs path {} contains NUL", path.display()))?;
                // A name left by a killed worker of the same pid would make O_EXCL fail: remove it first.
                // SAFETY: `c` is NUL-terminated.
                unsafe { libc::unlink(c.as_ptr()) };
                let fd = Fd::open(&c, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL).map_err(|e| format!("file {i}: {e}"))?;
                // Unlink at once, so nothing is left behind even if the worker is killed.
                // SAFETY: `c` is NUL-terminated.
                unsafe { libc::unlink(c.as_ptr()) };
                fd
            }
            FileKind::Memfd | FileKind::Hugetlb => {
                let name = std::ffi::CString::new(format!("madcheck-f{i}")).unwrap_or_default();
                let huge = if spec.kind == FileKind::Hugetlb { libc::MFD_HUGETLB } else { 0 };
                // MFD_ALLOW_SEALING changes only the initial seals (none instead of F_SEAL_SEAL)
                // [S 6.18 mm/memfd.c:memfd_create].
                let sealing = if spec.sealing { libc::MFD_ALLOW_SEALING } else { 0 };
                // SAFETY: `name` is NUL-terminated.
                let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | huge | sealing) };
                if fd < 0 {
                    return Err(format!("file {i}: memfd_create: {}", sys::strerror(sys::errno())));
                }
                Fd(fd)
            }
        };
        if spec.kind == FileKind::Hugetlb {
            // hugetlbfs has no write(2): the file is sized and starts as holes.
            // SAFETY: ftruncate on an fd we own.
            if unsafe { libc::ftruncate(fd.0, spec.pages as libc::off_t * ctx.ps as libc::off_t) } != 0 {
                return Err(format!("file {i}: ftruncate of the hugetlbfs memfd: {}", sys::strerror(sys::errno())));
            }
            let fd = if spec.readonly { reopen_readonly(i, fd)? } else { fd };
            // SAFETY: a zeroed stat is a valid out-parameter.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
                return Err(format!("file {i}: fstat: {}", sys::strerror(sys::errno())));
            }
            files.push(ScenarioFile::new(fd, FileIdent::from_stat(&st)));
            continue;
        }
        // One pwrite per page, on purpose: the write size decides the page-cache folio size (ext4 on
        // 6.18 builds a large folio from one multi-page write), and large folios change which
        // neighbours a read fault maps (measured: after one 8-page pwrite no fault-around at all; after
        // page-sized writes the cached neighbours are mapped). Page-sized writes give order-0 folios.
        let ps = ctx.ps as usize;
        for n in 0..spec.pages {
            let page = ctx.obs.classifier.file_page(i as u32, n, ps);
            if let Err(e) = sys::pwrite_all(fd.0, page, n as u64 * ps as u64) {
                return Err(format!("file {i}: pwrite page {n}: {}", sys::strerror(e)));
            }
        }
        let fd = if spec.readonly { reopen_readonly(i, fd)? } else { fd };
        // SAFETY: a zeroed stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
            return Err(format!("file {i}: fstat: {}", sys::strerror(sys::errno())));
        }
        files.push(ScenarioFile::new(fd, FileIdent::from_stat(&st)));
    }
    Ok(files)
}

/// A read-only fd for the same file (`FileSpec::readonly`): open(2) of /proc/self/fd/N with O_RDONLY,
/// which reopens the inode itself (also an unlinked file or a memfd); the writable fd is then closed, so
/// the scenario holds only the O_RDONLY one.
fn reopen_readonly(i: usize, rw: Fd) -> Result<Fd, String> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", rw.0)).unwrap_or_default();
    let ro = Fd::open(&path, libc::O_RDONLY).map_err(|e| format!("file {i}: reopen O_RDONLY: {e}"))?;
    drop(rw);
    Ok(ro)
}

/// Does this program leave the worker unfit for the next scenario whenever its syscalls succeed? An
/// mseal (sealed memory cannot be unmapped) or a process-wide advice. Such programs run in a fork()ed
/// child (`run_forked`). Not forked (measured, `cargo xtask bench`: forking them costs more than the
/// rare exec it saves): a lock, which taints only when mm->locked_vm stays raised (16 workers per 2,000
/// scenarios), and top-level accesses, which kill only when they fault (~34 per 2,000); those workers
/// still retire and are replaced by exec. Steps of `fork` and live children run in other processes.
pub(super) fn taints_on_success(prog: &Program) -> bool {
    may_fork(prog)
        && prog.steps.iter().any(|s| match s {
        Step::Mseal { .. } => true,
        // Allocated keys and the PKRU register outlive the scenario.
        Step::PkeyAlloc { .. } | Step::PkeyFree { .. } | Step::PkeyMprotect { .. } | Step::PkeySet { .. } => true,
        Step::Madvise { advice, .. } => PROCESS_WIDE_ADVICE.contains(&advice.value()),
        _ => false,
    })
}

/// Whether `prog` may run in a fork()ed scenario child at all: not a hugetlb program. If the worker is
/// killed from outside while its scenario child holds huge pages, the child dies later
/// (PR_SET_PDEATHSIG) and gives them back while the next hugetlb scenario already counts the pool (CI:
/// outside_signals.rs, gen-1-5442 diverged on `hugetlb`).
pub(super) fn may_fork(prog: &Program) -> bool {
    !prog.uses_hugetlb()
}

/// The shared word's value once the child has sent its `Done` frame.
const DONE_SENT: u64 = u64::MAX;

/// Run `prog` in a fork()ed child of the worker, which writes its points and its `Done` to stdout
/// itself, exactly as the worker would; the worker waits for it and stays clean (its arena window is
/// unmapped, as the child's starts). A fork costs a fraction of replacing the worker by exec.
/// Returns the `Done` frame the worker must still send (`None`: the child sent it). A child killed by a
/// signal gets what the runner records for a worker killed at that point (`pool::worker_died`): a
/// `Signal` observation for the point after the last one sent, then (here) a plain `Done`.
pub(super) fn run_forked(ctx: &mut Ctx, prog: &Program, out: &Out) -> Result<Option<Frame>, Fatal> {
    // Disk files live in the worker's directory (named by its pid, removed by the runner if it dies).
    if prog.files.iter().any(|f| f.kind == FileKind::Disk) {
        let _ = scratch(ctx);
    }
    let last = last_point_word().map_err(Fatal::Scenario)?;
    // SAFETY: plain call.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the worker is single-threaded, so the child may run ordinary code; it ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Fatal::Scenario(format!("fork for the scenario: {}", sys::strerror(sys::errno()))));
    }
    if pid == 0 {
        // Die with the worker rather than outlive it (the runner then sees EOF only once both are gone).
        // SAFETY: prctl/getppid/_exit with plain arguments.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        // process_madvise's `self_pidfd` must name this process, not the worker (which would be another
        // mm, with the remote advice rules).
        // SAFETY: pidfd_open of our own pid.
        ctx.pm.self_pidfd = crate::host::sys::Fd(unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as i32);
        let r = ctx.obs.reopen().map_err(Fatal::Scenario).and_then(|()| run_program(ctx, prog, out));
        let done = match r {
            Ok(poisoned) => Frame::Done { poisoned, error: None, exiting: false },
            Err(Fatal::Scenario(e)) => Frame::Done { poisoned: None, error: Some(e), exiting: false },
            // SAFETY: leave without running the worker's destructors.
            Err(Fatal::Output(_)) => unsafe { libc::_exit(3) },
        };
        let code = match out.send(&done) {
            Ok(()) => {
                last.store(DONE_SENT, std::sync::atomic::Ordering::SeqCst);
                0
            }
            Err(_) => 3,
        };
        // SAFETY: as above.
        unsafe { libc::_exit(code) };
    }
    let status = sys::wait_child(pid).map_err(|e| Fatal::Output(format!("waitpid scenario child: {}", sys::strerror(e))))?;
    let v = last.load(std::sync::atomic::Ordering::SeqCst);
    if v == DONE_SENT {
        return Ok(None);
    }
    if libc::WIFSIGNALED(status) {
        let ids = prog.step_ids();
        let next = match decode_last_point(v) {
            None => ids.first().copied(),
            Some(l) => ids.iter().position(|i| *i == l).and_then(|k| ids.get(k + 1).copied()),
        };
        if let Some(id) = next {
            let obs = Observation { ret: Ret::Signal(Signal::from_raw(libc::WTERMSIG(status))), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None };
            out.send(&Frame::Point { id, obs }).map_err(Fatal::Output)?;
        }
        return Ok(Some(Frame::Done { poisoned: None, error: None, exiting: false }));
    }
    if libc::WEXITSTATUS(status) == 3 {
        return Err(Fatal::Output("the scenario child could not write its frames".into()));
    }
    Err(Fatal::Scenario(format!("scenario child ended with wait status {status:#x} before its Done frame")))
}
