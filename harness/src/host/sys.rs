//! Thin, panic-free wrappers over the raw syscalls the host backend uses, and the frame codec.
//!
//! Invariant: nothing here allocates on behalf of the kernel or buffers output; every function returns
//! the raw errno on failure, so callers can turn it into `Ret::Err` (scenario data) or `Err(String)`
//! (infrastructure) as the case may be.

use std::ffi::CStr;
use std::os::fd::RawFd;

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v <= 0 {
        4096
    } else {
        v as usize
    }
}

/// An owned file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(pub RawFd);

impl Fd {
    pub fn open(path: &CStr, flags: i32) -> Result<Fd, String> {
        // SAFETY: `path` is NUL-terminated.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
        if fd < 0 {
            Err(format!("open {}: {}", path.to_string_lossy(), std::io::Error::from_raw_os_error(errno())))
        } else {
            Ok(Fd(fd))
        }
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: we own the descriptor.
            unsafe { libc::close(self.0) };
        }
    }
}

/// write(2) the whole buffer, retrying on EINTR and short writes.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// read(2) once, retrying on EINTR. Returns 0 at EOF.
pub fn read_some(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    loop {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// read(2) once into `buf`'s spare capacity (at least `room` bytes, reserved), retrying on EINTR; the
/// bytes read are appended. Nothing is zeroed first. Returns 0 at EOF.
pub fn read_append(fd: RawFd, buf: &mut Vec<u8>, room: usize) -> Result<usize, i32> {
    buf.reserve(room);
    let spare = buf.spare_capacity_mut();
    loop {
        // SAFETY: the spare capacity is valid for writes of its length; read(2) initialises the first
        // `n` bytes it returns, and only those become part of the vector.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: as above.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Fill `buf` completely. `Ok(false)` means EOF before the first byte; EOF in the middle is `Err(0)`.
pub fn read_exact(fd: RawFd, buf: &mut [u8]) -> Result<bool, i32> {
    let mut got = 0;
    while got < buf.len() {
        let n = read_some(fd, &mut buf[got..])?;
        if n == 0 {
            return if got == 0 { Ok(false) } else { Err(0) };
        }
        got += n;
    }
    Ok(true)
}

/// pread(2) at a 64-bit offset. On 32-bit glibc (armhf) `off_t` is 32 bits, so an offset of 2 GiB or more
/// (a /proc/self/mem read of an address above 0x80000000, where the 32-bit stack and mmap_base are)
/// would turn negative and fail with EINVAL; pread64 takes an `off64_t`.
#[cfg(target_pointer_width = "32")]
unsafe fn raw_pread(fd: RawFd, buf: *mut libc::c_void, n: usize, off: u64) -> libc::ssize_t {
    libc::pread64(fd, buf, n, off as libc::off64_t)
}

#[cfg(not(target_pointer_width = "32"))]
unsafe fn raw_pread(fd: RawFd, buf: *mut libc::c_void, n: usize, off: u64) -> libc::ssize_t {
    libc::pread(fd, buf, n, off as libc::off_t)
}

/// pwrite(2) at a 64-bit offset (see [`raw_pread`]).
#[cfg(target_pointer_width = "32")]
unsafe fn raw_pwrite(fd: RawFd, buf: *const libc::c_void, n: usize, off: u64) -> libc::ssize_t {
    libc::pwrite64(fd, buf, n, off as libc::off64_t)
}

#[cfg(not(target_pointer_width = "32"))]
unsafe fn raw_pwrite(fd: RawFd, buf: *const libc::c_void, n: usize, off: u64) -> libc::ssize_t {
    libc::pwrite(fd, buf, n, off as libc::off_t)
}

/// pread(2) until `buf` is full or EOF; returns the number of bytes read.
pub fn pread_full(fd: RawFd, buf: &mut [u8], off: u64) -> Result<usize, i32> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe {
            raw_pread(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got, off + got as u64)
        };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    Ok(got)
}

/// pwrite(2) the whole buffer at `off`, retrying on EINTR and short writes.
pub fn pwrite_all(fd: RawFd, buf: &[u8], off: u64) -> Result<(), i32> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe {
            raw_pwrite(fd, buf[done..].as_ptr().cast(), buf.len() - done, off + done as u64)
        };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(libc::EIO);
        }
        done += n as usize;
    }
    Ok(())
}

pub fn strerror(e: i32) -> String {
    format!("{} (errno {e})", std::io::Error::from_raw_os_error(e))
}

/// The largest frame either side accepts; a longer length prefix means the stream is corrupt.
pub const MAX_FRAME: usize = 256 << 20;

/// Encode one frame: u32 little-endian length, then the serde_json bytes.
pub fn encode_frame<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; 4];
    serde_json::to_writer(&mut out, v).map_err(|e| format!("cannot encode frame: {e}"))?;
    let len = u32::try_from(out.len() - 4).map_err(|_| "frame too large".to_string())?;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// Split the first complete frame off `buf`: `Ok(Some((body_start, body_end)))`, `Ok(None)` when more
/// bytes are needed.
pub fn frame_bounds(buf: &[u8]) -> Result<Option<(usize, usize)>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(format!("frame length {len} exceeds the {MAX_FRAME}-byte limit: the stream is corrupt"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((4, 4 + len)))
}

/// Is `[lo, lo+len)` completely unmapped? Probed with one MAP_FIXED_NOREPLACE reservation, which fails
/// with EEXIST if anything overlaps, and is undone at once.
pub fn window_is_empty(lo: u64, len: u64) -> bool {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; we unmap only what we just mapped.
    unsafe {
        let p = libc::mmap(
            lo as *mut libc::c_void,
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        if p as u64 != lo {
            // A pre-4.17 kernel treats the flag as a hint; a different address means something was there.
            libc::munmap(p, len as usize);
            return false;
        }
        libc::munmap(p, len as usize);
        true
    }
}

/// waitpid(pid, 0) for one of our own children, retried on EINTR: the wait status, or the errno.
pub fn wait_child(pid: libc::pid_t) -> Result<libc::c_int, i32> {
    let mut status = 0;
    loop {
        // SAFETY: reaping our own child into a local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Put the calling thread in SCHED_BATCH (with SCHED_RESET_ON_FORK, so the processes it starts, the
/// workers, stay SCHED_OTHER): a batch thread that wakes up does not preempt the task running on its CPU
/// [S 6.18 kernel/sched/fair.c:check_preempt_wakeup_fair: "Batch and idle tasks do not preempt non-idle
/// tasks (their preemption is driven by the tick)"]. The runner's threads wake at every frame a worker
/// writes; as SCHED_OTHER each wakeup preempted that worker on its own CPU (`perf record -e
/// sched:sched_switch` of 2,000 scenarios: 12,006 preemptions in the worker's write, 11,681 sleeps in
/// the runner's poll, one pair per observed step), now the runner collects when the worker waits or the
/// tick comes, several frames a read. Same nice level and weight as before, so no starvation under load.
/// Failure only costs throughput.
pub fn no_wakeup_preemption() {
    // musl's sched_param has more fields (sched_ss_*); zeroed is priority 0 everywhere.
    // SAFETY: sched_param is plain integers, for which all-zero is valid.
    let p: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH | libc::SCHED_RESET_ON_FORK, &p) };
}

/// The pkey system call numbers, per architecture. The libc crate defines `SYS_pkey_*` only for some
/// targets (not s390x, powerpc64 or aarch64-musl), while every kernel madcheck runs on has them [S 6.12
/// arch/x86/entry/syscalls/syscall_64.tbl 329-331, include/uapi/asm-generic/unistd.h 288-290 (arm64,
/// riscv64), arch/arm/tools/syscall.tbl 394-396, arch/powerpc/kernel/syscalls/syscall.tbl 384-386,
/// arch/s390/kernel/syscalls/syscall.tbl 384-386]; without CONFIG_ARCH_HAS_PKEYS they answer as on any
/// CPU without keys (pkey_alloc: ENOSPC).
pub(crate) mod pkey_nr {
    #[cfg(target_arch = "x86_64")]
    pub const MPROTECT: libc::c_long = 329;
    #[cfg(target_arch = "x86_64")]
    pub const ALLOC: libc::c_long = 330;
    #[cfg(target_arch = "x86_64")]
    pub const FREE: libc::c_long = 331;
    #[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
    pub const MPROTECT: libc::c_long = 288;
    #[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
    pub const ALLOC: libc::c_long = 289;
    #[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
    pub const FREE: libc::c_long = 290;
    #[cfg(target_arch = "arm")]
    pub const MPROTECT: libc::c_long = 394;
    #[cfg(target_arch = "arm")]
    pub const ALLOC: libc::c_long = 395;
    #[cfg(target_arch = "arm")]
    pub const FREE: libc::c_long = 396;
    #[cfg(target_arch = "powerpc64")]
    pub const MPROTECT: libc::c_long = 386;
    #[cfg(target_arch = "powerpc64")]
    pub const ALLOC: libc::c_long = 384;
    #[cfg(target_arch = "powerpc64")]
    pub const FREE: libc::c_long = 385;
    #[cfg(target_arch = "s390x")]
    pub const MPROTECT: libc::c_long = 384;
    #[cfg(target_arch = "s390x")]
    pub const ALLOC: libc::c_long = 385;
    #[cfg(target_arch = "s390x")]
    pub const FREE: libc::c_long = 386;
}

#[cfg(test)]
mod pkey_nr_tests {
    /// Where the libc crate has the numbers, they are the same.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    fn pkey_numbers_match_libc_on_x86_64() {
        assert_eq!(super::pkey_nr::MPROTECT, libc::SYS_pkey_mprotect);
        assert_eq!(super::pkey_nr::ALLOC, libc::SYS_pkey_alloc);
        assert_eq!(super::pkey_nr::FREE, libc::SYS_pkey_free);
    }
}
