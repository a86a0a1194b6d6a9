//! The worker process (`madcheck worker`): runs programs on the real kernel inside its arena.
//!
//! Invariant: the worker is single-threaded, and between scenarios the arena window
//! `[base - gap, base + (max_pages + gap) * PS)` is completely unmapped; the worker checks this at
//! start and after every teardown and exits non-zero rather than run a scenario on a dirty window.
//!
//! Protocol (both directions: u32 little-endian length, then serde_json bytes):
//! - runner → worker: one `Program` per frame.
//! - worker → runner: `Frame::Point` per observation point, written as soon as it is taken (so a step
//!   that kills the worker loses nothing before it), then one `Frame::Done`.
//! - worker → live child (`fork_live` … `child_exit`): one `ChildCmd` frame per `in_child` step on a
//!   pipe; the child answers with one `Frame::Point` on another pipe. EOF on the command pipe makes the
//!   child `_exit(0)`; EOF on the answer pipe means the child died, and the worker reaps it at once. The
//!   child has PR_SET_PDEATHSIG(SIGKILL), and the worker kills and reaps a child still alive at the end
//!   of the program or on any error, so a child never outlives its scenario or hangs the run.

use crate::host::observe::{probe_zero_pfn, FileIdent, Observer};
use crate::host::sys::{self, Fd};
use serde::{Deserialize, Serialize};
use simulator::observe::{Errno, Observation, Ret, Signal};
use simulator::program::{Backing, FileKind, MapSpec, Program, Prot, Step, StepId, ARENA};
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

const STDIN: RawFd = 0;
const STDOUT: RawFd = 1;

struct ScenarioFile {
    fd: Fd,
    ident: FileIdent,
}

struct Ctx {
    ps: u64,
    base: u64,
    win_lo: u64,
    win_len: u64,
    tmp: PathBuf,
    obs: Observer,
    /// /proc/vmstat, kept open: it is read twice per MADV_FREE scenario.
    vmstat: Option<Fd>,
    vmstat_buf: Vec<u8>,
    /// A successful advice left process-wide state behind (KSM or khugepaged registration of the mm,
    /// memory-failure injection): the worker exits after this scenario and the runner replaces it.
    tainted: std::cell::Cell<bool>,
}

/// Advice whose success changes the process, not just the range: MERGEABLE, HUGEPAGE, COLLAPSE,
/// HWPOISON, SOFT_OFFLINE (perf-floor.md, "What this means for the harness design").
const PROCESS_WIDE_ADVICE: [i32; 5] = [12, 14, 25, 100, 101];

/// Where frames go: stdout in the worker, a pipe in a forked child.
struct Out {
    fd: RawFd,
}

impl Out {
    fn send(&self, f: &Frame) -> Result<(), String> {
        let bytes = sys::encode_frame(f)?;
        sys::write_all(self.fd, &bytes).map_err(|e| format!("write frame: {}", sys::strerror(e)))
    }
}

fn fatal(msg: &str) -> i32 {
    eprintln!("madcheck worker {}: {msg}", std::process::id());
    3
}

pub fn worker_main() -> i32 {
    // Scenarios kill workers with SIGSEGV/SIGBUS on purpose: never leave core files behind or spend time
    // dumping. Non-dumpable also stops pipe core_pattern helpers; /proc/self stays readable by self.
    // SAFETY: plain integer arguments.
    unsafe {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
    }
    if let Ok(cpu) = std::env::var(CPU_ENV) {
        match cpu.parse::<usize>() {
            Ok(cpu) if cpu < libc::CPU_SETSIZE as usize => {
                // SAFETY: a zeroed cpu_set_t is a valid empty set.
                let ok = unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
                };
                if !ok {
                    return fatal(&format!("sched_setaffinity(cpu {cpu}): {}", sys::strerror(sys::errno())));
                }
            }
            _ => return fatal(&format!("{CPU_ENV}={cpu:?} is not a CPU number")),
        }
    }
    let ps = sys::page_size() as u64;
    let base = ARENA.base;
    let win_lo = base - ARENA.gap_pages * ps;
    let win_len = (ARENA.max_pages as u64 + 2 * ARENA.gap_pages) * ps;
    if !sys::window_is_empty(win_lo, win_len) {
        return fatal(&format!("the arena window {win_lo:#x}+{win_len:#x} is not empty at start"));
    }
    let zero_pfn = match probe_zero_pfn(ps as usize) {
        Ok(z) => z,
        Err(e) => return fatal(&e),
    };
    let obs = match Observer::open(ps as usize, base, zero_pfn) {
        Ok(o) => o,
        Err(e) => return fatal(&e),
    };
    // Let the worker run ahead of a runner that is busy simulating: a bigger pipe holds a whole scenario.
    // SAFETY: fcntl on our stdout; failure only costs throughput.
    unsafe { libc::fcntl(STDOUT, libc::F_SETPIPE_SZ, 1 << 20) };
    let tmp = temp_dir_for(std::process::id());
    if let Err(e) = std::fs::create_dir(&tmp) {
        return fatal(&format!("create {}: {e}", tmp.display()));
    }
    let mut ctx = Ctx { ps, base, win_lo, win_len, tmp, obs, vmstat: None, vmstat_buf: Vec::new(), tainted: Default::default() };
    let code = serve(&mut ctx);
    let _ = std::fs::remove_dir_all(&ctx.tmp);
    code
}

fn serve(ctx: &mut Ctx) -> i32 {
    let out = Out { fd: STDOUT };
    let mut body = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match sys::read_exact(STDIN, &mut len) {
            Ok(false) => return 0,
            Ok(true) => {}
            Err(e) => return fatal(&format!("read request: {}", sys::strerror(e))),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > sys::MAX_FRAME {
            return fatal(&format!("request length {len} is too large"));
        }
        body.resize(len, 0);
        if let Err(e) = sys::read_exact(STDIN, &mut body) {
            return fatal(&format!("read request body: {}", sys::strerror(e)));
        }
        let done = match serde_json::from_slice::<Program>(&body) {
            Err(e) => Frame::Done { poisoned: None, error: Some(format!("bad program frame: {e}")), exiting: false },
            Ok(prog) => match run_program(ctx, &prog, &out) {
                Ok(poisoned) => Frame::Done { poisoned, error: None, exiting: false },
                Err(Fatal::Scenario(e)) => Frame::Done { poisoned: None, error: Some(e), exiting: false },
                Err(Fatal::Output(e)) => return fatal(&e),
            },
        };
        let clean = sys::window_is_empty(ctx.win_lo, ctx.win_len);
        let tainted = ctx.tainted.get();
        let done = match (clean, done) {
            (true, Frame::Done { poisoned, error, .. }) => Frame::Done { poisoned, error, exiting: tainted },
            (true, d) => d,
            // A sealed VMA cannot be unmapped (that is what mseal is for): the worker is expected to be
            // dirty and simply retires after this scenario.
            (false, Frame::Done { poisoned, error, .. }) if tainted => Frame::Done { poisoned, error, exiting: true },
            (false, _) => {
                Frame::Done { poisoned: None, error: Some("arena window not empty after teardown".into()), exiting: true }
            }
        };
        if let Err(e) = out.send(&done) {
            return fatal(&e);
        }
        if !clean && !tainted {
            return fatal("the arena window is not empty after teardown");
        }
        if tainted {
            return 0;
        }
    }
}

/// Why a program stopped: a scenario-level infrastructure error (reported in `Done`), or the output
/// stream is gone (the worker exits).
enum Fatal {
    Scenario(String),
    Output(String),
}

fn uses_advice(steps: &[Step], value: i32) -> bool {
    steps.iter().any(|s| match s {
        Step::Madvise { advice, .. } => advice.value() == value,
        Step::Fork { child } => uses_advice(child, value),
        Step::InChild { step } => uses_advice(std::slice::from_ref(&**step), value),
        _ => false,
    })
}

/// One `in_child` step for the live child: the parent's step index (the point's id) and the step.
#[derive(Debug, Serialize, Deserialize)]
struct ChildCmd {
    step: u32,
    run: Step,
}

/// The child of a `fork_live` step, alive or already dead.
struct LiveChild {
    pid: libc::pid_t,
    /// Write end of the command pipe (None once closed by `child_exit`).
    cmd: Option<Fd>,
    /// Read end of the answer pipe.
    res: Fd,
    /// Set once the child died by this signal; it has been reaped then.
    dead: Option<Signal>,
    reaped: bool,
    /// The worker's CPU mask before `fork_live` pinned it (and so the child) to one CPU; restored on drop.
    saved_affinity: Option<libc::cpu_set_t>,
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
    fn reap(&mut self) -> Result<i32, String> {
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
        serde_json::from_slice(&body).map(Some).map_err(|e| format!("bad frame from live child: {e}"))
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

fn run_program(ctx: &mut Ctx, prog: &Program, out: &Out) -> Result<Option<String>, Fatal> {
    if prog.arena_pages > ARENA.max_pages {
        return Err(Fatal::Scenario(format!("arena_pages {} exceeds {}", prog.arena_pages, ARENA.max_pages)));
    }
    // Only MADV_FREE scenarios can be changed by reclaim on this host (no swap; file pages re-read equal).
    let lazyfreed = !uses_advice(&prog.steps, 21);
    let before = if uses_advice(&prog.steps, 8) {
        Some(reclaim_counter(ctx, lazyfreed).map_err(Fatal::Scenario)?)
    } else {
        None
    };
    // hugetlb scenarios observe the pool counters as changes from here (the runner runs them one at a
    // time, so nothing else moves these counters meanwhile).
    ctx.obs.huge_base = if prog.uses_hugetlb() {
        Some(crate::host::hugepool::Counters::read().map_err(Fatal::Scenario)?)
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
            let here = StepId { step: i, child: None };
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
                    let obs = ctx.obs.observe(Ret::Ok, prog.arena_pages, &idents).map_err(Fatal::Scenario)?;
                    out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
                    continue;
                }
                Step::InChild { step: inner } => {
                    let Some(c) = live.as_mut() else {
                        return Err(Fatal::Scenario(format!("step {i}: in_child without a live child")));
                    };
                    let obs = in_child(c, i, inner).map_err(Fatal::Scenario)?;
                    out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
                    continue;
                }
                Step::ChildExit => {
                    let Some(mut c) = live.take() else {
                        return Err(Fatal::Scenario(format!("step {i}: child_exit without a live child")));
                    };
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
                _ => {}
            }
            let ret = do_step(ctx, step, &files).map_err(Fatal::Scenario)?;
            let obs = ctx.obs.observe(ret, prog.arena_pages, &idents).map_err(Fatal::Scenario)?;
            out.send(&Frame::Point { id: here, obs }).map_err(Fatal::Output)?;
        }
        drop(live);
        drop(files);
        Ok(())
    })();
    // Teardown: one munmap over the window; files were closed when `files` dropped.
    // SAFETY: the window belongs to the arena; nothing of the worker's own lives there.
    unsafe { libc::munmap(ctx.win_lo as *mut libc::c_void, ctx.win_len as usize) };
    r?;
    if let Some(before) = before {
        let after = reclaim_counter(ctx, lazyfreed).map_err(Fatal::Scenario)?;
        if after != before {
            let what = if lazyfreed { "pgsteal+pglazyfreed" } else { "pgsteal" };
            return Ok(Some(format!("reclaim during scenario: {what} +{}", after.wrapping_sub(before))));
        }
    }
    Ok(None)
}

fn create_files(ctx: &mut Ctx, prog: &Program) -> Result<Vec<ScenarioFile>, String> {
    let mut files = Vec::with_capacity(prog.files.len());
    for (i, spec) in prog.files.iter().enumerate() {
        let fd = match spec.kind {
            FileKind::Disk => {
                let path = ctx.tmp.join(format!("f{i}"));
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(|_| format!("temp path {} contains NUL", path.display()))?;
                let fd = Fd::open(&c, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL)?;
                // Unlink at once, so nothing is left behind even if the worker is killed.
                // SAFETY: `c` is NUL-terminated.
                unsafe { libc::unlink(c.as_ptr()) };
                fd
            }
            FileKind::Memfd | FileKind::Hugetlb => {
                let name = std::ffi::CString::new(format!("madcheck-f{i}")).unwrap_or_default();
                let huge = if spec.kind == FileKind::Hugetlb { libc::MFD_HUGETLB } else { 0 };
                // SAFETY: `name` is NUL-terminated.
                let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | huge) };
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
            // SAFETY: a zeroed stat is a valid out-parameter.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
                return Err(format!("file {i}: fstat: {}", sys::strerror(sys::errno())));
            }
            files.push(ScenarioFile { fd, ident: FileIdent::from_stat(&st) });
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
        // SAFETY: a zeroed stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
            return Err(format!("file {i}: fstat: {}", sys::strerror(sys::errno())));
        }
        files.push(ScenarioFile { fd, ident: FileIdent::from_stat(&st) });
    }
    Ok(files)
}

fn map_fd(m: &MapSpec, files: &[ScenarioFile]) -> Result<RawFd, String> {
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
fn do_mmap(ctx: &Ctx, m: &MapSpec, fd: RawFd, fixed: i32) -> Result<(), i32> {
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
fn do_step(ctx: &Ctx, step: &Step, files: &[ScenarioFile]) -> Result<Ret, String> {
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

fn run_fork(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
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
        return out.send(&Frame::Point { id: StepId { step, child: None }, obs }).map_err(Fatal::Output);
    }
    if pid == 0 {
        drop(r);
        let code = child_main(ctx, prog, step, child, files, idents, w.0);
        // SAFETY: leave without running the parent's destructors or flushing anything twice.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    // Read everything the child sends, then reap it.
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match sys::read_some(r.0, &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(Fatal::Scenario(format!("fork step {step}: read child pipe: {}", sys::strerror(e)))),
        }
    }
    drop(r);
    let mut status = 0;
    loop {
        // SAFETY: reaping our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        if sys::errno() != libc::EINTR {
            return Err(Fatal::Scenario(format!("fork step {step}: waitpid: {}", sys::strerror(sys::errno()))));
        }
    }
    let mut received = 0u32;
    let mut pos = 0;
    let mut child_error = None;
    while let Some((s, e)) = sys::frame_bounds(&buf[pos..]).map_err(Fatal::Scenario)? {
        let body = &buf[pos + s..pos + e];
        match serde_json::from_slice::<Frame>(body) {
            Ok(Frame::Point { .. }) => {
                received += 1;
                sys::write_all(STDOUT, &buf[pos..pos + e])
                    .map_err(|e| Fatal::Output(format!("write frame: {}", sys::strerror(e))))?;
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
            let obs = Observation { ret: Ret::Signal(Signal::from_raw(libc::WTERMSIG(status))), vmas: vec![], pages: vec![], hugetlb: None };
            out.send(&Frame::Point { id: StepId { step, child: Some(received) }, obs }).map_err(Fatal::Output)?;
        }
    } else if libc::WEXITSTATUS(status) != 0 {
        return Err(Fatal::Scenario(format!("fork step {step}: child exited with status {}", libc::WEXITSTATUS(status))));
    }
    let obs = ctx.obs.observe(Ret::Ok, prog.arena_pages, idents).map_err(Fatal::Scenario)?;
    out.send(&Frame::Point { id: StepId { step, child: None }, obs }).map_err(Fatal::Output)
}

/// `fork_live`: fork a child that stays alive and takes `ChildCmd`s; forward its first view (`N.child0`).
/// A failing fork() is outside every scenario's scope, so it is an infrastructure error.
fn fork_live(
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
    let mut c = LiveChild { pid, cmd: Some(cmd_w), res: res_r, dead: None, reaped: false, saved_affinity };
    let first = StepId { step, child: Some(0) };
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
            let obs = Observation { ret: Ret::Signal(sig), vmas: vec![], pages: vec![], hugetlb: None };
            out.send(&Frame::Point { id: first, obs }).map_err(Fatal::Output)?;
        }
    }
    Ok(c)
}

/// Run one `in_child` step in the live child and return its observation (a signal once it died).
fn in_child(c: &mut LiveChild, step: u32, inner: &Step) -> Result<Observation, String> {
    let signal = |sig| Observation { ret: Ret::Signal(sig), vmas: vec![], pages: vec![], hugetlb: None };
    if let Some(sig) = c.dead {
        return Ok(signal(sig));
    }
    let frame = sys::encode_frame(&ChildCmd { step, run: inner.clone() })?;
    let fd = c.cmd.as_ref().map_or(-1, |f| f.0);
    // Rust ignores SIGPIPE, so a dead child gives EPIPE here, then EOF on the answer pipe.
    let _ = sys::write_all(fd, &frame);
    match c.read_frame()? {
        Some(Frame::Point { id, obs }) if id == (StepId { step, child: None }) => Ok(obs),
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
    step: u32,
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
        out.send(&Frame::Point { id: StepId { step, child: Some(0) }, obs })?;
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
    child_session(ctx, prog, step, idents, w, |ctx, out| {
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
            let ret = do_step(ctx, &c.run, files)?;
            let obs = ctx.obs.observe(ret, prog.arena_pages, idents)?;
            out.send(&Frame::Point { id: StepId { step: c.step, child: None }, obs })?;
        }
    })
}

/// The forked child: observe right after fork, then after each child step. Returns the exit code.
fn child_main(
    ctx: &mut Ctx,
    prog: &Program,
    step: u32,
    child: &[Step],
    files: &[ScenarioFile],
    idents: &[FileIdent],
    w: RawFd,
) -> i32 {
    child_session(ctx, prog, step, idents, w, |ctx, out| {
        for (k, s) in child.iter().enumerate() {
            let ret = do_step(ctx, s, files)?;
            let obs = ctx.obs.observe(ret, prog.arena_pages, idents)?;
            out.send(&Frame::Point { id: StepId { step, child: Some(k as u32 + 1) }, obs })?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::program::{AdviceArg, FileSpec};

    #[test]
    fn program_round_trips_through_a_frame() {
        let m = MapSpec { page: 0, pages: 2, prot: Prot::RW, backing: Backing::FileShared { file: 0, offset: 3 }, populate: true, locked: false };
        let p = Program {
            arena_pages: 4,
            files: vec![FileSpec { kind: FileKind::Memfd, pages: 4 }],
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
