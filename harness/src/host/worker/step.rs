//! The step executor: the worker's state (`Ctx`) and one syscall (or memory access) per step, on the
//! scenario's mappings inside the arena window.

use crate::host::observe::{FileIdent, Observer};
use crate::host::sys::{self, Fd};
use simulator::observe::{Errno, Ret};
use simulator::program::{Backing, MapSpec, Prot, Step};
use std::os::fd::RawFd;
use std::path::PathBuf;

pub(super) struct ScenarioFile {
    /// The scenario's fd of the file, or -1 once a `close` step closed it (so later calls on it really
    /// get EBADF from the kernel, and a reused descriptor number is never touched).
    fd: std::cell::Cell<RawFd>,
    pub(super) ident: FileIdent,
}

impl ScenarioFile {
    pub(super) fn new(fd: Fd, ident: FileIdent) -> ScenarioFile {
        let raw = fd.0;
        // The descriptor is owned by the ScenarioFile from now on (closed by `close` or by drop).
        std::mem::forget(fd);
        ScenarioFile { fd: std::cell::Cell::new(raw), ident }
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd.get()
    }

    /// close(2) of the fd (a second close passes -1: EBADF).
    fn close(&self) -> Ret {
        let fd = self.fd.replace(-1);
        // SAFETY: closes a descriptor this ScenarioFile owns (or -1).
        ret_of(unsafe { libc::close(fd) } as libc::c_long)
    }
}

impl Drop for ScenarioFile {
    fn drop(&mut self) {
        let fd = self.fd.get();
        if fd >= 0 {
            // SAFETY: we own the descriptor.
            unsafe { libc::close(fd) };
        }
    }
}

pub(super) struct Ctx {
    pub(super) ps: u64,
    pub(super) base: u64,
    pub(super) win_lo: u64,
    pub(super) win_len: u64,
    /// The directory for disk files, or why it could not be created.
    /// The directory for disk files, once a scenario needed one (`program::scratch`).
    pub(super) tmp: Option<Result<PathBuf, String>>,
    pub(super) obs: Observer,
    /// /proc/vmstat, kept open: it is read twice per MADV_FREE scenario.
    pub(super) vmstat: Option<Fd>,
    pub(super) vmstat_buf: Vec<u8>,
    /// A successful advice left process-wide state behind (KSM or khugepaged registration of the mm,
    /// memory-failure injection): the worker exits after this scenario and the runner replaces it.
    pub(super) tainted: std::cell::Cell<bool>,
    /// The pidfds process_madvise steps name, made at worker start before any arena exists.
    pub(super) pm: PmFds,
    /// The live child's pidfd while a `fork_live` child exists (alive or dead), else -1.
    pub(super) live_pidfd: std::cell::Cell<RawFd>,
}

/// The worker's own pidfd, one of a child that exited and was reaped (process_madvise answers ESRCH),
/// and an open file that is not a pidfd (an eventfd: EBADF). Each is -1 where the kernel lacks the call
/// (pidfd_open is 5.3+, process_madvise 5.10+: ENOSYS comes first there).
pub(super) struct PmFds {
    pub(super) self_pidfd: Fd,
    pub(super) dead_pidfd: Fd,
    pub(super) not_pidfd: Fd,
}

impl PmFds {
    pub(super) fn open() -> PmFds {
        // SAFETY (all): plain syscalls on our own pid and a child we fork here and reap at once; the
        // worker is single-threaded and the child only _exits.
        unsafe {
            let self_pidfd = Fd(libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) as RawFd);
            let mut dead_pidfd = Fd(-1);
            // vfork, not fork: the child shares the worker's mm and only _exits, so the worker's own mm
            // never goes through dup_mmap. (The `gu` VmFlag divergences once blamed on a fork here came
            // from the start-up guard probe, which looked for an smaps record starting at its page:
            // `detect::vma_has_flag` now looks for the record that contains it.)
            #[allow(deprecated)]
            let c = libc::vfork();
            if c == 0 {
                libc::_exit(0);
            }
            if c > 0 {
                dead_pidfd = Fd(libc::syscall(libc::SYS_pidfd_open, c, 0) as RawFd);
                while libc::waitpid(c, std::ptr::null_mut(), 0) < 0 && sys::errno() == libc::EINTR {}
            }
            let not_pidfd = Fd(libc::eventfd(0, libc::EFD_CLOEXEC));
            PmFds { self_pidfd, dead_pidfd, not_pidfd }
        }
    }
}

/// Advice whose success changes the process, not just the range: MERGEABLE, HUGEPAGE, COLLAPSE,
/// HWPOISON, SOFT_OFFLINE (docs/perf-floor.md, "What this means for the harness design").
pub(super) const PROCESS_WIDE_ADVICE: [i32; 5] = [12, 14, 25, 100, 101];

/// MAP_DROPPABLE, a map type of its own (include/uapi/linux/mman.h, 6.11+).
const MAP_DROPPABLE: i32 = 0x08;

pub(super) fn map_fd(m: &MapSpec, files: &[ScenarioFile]) -> Result<RawFd, String> {
    match m.backing.file() {
        None => Ok(-1),
        Some((f, _)) => files
            .get(f as usize)
            .map(|f| f.fd())
            .ok_or_else(|| format!("mapping names file {f}, but the program has {} files", files.len())),
    }
}

fn prot_bits(p: Prot) -> i32 {
    (if p.read { libc::PROT_READ } else { 0 })
        | (if p.write { libc::PROT_WRITE } else { 0 })
        | (if p.exec { libc::PROT_EXEC } else { 0 })
}

fn page_addr(ctx: &Ctx, page: u32) -> u64 {
    ctx.base + page as u64 * ctx.ps
}

/// mmap one MapSpec with `fixed` (MAP_FIXED or MAP_FIXED_NOREPLACE); `Err(errno)` on failure.
pub(super) fn do_mmap(ctx: &Ctx, m: &MapSpec, fd: RawFd, fixed: i32) -> Result<(), i32> {
    let (kind, off) = match m.backing {
        Backing::AnonPrivate => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, 0),
        Backing::AnonShared => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, 0),
        Backing::FilePrivate { offset, .. } => (libc::MAP_PRIVATE, offset as u64 * ctx.ps),
        Backing::FileShared { offset, .. } => (libc::MAP_SHARED, offset as u64 * ctx.ps),
        Backing::HugetlbPrivate => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB, 0),
        Backing::HugetlbShared => (libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB, 0),
        // MAP_DROPPABLE (6.11+; not in the libc crate yet): include/uapi/linux/mman.h.
        Backing::AnonDroppable => (MAP_DROPPABLE | libc::MAP_ANONYMOUS, 0),
    };
    let flags = kind
        | fixed
        | (if m.populate { libc::MAP_POPULATE } else { 0 })
        | (if m.locked { libc::MAP_LOCKED } else { 0 })
        | (if m.noreserve { libc::MAP_NORESERVE } else { 0 });
    let addr = page_addr(ctx, m.page);
    // SAFETY: the address is inside the arena window, which holds only scenario mappings.
    let p = unsafe {
        libc::mmap(addr as *mut libc::c_void, m.pages as usize * ctx.ps as usize, prot_bits(m.prot), flags, fd, off as libc::off_t)
    };
    if p == libc::MAP_FAILED {
        return Err(sys::errno());
    }
    if p as u64 != addr {
        // Cannot happen with MAP_FIXED*; undo rather than leave a mapping outside the arena.
        // SAFETY: we just mapped it.
        unsafe { libc::munmap(p, m.pages as usize * ctx.ps as usize) };
        return Err(libc::EEXIST);
    }
    Ok(())
}

/// What the access task of `caught_access` does.
#[repr(C)]
struct Access {
    addr: u64,
    len: usize,
    /// 0..=255: write this fill; -1: read one byte.
    fill: i32,
    /// The CPU the worker ran on just before the clone (-1: unknown).
    cpu: i32,
}

/// The stack of the access task (it runs one memset or one load, then exits).
static mut ACCESS_STACK: [u128; 4096] = [0; 4096];

extern "C" fn access_task(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Access` of `caught_access`, alive while this task runs (the worker sleeps
    // in the vfork until it exits); the address is inside the arena window.
    unsafe {
        let a = &*(arg as *const Access);
        if a.cpu >= 0 {
            // Fault on the worker's CPU: a folio this fault adds waits in that CPU's LRU batch, as after
            // an ordinary `write` (PAGEOUT/COLD drain only the caller's CPU; see child.rs, pin_to_current_cpu).
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(a.cpu as usize, &mut one);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
        }
        if a.fill >= 0 {
            std::ptr::write_bytes(a.addr as *mut u8, a.fill as u8, a.len);
        } else {
            std::hint::black_box(std::ptr::read_volatile(a.addr as *const u8));
        }
    }
    0
}

/// One access whose fault does not end the worker: it runs in a task that shares this mm (and so the
/// page tables, counters and pkey rights: PKRU is copied at clone) but not the process, created with
/// CLONE_VM|CLONE_VFORK. A fault kills only that task, by the signal the kernel sent (SIGSEGV or
/// SIGBUS), which is this step's result; the worker, non-dumpable and with RLIMIT_CORE 0 (mod.rs),
/// writes no core. kselftest guard-regions.c catches the same faults with sigsetjmp in one process;
/// the C reproducer does that (csource.rs), and both see the same kernel fault path.
fn caught_access(addr: u64, ps: u64, fill: Option<u8>) -> Result<Ret, String> {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    let mut a = Access { addr, len: ps as usize, fill: fill.map_or(-1, i32::from), cpu };
    // SAFETY: the task runs `access_task` on its own stack (ACCESS_STACK, used by one access at a time:
    // the worker is single-threaded and CLONE_VFORK suspends it until the task exits), touches only `a`
    // and the arena page, and never returns into the worker's frames.
    let pid = unsafe {
        let stack = std::ptr::addr_of_mut!(ACCESS_STACK) as *mut u8;
        let top = stack.add(std::mem::size_of::<[u128; 4096]>());
        libc::clone(
            access_task,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &mut a as *mut Access as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(format!("clone of the access task: {}", sys::strerror(sys::errno())));
    }
    let mut status = 0;
    loop {
        // SAFETY: reaping the task we created.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        if rc < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        return Err(format!("waitpid of the access task: {}", sys::strerror(sys::errno())));
    }
    std::hint::black_box(&mut a);
    if libc::WIFSIGNALED(status) {
        Ok(Ret::Signal(simulator::observe::Signal::from_raw(libc::WTERMSIG(status))))
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(Ret::Ok)
    } else {
        Err(format!("the access task ended with wait status {status:#x}"))
    }
}

fn ret_of(rc: libc::c_long) -> Ret {
    if rc == 0 {
        Ret::Ok
    } else {
        Ret::Err(Errno::from_raw(sys::errno()))
    }
}

/// Run one non-fork step. `Err` only for infrastructure problems (a bad file index).
pub(super) fn do_step(ctx: &Ctx, step: &Step, files: &[ScenarioFile]) -> Result<Ret, String> {
    let ps = ctx.ps;
    let range = |page: u32, pages: u32| (page_addr(ctx, page) as *mut libc::c_void, pages as usize * ps as usize);
    // SAFETY (all arms): the runner validated that every range lies inside the arena window, so these
    // calls touch only scenario mappings; faults in Write/Read are the scenario's intended outcome.
    Ok(unsafe {
        match *step {
            Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
                let addr = ctx.base.wrapping_add((page as u64).wrapping_mul(ps)).wrapping_add(offset as u64);
                let len = (len_pages as u64).wrapping_mul(ps).wrapping_add(len_bytes as u64);
                let ret = ret_of(libc::madvise(addr as *mut libc::c_void, len as usize, advice.value()) as libc::c_long);
                if ret == Ret::Ok && PROCESS_WIDE_ADVICE.contains(&advice.value()) {
                    ctx.tainted.set(true);
                }
                ret
            }
            Step::Write { page, fill } => {
                let p = page_addr(ctx, page) as *mut u8;
                std::ptr::write_bytes(p, fill, ps as usize);
                // The stores go to memory the compiler knows nothing about; black_box makes that explicit.
                std::hint::black_box(p);
                Ret::Ok
            }
            Step::Read { page } => {
                std::hint::black_box(std::ptr::read_volatile(page_addr(ctx, page) as *const u8));
                Ret::Ok
            }
            Step::TryWrite { page, fill } => caught_access(page_addr(ctx, page), ps, Some(fill))?,
            Step::TryRead { page } => caught_access(page_addr(ctx, page), ps, None)?,
            Step::Mprotect { page, pages, prot } => {
                let (a, l) = range(page, pages);
                ret_of(libc::mprotect(a, l, prot_bits(prot)) as libc::c_long)
            }
            Step::Munmap { page, pages } => {
                let (a, l) = range(page, pages);
                ret_of(libc::munmap(a, l) as libc::c_long)
            }
            Step::Mmap { ref map } => {
                let fd = map_fd(map, files)?;
                match do_mmap(ctx, map, fd, libc::MAP_FIXED) {
                    Ok(()) => Ret::Ok,
                    Err(e) => Ret::Err(Errno::from_raw(e)),
                }
            }
            Step::Mlock { page, pages, onfault } => {
                let (a, l) = range(page, pages);
                if onfault {
                    ret_of(libc::syscall(libc::SYS_mlock2, a, l, libc::MLOCK_ONFAULT))
                } else {
                    ret_of(libc::mlock(a, l) as libc::c_long)
                }
            }
            Step::Munlock { page, pages } => {
                let (a, l) = range(page, pages);
                ret_of(libc::munlock(a, l) as libc::c_long)
            }
            Step::ProcessMadvise { target, ref iov, vlen, advice, flags } => {
                use simulator::program::PidfdTarget as T;
                let fd = match target {
                    T::SelfPidfd => ctx.pm.self_pidfd.0,
                    T::PidfdSelf => simulator::program::PIDFD_SELF,
                    T::LiveChild => ctx.live_pidfd.get(),
                    T::ExitedChild => ctx.pm.dead_pidfd.0,
                    T::BadFd => -1,
                    T::NotPidfd => ctx.pm.not_pidfd.0,
                };
                let v: Option<Vec<libc::iovec>> = iov.as_ref().map(|v| {
                    v.iter()
                        .map(|e| {
                            let (a, l) = e.raw(ctx.base, ps);
                            libc::iovec { iov_base: a as *mut libc::c_void, iov_len: l as usize }
                        })
                        .collect()
                });
                let ptr = v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
                let n = Step::pm_vlen(iov, vlen);
                let rc = libc::syscall(libc::SYS_process_madvise, fd, ptr, n as usize, advice.value(), flags);
                if rc < 0 {
                    Ret::Err(Errno::from_raw(sys::errno()))
                } else {
                    // A process-wide advice on the worker's own mm taints it, as with madvise.
                    if rc > 0 && target != T::LiveChild && PROCESS_WIDE_ADVICE.contains(&advice.value()) {
                        ctx.tainted.set(true);
                    }
                    Ret::Bytes(rc as u64)
                }
            }
            Step::Fork { .. } => return Err("a fork inside a grandchild is not supported".into()),
            Step::ForkLive | Step::InChild { .. } | Step::ChildExit => {
                return Err(format!("a {} step inside a forked child is not supported", step.op()))
            }
            Step::Mseal { page, pages } => {
                let (a, l) = range(page, pages);
                // mseal(2) has no libc wrapper yet; syscall 462 on every architecture (asm-generic).
                let ret = ret_of(libc::syscall(462, a, l, 0));
                // Sealed memory can never be unmapped: this worker retires after the scenario. A failed
                // mseal may have sealed some VMAs before failing (a refused hugetlb split), so any call
                // that got past the up-front checks taints too.
                if !matches!(ret, Ret::Err(Errno::ENOMEM | Errno::ENOSYS)) {
                    ctx.tainted.set(true);
                }
                ret
            }
            // The pkey syscalls have no libc wrapper in the libc crate's older releases; SYS_pkey_* are
            // the architecture's numbers. Keys and PKRU are process-wide: the worker retires afterwards.
            Step::PkeyAlloc { rights } => {
                ctx.tainted.set(true);
                let k = libc::syscall(crate::host::sys::pkey_nr::ALLOC, 0 as libc::c_ulong, rights.value() as libc::c_ulong);
                if k < 0 {
                    Ret::Err(Errno::from_raw(sys::errno()))
                } else {
                    Ret::Key(k as u32)
                }
            }
            Step::PkeyFree { pkey } => {
                ctx.tainted.set(true);
                ret_of(libc::syscall(crate::host::sys::pkey_nr::FREE, pkey as libc::c_long))
            }
            Step::PkeyMprotect { page, pages, prot, pkey } => {
                ctx.tainted.set(true);
                let (a, l) = range(page, pages);
                ret_of(libc::syscall(crate::host::sys::pkey_nr::MPROTECT, a, l, prot_bits(prot) as libc::c_long, pkey as libc::c_long))
            }
            Step::PkeySet { pkey, rights } => {
                ctx.tainted.set(true);
                if !crate::host::pkru::ospke() {
                    return Err("pkey_set on a CPU without OSPKE (WRPKRU would be #UD); the runner should have refused it".into());
                }
                let v = crate::host::pkru::read();
                crate::host::pkru::write((v & !(3 << (2 * pkey))) | (rights.value() << (2 * pkey)));
                Ret::Ok
            }
            Step::Ftruncate { file, pages } => {
                let f = files.get(file as usize).ok_or_else(|| format!("ftruncate: no file {file}"))?;
                ret_of(libc::ftruncate(f.fd(), pages as libc::off_t * ps as libc::off_t) as libc::c_long)
            }
            Step::Close { file } => files.get(file as usize).ok_or_else(|| format!("close: no file {file}"))?.close(),
            Step::Seal { file, ref seals } => {
                let f = files.get(file as usize).ok_or_else(|| format!("seal: no file {file}"))?;
                let bits = simulator::program::SealKind::bits(seals) as libc::c_int;
                ret_of(libc::fcntl(f.fd(), libc::F_ADD_SEALS, bits) as libc::c_long)
            }
            Step::Fallocate { file, page, pages, mode } => {
                let f = files.get(file as usize).ok_or_else(|| format!("fallocate: no file {file}"))?;
                let (off, len) = (page as libc::off_t * ps as libc::off_t, pages as libc::off_t * ps as libc::off_t);
                ret_of(libc::fallocate(f.fd(), mode.value(), off, len) as libc::c_long)
            }
            Step::Mremap { page, pages, new_pages, to, dontunmap } => {
                let (a, l) = range(page, pages);
                let new_len = new_pages as usize * ps as usize;
                let r = match to {
                    None => libc::mremap(a, l, new_len, 0),
                    Some(t) => {
                        let mut flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
                        if dontunmap {
                            flags |= 4; // MREMAP_DONTUNMAP (5.7+)
                        }
                        libc::mremap(a, l, new_len, flags, page_addr(ctx, t) as *mut libc::c_void)
                    }
                };
                if r == libc::MAP_FAILED {
                    Ret::Err(Errno::from_raw(sys::errno()))
                } else {
                    Ret::Ok
                }
            }
        }
    })
}
