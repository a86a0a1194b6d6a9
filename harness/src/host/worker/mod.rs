//! The worker process (`madcheck worker`): runs programs on the real kernel inside its arena.
//!
//! Invariant: the worker is single-threaded, and between scenarios the arena window
//! `[base - gap, base + (max_pages + gap) * PS)` is completely unmapped; the worker checks this at
//! start and after every teardown and exits non-zero rather than run a scenario on a dirty window.
//!
//! Protocol (both directions: u32 little-endian length, then the body):
//! - runner → worker: one `Program` per frame, as serde_json, optionally prefixed by the byte
//!   `FORK_REQUEST` (`F`): run this program in a fork()ed scenario child (below) although it would not
//!   retire the worker on success; the runner asks for that when the model expects the program to end
//!   by a signal (`Worker::submit_with`).
//! - worker → runner: `Frame`s in the binary encoding of `codec` (so are a fork or live child's frames
//!   to the worker). `Frame::Point` per observation point, written as soon as it is taken (so a step
//!   that kills the worker loses nothing before it), then one `Frame::Done`.
//! - worker → runner, notify pipe (the descriptor `NOTIFY_ENV` names, when the runner passes one): one
//!   byte after every program's `Done` (also one a forked scenario child wrote) and after every half
//!   frame pipe of frames (`protocol::write_stdout`). The runner sleeps on it instead of on stdout, so
//!   it wakes once per program rather than at every point; its EOF (the worker died) sends the runner
//!   back to reading stdout frame by frame up to EOF. Every write of frame bytes to stdout goes through
//!   `protocol::write_stdout` (`Out::send` to stdout, a fork step forwarding its child's points).
//! - worker → live child (`fork_live` … `child_exit`): one `ChildCmd` frame per `in_child` step on a
//!   pipe; the child answers with one `Frame::Point` on another pipe. EOF on the command pipe makes the
//!   child `_exit(0)`; EOF on the answer pipe means the child died, and the worker reaps it at once. The
//!   child has PR_SET_PDEATHSIG(SIGKILL), and the worker kills and reaps a child still alive at the end
//!   of the program or on any error, so a child never outlives its scenario or hangs the run.
//! - A program that would retire the worker (mseal, process-wide advice) runs in a fork()ed scenario
//!   child that writes the frames above to the worker's stdout itself (`program::run_forked`); the
//!   worker waits for it and, if it died by a signal, sends the `Signal` point the runner records for a
//!   dead worker and a `Done`. Fork and live children of such a program are the worker's grandchildren.

mod protocol;
mod codec;
mod step;
mod child;
mod program;
mod faults;

pub use faults::FAULT_DIR_ENV;
pub use codec::decode as decode_frame;
pub use protocol::{temp_dir_for, Frame, CPU_ENV, FORK_REQUEST, NOTIFY_ENV};

use crate::host::observe::{decode_zero_pfns, probe_zero_pfn, Observer, ZERO_PFN_ENV};
use crate::host::sys;
use crate::host::worker::program::run_program;
use crate::host::worker::protocol::{Fatal, Out, STDIN, STDOUT};
use crate::host::worker::step::Ctx;
use simulator::program::{Program, ARENA};

fn fatal(msg: &str) -> i32 {
    eprintln!("madcheck worker {}: {msg}", std::process::id());
    3
}

pub fn worker_main() -> i32 {
    // Scenarios kill workers with SIGSEGV/SIGBUS on purpose: never leave core files behind or spend time
    // dumping. As root, non-dumpable also stops pipe core_pattern helpers, and /proc/self stays readable.
    // Not as another user: a non-dumpable process's /proc/self/* belong to root, so it could not read its
    // own pagemap or smaps [S 6.12 fs/proc/base.c:task_dump_owner]; RLIMIT_CORE 0 alone stops core files.
    // SAFETY: plain integer arguments.
    unsafe {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        if libc::geteuid() == 0 {
            libc::prctl(libc::PR_SET_DUMPABLE, 0);
        }
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
    if let Err(e) = map_smaps_stops(win_lo + win_len, ps) {
        return fatal(&e);
    }
    // The runner's probe when it handed one over (every worker it starts), else our own.
    let handed = std::env::var(ZERO_PFN_ENV).ok().and_then(|t| decode_zero_pfns(&t));
    let zero_pfn = match handed {
        Some(z) => z,
        None => match probe_zero_pfn(ps as usize) {
            Ok(z) => z,
            Err(e) => return fatal(&e),
        },
    };
    // Decided once, before any arena exists: the helper (if needed) is a fork of this process.
    let reader = match crate::host::procmem::PageReader::start(ps as usize) {
        Ok(r) => r,
        Err(e) => return fatal(&e),
    };
    let obs = match Observer::open(ps as usize, base, zero_pfn, reader) {
        Ok(o) => o,
        Err(e) => return fatal(&e),
    };
    // Let the worker run ahead of a runner that is busy simulating: a bigger pipe holds a whole scenario.
    // SAFETY: fcntl on our stdout; failure only costs throughput.
    unsafe { libc::fcntl(STDOUT, libc::F_SETPIPE_SZ, 1 << 20) };
    // SAFETY: as above. Not a pipe (stdout redirected by hand): no capacity to respect.
    let capacity = unsafe { libc::fcntl(STDOUT, libc::F_GETPIPE_SZ) };
    if let Err(e) = protocol::init_notify(if capacity > 0 { capacity as usize } else { usize::MAX }) {
        return fatal(&e);
    }
    // The directory for disk files is made when the first disk-file scenario comes (`program::scratch`),
    // not here: most workers never hold a disk file, and a replaced worker's start-up is on the run's
    // critical path.
    let pm = step::PmFds::open();
    let mut ctx = Ctx {
        ps,
        base,
        win_lo,
        win_len,
        tmp: None,
        obs,
        vmstat: None,
        vmstat_buf: Vec::new(),
        tainted: Default::default(),
        pm,
        live_pidfd: std::cell::Cell::new(-1),
    };
    let code = serve(&mut ctx);
    if let Some(Ok(tmp)) = &ctx.tmp {
        let _ = std::fs::remove_dir_all(tmp);
    }
    code
}

/// How many `map_smaps_stops` mappings there are.
pub const SMAPS_STOPS: u64 = 4;

/// Map `SMAPS_STOPS` one-page PROT_NONE mappings above the arena window, each one page apart (so they
/// never merge, with each other or with a VMA at the window's top), kept for the worker's lifetime and
/// inherited by every child it forks.
///
/// smaps lists VMAs by address and the observer stops reading at the first record past the arena; the
/// kernel generates every record its read reaches (`show_smap` walks the VMA's page tables), so what
/// comes after the arena is paid for at every observation. Without these that was the worker's own
/// first ELF segment (176 pages, ~97 resident: a page-table walk longer than most arenas'); these have
/// no page tables, and there are enough of them (about 1 KiB of smaps text each) that a read
/// (1 KiB, `observe::SMAPS_CHUNK`) never reaches past them. They lie outside the arena window, so no observation includes them, no
/// scenario can map, unmap or merge with them (`check_program` keeps every range inside the window),
/// and the kernel never places a mapping there (the window is the lowest part of the address space
/// the process uses, far below mmap_base).
fn map_smaps_stops(win_hi: u64, ps: u64) -> Result<(), String> {
    for i in 0..SMAPS_STOPS {
        let at = win_hi + (1 + 2 * i) * ps;
        // SAFETY: a fresh PROT_NONE mapping at an address MAP_FIXED_NOREPLACE checks is free.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                ps as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED || p as u64 != at {
            return Err(format!("cannot map the smaps stop at {at:#x}: {}", sys::strerror(sys::errno())));
        }
    }
    Ok(())
}

fn serve(ctx: &mut Ctx) -> i32 {
    let out = Out { fd: STDOUT };
    let mut body = Vec::new();
    let mut served: u64 = 0;
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
        let (fork_requested, json) = match body.split_first() {
            Some((&FORK_REQUEST, rest)) => (true, rest),
            _ => (false, &body[..]),
        };
        let done = match serde_json::from_slice::<Program>(json) {
            Err(e) => Frame::Done { poisoned: None, error: Some(format!("bad program frame: {e}")), exiting: false },
            Ok(prog) => {
                faults::arm(served, prog.step_ids().len());
                served += 1;
                // A program that would retire the worker runs in a fork()ed child instead, and so does
                // one the runner asks to (one the model expects to end by a signal), unless a fault is
                // armed (that must hit the worker itself) or it uses hugetlb (`taints_on_success`).
                let forked = program::taints_on_success(&prog) || (fork_requested && program::may_fork(&prog));
                let r = if !faults::armed() && forked {
                    match program::run_forked(ctx, &prog, &out) {
                        Ok(None) => {
                            // The child sent its Done; the worker's own window was never touched.
                            if !sys::window_is_empty(ctx.win_lo, ctx.win_len) {
                                return fatal("the arena window is not empty after a forked scenario");
                            }
                            if let Err(e) = protocol::notify() {
                                return fatal(&e);
                            }
                            continue;
                        }
                        Ok(Some(done)) => Ok(done),
                        Err(e) => Err(e),
                    }
                } else {
                    run_program(ctx, &prog, &out).map(|poisoned| Frame::Done { poisoned, error: None, exiting: false })
                };
                match r {
                    Ok(done) => done,
                    Err(Fatal::Scenario(e)) => Frame::Done { poisoned: None, error: Some(e), exiting: false },
                    Err(Fatal::Output(e)) => return fatal(&e),
                }
            }
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
        if let Err(e) = out.send(&done).and_then(|()| protocol::notify()) {
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
