//! The step executor: the worker's state (`Ctx`) and one syscall (or memory access) per step, on the
//! scenario's mappings inside the arena window.

use crate::host::observe::{FileIdent, Observer};
use crate::host::sys::{self, Fd};
use simulator::observe::{Errno, Ret};
use simulator::program::{Backing, MapSpec, Prot, Step};
use std::os::fd::RawFd;
use std::path::PathBuf;

pub(super) struct ScenarioFile {
    pub(super) fd: Fd,
    pub(super) ident: FileIdent,
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
}

/// Advice whose success changes the process, not just the range: MERGEABLE, HUGEPAGE, COLLAPSE,
/// HWPOISON, SOFT_OFFLINE (docs/perf-floor.md, "What this means for the harness design").
pub(super) const PROCESS_WIDE_ADVICE: [i32; 5] = [12, 14, 25, 100, 101];

pub(super) fn map_fd(m: &MapSpec, files: &[ScenarioFile]) -> Result<RawFd, String> {
    match m.backing.file() {
        None => Ok(-1),
        Some((f, _)) => files
            .get(f as usize)
            .map(|f| f.fd.0)
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
    };
    let flags = kind
        | fixed
        | (if m.populate { libc::MAP_POPULATE } else { 0 })
        | (if m.locked { libc::MAP_LOCKED } else { 0 });
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
            Step::Fork { .. } => return Err("nested fork is not supported".into()),
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
