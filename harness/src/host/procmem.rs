//! Reading the worker's own present pages in unreadable (PROT_NONE, exec-only) VMAs.
//!
//! The normal path is a pread of `/proc/self/mem`, which reads with FOLL_FORCE. A kernel built with
//! CONFIG_PROC_MEM_FORCE_PTRACE (or booted with `proc_mem.force_override=ptrace|never`) grants
//! FOLL_FORCE only to the process's active ptracer [S 6.12 fs/proc/base.c:proc_mem_foll_force], so the
//! same read of a PROT_NONE page fails with EIO [S 6.12 mm/memory.c:__access_remote_vm]. Then the
//! worker reads through a **ptrace helper**: a process forked from the worker at its start (before any
//! arena exists, so it shares nothing the scenarios observe) that, per request, PTRACE_SEIZEs the
//! requesting process, preads `/proc/<pid>/mem` as its tracer (so FOLL_FORCE is granted), then
//! PTRACE_INTERRUPTs it and PTRACE_DETACHes. The requester is blocked in `recv` on the helper's socket
//! meanwhile; the interrupt makes that `recv` restart transparently (-ERESTARTSYS, no handler). Nothing
//! here changes a VMA, a PTE or a page: the read is the same `access_remote_vm` as the normal path's,
//! on a page pagemap already showed present.
//!
//! `process_vm_readv` is no alternative: it does not use FOLL_FORCE and fails on PROT_NONE.
//!
//! Which path is used is decided once, at worker start (`PageReader::start`), by a probe that reads a
//! present PROT_NONE page of a scratch mapping outside the arena through `/proc/self/mem`. The
//! environment variable `MADCHECK_PROC_MEM=ptrace` forces the helper (to test it on any kernel);
//! `madcheck detect` prints the path as `proc_mem`.
//!
//! Fork children of the worker (fork steps, live children) use the same helper: the socket is
//! inherited, requests carry the requester's pid and are strictly sequential (the worker waits on a
//! child while it runs and the other way round). Under Yama's ptrace_scope 1 the helper, a child of the
//! worker, may attach only where the tracee named it with PR_SET_PTRACER, which is per process and not
//! inherited, so every requester declares it (`after_fork`).

use crate::host::sys::{self, Fd};
use std::os::fd::RawFd;

/// The environment variable that selects the path: `ptrace` forces the helper, `self` forbids it.
pub const PROC_MEM_ENV: &str = "MADCHECK_PROC_MEM";

/// How the pages of unreadable VMAs are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `/proc/self/mem` (FOLL_FORCE granted to the process itself).
    SelfMem,
    /// A helper process that reads as the requester's ptracer.
    PtraceHelper,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::SelfMem => "self",
            Path::PtraceHelper => "ptrace-helper",
        }
    }
}

/// What the probe found: `Ok(true)` when /proc/self/mem reads a present PROT_NONE page, `Ok(false)` when
/// the read fails with EIO (FOLL_FORCE refused), `Err` for anything else.
pub fn probe_self_mem(ps: usize) -> Result<bool, String> {
    // SAFETY: a fresh private anonymous mapping of one page, unmapped below on every path.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), ps, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    if p == libc::MAP_FAILED {
        return Err(format!("/proc/self/mem probe: mmap: {}", sys::strerror(sys::errno())));
    }
    let r = (|| {
        // SAFETY: p is our own writable page.
        unsafe { std::ptr::write_bytes(p.cast::<u8>(), 0x5a, ps) };
        // SAFETY: changing the protection of our own page.
        if unsafe { libc::mprotect(p, ps, libc::PROT_NONE) } != 0 {
            return Err(format!("/proc/self/mem probe: mprotect: {}", sys::strerror(sys::errno())));
        }
        let mem = Fd::open(c"/proc/self/mem", libc::O_RDONLY)?;
        let mut buf = vec![0u8; ps];
        match sys::pread_full(mem.0, &mut buf, p as u64) {
            Ok(n) if n == ps && buf.iter().all(|&b| b == 0x5a) => Ok(true),
            Ok(n) => Err(format!("/proc/self/mem probe: read {n} bytes of {ps}, or wrong bytes")),
            Err(libc::EIO) => Ok(false),
            Err(e) => Err(format!("/proc/self/mem probe: pread: {}", sys::strerror(e))),
        }
    })();
    // SAFETY: unmapping the page mapped above.
    unsafe { libc::munmap(p, ps) };
    r
}

/// `Err` naming the variable when `MADCHECK_PROC_MEM` is set to something else than `ptrace` or `self`.
pub fn check_env() -> Result<(), String> {
    match std::env::var_os(PROC_MEM_ENV) {
        Some(v) if v != "ptrace" && v != "self" => {
            Err(format!("environment variable {PROC_MEM_ENV}={v:?}: expected \"ptrace\" or \"self\""))
        }
        _ => Ok(()),
    }
}

/// The path this process would use: the probe, overridden by `MADCHECK_PROC_MEM`.
pub fn choose(ps: usize) -> Result<(Path, String), String> {
    match std::env::var(PROC_MEM_ENV).as_deref() {
        Ok("ptrace") => return Ok((Path::PtraceHelper, format!("forced by {PROC_MEM_ENV}=ptrace"))),
        Ok("self") => return Ok((Path::SelfMem, format!("forced by {PROC_MEM_ENV}=self"))),
        Ok(other) => return Err(format!("{PROC_MEM_ENV}={other:?}: expected \"ptrace\" or \"self\"")),
        Err(_) => {}
    }
    Ok(if probe_self_mem(ps)? {
        (Path::SelfMem, "/proc/self/mem reads a PROT_NONE page".into())
    } else {
        (
            Path::PtraceHelper,
            "/proc/self/mem refuses FOLL_FORCE (EIO on a PROT_NONE page: CONFIG_PROC_MEM_FORCE_PTRACE or \
             proc_mem.force_override)"
                .into(),
        )
    })
}

/// The reader of one process (the worker or one of its fork children).
pub enum PageReader {
    /// `/proc/self/mem`, opened on first use.
    SelfMem(Option<Fd>),
    Helper(Helper),
}

/// The worker's end of the helper's socket.
pub struct Helper {
    sock: RawFd,
    pid: libc::pid_t,
    reply: Vec<u8>,
}

const REQ_LEN: usize = 16;

impl PageReader {
    /// Decide the path once and start the helper if needed. Called by the worker before any arena
    /// exists and while it is single-threaded (the helper is a fork).
    pub fn start(ps: usize) -> Result<PageReader, String> {
        match choose(ps)?.0 {
            Path::SelfMem => Ok(PageReader::SelfMem(None)),
            Path::PtraceHelper => Ok(PageReader::Helper(Helper::spawn(ps)?)),
        }
    }

    pub fn path(&self) -> Path {
        match self {
            PageReader::SelfMem(_) => Path::SelfMem,
            PageReader::Helper(_) => Path::PtraceHelper,
        }
    }

    /// In a forked child: drop the parent's /proc/self/mem fd (it reads the parent), or let the helper
    /// attach to this process.
    pub fn after_fork(&mut self) -> Result<(), String> {
        match self {
            PageReader::SelfMem(fd) => {
                *fd = None;
                Ok(())
            }
            PageReader::Helper(h) => h.allow(),
        }
    }

    /// Read `buf.len()` bytes of this process's memory at `addr` (a present page).
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        match self {
            PageReader::SelfMem(fd) => {
                if fd.is_none() {
                    *fd = Some(Fd::open(c"/proc/self/mem", libc::O_RDONLY)?);
                }
                let fd = fd.as_ref().map_or(-1, |f| f.0);
                let got = sys::pread_full(fd, buf, addr).map_err(|e| {
                    let hint = if e == libc::EIO { format!(" (FOLL_FORCE refused? try {PROC_MEM_ENV}=ptrace)") } else { String::new() };
                    format!("pread /proc/self/mem at {addr:#x}: {}{hint}", sys::strerror(e))
                })?;
                if got != buf.len() {
                    return Err(format!("short /proc/self/mem read at {addr:#x}: {got} bytes"));
                }
                Ok(())
            }
            PageReader::Helper(h) => h.read(addr, buf),
        }
    }
}

impl Helper {
    fn spawn(ps: usize) -> Result<Helper, String> {
        let mut sv = [0 as RawFd; 2];
        // SAFETY: sv is a valid 2-element array.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) } != 0 {
            return Err(format!("ptrace helper: socketpair: {}", sys::strerror(sys::errno())));
        }
        let (mine, theirs) = (Fd(sv[0]), Fd(sv[1]));
        // Room for one whole page per message in both directions.
        let size = (ps + 64) as libc::c_int;
        for fd in [mine.0, theirs.0] {
            // SAFETY: setsockopt on our own sockets with a valid int.
            unsafe {
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, (&size as *const libc::c_int).cast(), 4);
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&size as *const libc::c_int).cast(), 4);
            }
        }
        // SAFETY: getpid has no preconditions.
        let worker = unsafe { libc::getpid() };
        // SAFETY: the worker is single-threaded here (it forks before serving anything); the child runs
        // `helper_main` and ends in _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("ptrace helper: fork: {}", sys::strerror(sys::errno())));
        }
        if pid == 0 {
            drop(mine);
            let code = helper_main(theirs.0, worker, ps);
            // SAFETY: leave without running the worker's destructors.
            unsafe { libc::_exit(code) };
        }
        drop(theirs);
        let sock = mine.0;
        std::mem::forget(mine);
        let h = Helper { sock, pid, reply: vec![0; 4 + ps] };
        h.allow()?;
        Ok(h)
    }

    /// Name the helper as a permitted ptracer of this process (Yama ptrace_scope 1). Without Yama
    /// the prctl fails with EINVAL, which is fine: then ordinary same-uid ptrace rules apply.
    fn allow(&self) -> Result<(), String> {
        // SAFETY: prctl with plain integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_SET_PTRACER, self.pid as libc::c_ulong, 0, 0, 0) };
        if rc != 0 && sys::errno() != libc::EINVAL {
            return Err(format!("prctl(PR_SET_PTRACER, ptrace helper {}): {}", self.pid, sys::strerror(sys::errno())));
        }
        Ok(())
    }

    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        let mut req = [0u8; REQ_LEN];
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        req[0..4].copy_from_slice(&me.to_le_bytes());
        req[4..8].copy_from_slice(&(buf.len() as u32).to_le_bytes());
        req[8..16].copy_from_slice(&addr.to_le_bytes());
        // SAFETY: req is valid for its length.
        let n = retry(|| unsafe { libc::send(self.sock, req.as_ptr().cast(), REQ_LEN, libc::MSG_NOSIGNAL) });
        if n != REQ_LEN as isize {
            return Err(format!("ptrace helper {}: send request: {}", self.pid, sys::strerror(sys::errno())));
        }
        if self.reply.len() < 4 + buf.len() {
            self.reply.resize(4 + buf.len(), 0);
        }
        let want = 4 + buf.len();
        // SAFETY: reply is valid for `want` bytes.
        let n = retry(|| unsafe { libc::recv(self.sock, self.reply.as_mut_ptr().cast(), want, 0) });
        if n < 0 {
            return Err(format!("ptrace helper {}: recv: {}", self.pid, sys::strerror(sys::errno())));
        }
        if n < 4 {
            return Err(format!("ptrace helper {}: it exited", self.pid));
        }
        let status = i32::from_le_bytes([self.reply[0], self.reply[1], self.reply[2], self.reply[3]]);
        if status != 0 {
            let (what, e) = (status >> 16, status & 0xffff);
            let what = ["", "PTRACE_SEIZE", "open /proc/PID/mem", "pread /proc/PID/mem", "PTRACE_INTERRUPT", "waitpid", "PTRACE_DETACH", "short read"]
                .get(what as usize)
                .copied()
                .unwrap_or("?");
            return Err(format!("ptrace helper {} reading {addr:#x} of pid {me}: {what}: {}", self.pid, sys::strerror(e)));
        }
        if n as usize != want {
            return Err(format!("ptrace helper {}: reply of {n} bytes, expected {want}", self.pid));
        }
        buf.copy_from_slice(&self.reply[4..want]);
        Ok(())
    }
}

fn retry(mut f: impl FnMut() -> isize) -> isize {
    loop {
        let n = f();
        if n >= 0 || sys::errno() != libc::EINTR {
            return n;
        }
    }
}

/// The helper process: serve read requests until the socket closes (the worker exited) or the worker
/// dies (PDEATHSIG). Returns its exit code.
fn helper_main(sock: RawFd, worker: libc::pid_t, ps: usize) -> i32 {
    // SAFETY: prctl with plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != worker {
        return 0;
    }
    // The worker's own mem fd is kept (its mm never changes: the worker never execs); a child's is
    // opened per request, since its pid can be reused by a later child.
    let mut worker_mem: Option<Fd> = None;
    let mut req = [0u8; REQ_LEN];
    let mut reply = vec![0u8; 4 + ps];
    loop {
        // SAFETY: req is valid for its length.
        let n = retry(|| unsafe { libc::recv(sock, req.as_mut_ptr().cast(), REQ_LEN, 0) });
        if n <= 0 {
            return 0;
        }
        if n != REQ_LEN as isize {
            return 3;
        }
        let pid = i32::from_le_bytes([req[0], req[1], req[2], req[3]]);
        let len = u32::from_le_bytes([req[4], req[5], req[6], req[7]]) as usize;
        let addr = u64::from_le_bytes(req[8..16].try_into().unwrap_or([0; 8]));
        if reply.len() < 4 + len {
            reply.resize(4 + len, 0);
        }
        let status = match traced_read(pid, addr, &mut reply[4..4 + len], if pid == worker { Some(&mut worker_mem) } else { None }) {
            Ok(()) => 0,
            Err((what, e)) => (what << 16) | (e & 0xffff),
        };
        reply[..4].copy_from_slice(&status.to_le_bytes());
        let out = if status == 0 { 4 + len } else { 4 };
        // SAFETY: reply is valid for `out` bytes.
        if retry(|| unsafe { libc::send(sock, reply.as_ptr().cast(), out, libc::MSG_NOSIGNAL) }) < 0 {
            return 0;
        }
    }
}

/// Seize `pid`, read `buf.len()` bytes at `addr` through /proc/PID/mem as its tracer, stop it and
/// detach. The error is (step, errno) with the step numbered as in `Helper::read`'s message.
fn traced_read(pid: libc::pid_t, addr: u64, buf: &mut [u8], cached: Option<&mut Option<Fd>>) -> Result<(), (i32, i32)> {
    // SAFETY: ptrace with plain arguments on a process that asked for this.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0usize, 0usize) } != 0 {
        return Err((1, sys::errno()));
    }
    let read = (|| {
        let path = std::ffi::CString::new(format!("/proc/{pid}/mem")).map_err(|_| (2, libc::EINVAL))?;
        let mut local = None;
        let slot = match cached {
            Some(s) => s,
            None => &mut local,
        };
        if slot.is_none() {
            *slot = Some(Fd::open(&path, libc::O_RDONLY).map_err(|_| (2, sys::errno()))?);
        }
        let fd = slot.as_ref().map_or(-1, |f| f.0);
        match sys::pread_full(fd, buf, addr) {
            Ok(n) if n == buf.len() => Ok(()),
            Ok(_) => Err((7, libc::EIO)),
            Err(e) => Err((3, e)),
        }
    })();
    // Detaching needs a ptrace-stop: interrupt, wait for the stop, detach. A signal that arrived
    // meanwhile shows as a signal-delivery-stop and is handed back on detach.
    // SAFETY: as above.
    if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0usize, 0usize) } != 0 {
        return Err((4, sys::errno()));
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our tracee.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if rc == pid {
            break;
        }
        if sys::errno() != libc::EINTR {
            return Err((5, sys::errno()));
        }
    }
    if !libc::WIFSTOPPED(status) {
        // It died meanwhile; nothing to detach from.
        return read;
    }
    let event = (status >> 16) & 0xff;
    let sig = if event == libc::PTRACE_EVENT_STOP { 0 } else { libc::WSTOPSIG(status) };
    // SAFETY: as above.
    if unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, sig as usize) } != 0 {
        return Err((6, sys::errno()));
    }
    read
}
