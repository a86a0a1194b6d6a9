//! C reproducers: one scenario and the answer it must give, as a standalone C99 file (libc only).
//!
//! Invariant: pure (data in, `String` out), and the C does what the worker does, in the same order and
//! with the same calls (`worker.rs`): the same arena address (`ARENA.base`), MAP_FIXED_NOREPLACE for the
//! layout and MAP_FIXED for mmap steps, disk files written one page per pwrite and unlinked at once,
//! memfds, the process pinned to one CPU, and after every step the same observation (the arena's smaps
//! records with VmFlags and counters, pagemap residency with the shared zero page found by the same
//! probe, page contents, the hugetlb pool counters as changes since the start). It compares every field
//! `simulator::observe::compare` compares, prints the first differing point in the same words
//! (`DIVERGENCE <id> at <point>`, the call, `field:` / `expected` / `observed`), and exits 0 when every
//! point matches, 1 at a difference, 125 when it cannot test here (another page size, no huge page
//! pool, reclaim during the run, a point the model does not know) and 3 on a setup failure.
//!
//! One weakening, said here and in the file: the C has no XXH3, so a page the model or the recording
//! expects as `Hash(h)` matches any page that is neither zero, a fill, nor an original file page.
//! Where the answer is a set (errno ∈ {…}, page ∈ {…}, counts lo..=hi) the C accepts the set.
//!
//! The scenario runs in a child process, so a step that ends in a fatal signal is observed by the
//! parent as madcheck observes a worker's death: that point's `ret` is the signal.

use simulator::observe::{render_layout, render_page, render_ret_set, Content, Errno, Expect, PageObs, Residency, Ret, Signal, VmaBacking};
use simulator::program::{Backing, FileKind, MapSpec, Program, Prot, Step, StepId, ARENA};
use std::fmt::Write as _;

/// What the C file is built from.
pub struct Repro<'a> {
    pub id: &'a str,
    pub program: &'a Program,
    /// The answer for every point, in `Program::step_ids` order (the model's, or a recording turned into
    /// single-valued answers); it may end early (a fatal signal, or a point the model does not know).
    pub points: &'a [(StepId, Expect)],
    /// `render::render_point` of every point of `points`.
    pub calls: Vec<String>,
    pub page_size: u64,
    /// One line each, for the header comment: where the scenario and the answer come from.
    pub about: Vec<String>,
}

/// A C string literal.
fn lit(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(out, "\\{byte:03o}");
                }
            }
        }
    }
    out.push('"');
    out
}

fn errno_raw(e: Errno) -> i64 {
    match e {
        Errno::EPERM => 1,
        Errno::ESRCH => 3,
        Errno::EINTR => 4,
        Errno::EIO => 5,
        Errno::EBADF => 9,
        Errno::EAGAIN => 11,
        Errno::ENOMEM => 12,
        Errno::EACCES => 13,
        Errno::EFAULT => 14,
        Errno::EBUSY => 16,
        Errno::EEXIST => 17,
        Errno::EINVAL => 22,
        Errno::ENOSPC => 28,
        Errno::ENOSYS => 38,
        Errno::EOPNOTSUPP => 95,
        Errno::EHWPOISON => 133,
        Errno::Other(v) => v as i64,
    }
}

fn signal_raw(s: Signal) -> i64 {
    match s {
        Signal::SIGSEGV => 11,
        Signal::SIGBUS => 7,
        Signal::SIGABRT => 6,
        Signal::SIGKILL => 9,
        Signal::SIGILL => 4,
        Signal::Other(v) => v as i64,
    }
}

/// A return as the C encodes it: 0, errno (> 0), -signal, or `BYTES` (2^32) + a byte count.
fn ret_code(r: Ret) -> i64 {
    match r {
        Ret::Ok => 0,
        Ret::Bytes(n) => (1i64 << 32) + n as i64,
        Ret::Key(k) => (2i64 << 32) + k as i64,
        Ret::Err(e) => errno_raw(e),
        Ret::Signal(s) => -signal_raw(s),
    }
}

fn backing_code(b: VmaBacking) -> i64 {
    match b {
        VmaBacking::File(i) => i as i64,
        VmaBacking::Anon => -1,
        VmaBacking::Shmem => -2,
        VmaBacking::Hugetlb => -3,
        VmaBacking::Foreign => -4,
    }
}

fn res_code(r: Residency) -> u32 {
    match r {
        Residency::Absent => 0,
        Residency::Present => 1,
        Residency::ZeroPage => 2,
        Residency::Swap => 3,
    }
}

/// `{kind, a, b}`: 0 none, 1 zero, 2 fill a, 3 file page (a, b), 4 anything else (a hash).
fn content_code(c: Option<Content>) -> (u32, u64, u64) {
    match c {
        None => (0, 0, 0),
        Some(Content::Zero) => (1, 0, 0),
        Some(Content::Fill(f)) => (2, f as u64, 0),
        Some(Content::FilePage { file, page }) => (3, file as u64, page as u64),
        Some(Content::Hash(_)) => (4, 0, 0),
    }
}

fn prot_c(p: Prot) -> String {
    let mut v = Vec::new();
    if p.read {
        v.push("PROT_READ");
    }
    if p.write {
        v.push("PROT_WRITE");
    }
    if p.exec {
        v.push("PROT_EXEC");
    }
    if v.is_empty() {
        "PROT_NONE".into()
    } else {
        v.join("|")
    }
}

fn map_call(m: &MapSpec, fixed: &str) -> String {
    let (kind, fd, off) = match m.backing {
        Backing::AnonPrivate => ("MAP_PRIVATE|MAP_ANONYMOUS", "-1".to_string(), 0),
        Backing::AnonShared => ("MAP_SHARED|MAP_ANONYMOUS", "-1".to_string(), 0),
        Backing::FilePrivate { file, offset } => ("MAP_PRIVATE", format!("file_fd[{file}]"), offset),
        Backing::FileShared { file, offset } => ("MAP_SHARED", format!("file_fd[{file}]"), offset),
        Backing::HugetlbPrivate => ("MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB", "-1".to_string(), 0),
        Backing::HugetlbShared => ("MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB", "-1".to_string(), 0),
        Backing::AnonDroppable => ("MAP_DROPPABLE|MAP_ANONYMOUS", "-1".to_string(), 0),
    };
    let extra = format!(
        "{}{}{}",
        if m.populate { "|MAP_POPULATE" } else { "" },
        if m.locked { "|MAP_LOCKED" } else { "" },
        if m.noreserve { "|MAP_NORESERVE" } else { "" }
    );
    format!(
        "do_mmap({}, {}, {}, {kind}|{fixed}{extra}, {fd}, {off})",
        m.page,
        m.pages,
        prot_c(m.prot)
    )
}

/// The C statement(s) of one non-fork step, as an expression-returning block (`return <code>;`).
fn step_body(s: &Step) -> String {
    match s {
        Step::Madvise { page, offset, len_pages, len_bytes, advice } => format!(
            "uint64_t a = BASE + (uint64_t)({page}LL) * PS + (uint64_t)({offset}LL);\n\
             \x20   uint64_t l = (uint64_t)({len_pages}LL) * PS + (uint64_t)({len_bytes}LL);\n\
             \x20   return rc(madvise((void *)(uintptr_t)a, (size_t)l, {}));",
            advice.value()
        ),
        Step::Write { page, fill } => format!("memset(PAGE({page}), {fill}, PS);\n    __asm__ volatile(\"\" ::: \"memory\");\n    return 0;"),
        Step::Read { page } => format!("(void)*(volatile unsigned char *)PAGE({page});\n    return 0;"),
        Step::TryWrite { page, fill } => format!("return try_access({page}, {fill});"),
        Step::TryRead { page } => format!("return try_access({page}, -1);"),
        Step::Mprotect { page, pages, prot } => format!("return rc(mprotect(PAGE({page}), {pages} * PS, {}));", prot_c(*prot)),
        Step::Munmap { page, pages } => format!("return rc(munmap(PAGE({page}), {pages} * PS));"),
        Step::Mmap { map } => format!("return {};", map_call(map, "MAP_FIXED")),
        Step::Mlock { page, pages, onfault: false } => format!("return rc(mlock(PAGE({page}), {pages} * PS));"),
        Step::Mlock { page, pages, onfault: true } => {
            format!("return rc(syscall(SYS_mlock2, PAGE({page}), {pages} * PS, 1 /* MLOCK_ONFAULT */));")
        }
        Step::Munlock { page, pages } => format!("return rc(munlock(PAGE({page}), {pages} * PS));"),
        Step::Mseal { page, pages } => format!("return rc(syscall(462 /* mseal */, PAGE({page}), {pages} * PS, 0));"),
        // pkey_mprotect 329, pkey_alloc 330, pkey_free 331 on x86_64; 288-290 in asm-generic (arm64).
        Step::PkeyAlloc { rights } => format!(
            "long k = syscall(SYS_pkey_alloc, 0UL, {}UL /* {} */);\n    return k < 0 ? errno : KEY + k;",
            rights.value(),
            rights.name()
        ),
        Step::PkeyFree { pkey } => format!("return rc(syscall(SYS_pkey_free, (long){pkey}));"),
        Step::PkeyMprotect { page, pages, prot, pkey } => {
            format!("return rc(syscall(SYS_pkey_mprotect, PAGE({page}), (size_t){pages} * PS, (long)({}), (long){pkey}));", prot_c(*prot))
        }
        Step::PkeySet { pkey, rights } => format!("return pkey_set_rights({pkey}, {} /* {} */);", rights.value(), rights.name()),
        Step::Mremap { page, pages, new_pages, to: None, .. } => {
            format!("return mremap(PAGE({page}), {pages} * PS, {new_pages} * PS, 0) == MAP_FAILED ? errno : 0;")
        }
        Step::Mremap { page, pages, new_pages, to: Some(t), dontunmap } => format!(
            "return mremap(PAGE({page}), {pages} * PS, {new_pages} * PS, MREMAP_MAYMOVE|MREMAP_FIXED{}, PAGE({t})) == MAP_FAILED ? errno : 0;",
            if *dontunmap { "|4 /* MREMAP_DONTUNMAP */" } else { "" }
        ),
        Step::Close { file } => format!(
            "long r = rc(close(file_fd[{file}]));\n    file_fd[{file}] = -1; /* later calls get EBADF, as in the worker */\n    return r;"
        ),
        Step::Seal { file, seals } => format!(
            "return rc(fcntl(file_fd[{file}], F_ADD_SEALS, {:#x}));",
            simulator::program::SealKind::bits(seals)
        ),
        Step::Ftruncate { file, pages } => format!("return rc(ftruncate(file_fd[{file}], (off_t){pages} * (off_t)PS));"),
        Step::Fallocate { file, page, pages, mode } => format!(
            "return rc(fallocate(file_fd[{file}], {}, (off_t){page} * (off_t)PS, (off_t){pages} * (off_t)PS));",
            mode.value()
        ),
        Step::ProcessMadvise { target, iov, vlen, advice, flags } => {
            use simulator::program::PidfdTarget as T;
            let fd = match target {
                T::SelfPidfd => "self_pidfd".to_string(),
                T::PidfdSelf => format!("{} /* PIDFD_SELF */", simulator::program::PIDFD_SELF),
                T::LiveChild => "live_pidfd".to_string(),
                T::ExitedChild => "dead_pidfd".to_string(),
                T::BadFd => "-1".to_string(),
                T::NotPidfd => "not_pidfd".to_string(),
            };
            let n = Step::pm_vlen(iov, *vlen);
            let (decl, arg) = match iov {
                None => (String::new(), "NULL".to_string()),
                Some(v) => {
                    let elems: Vec<String> = v
                        .iter()
                        .map(|e| {
                            format!(
                                "{{(void *)(uintptr_t)(BASE + (uint64_t)({}LL) * PS + (uint64_t)({}LL)), (size_t)((uint64_t)({}LL) * PS + (uint64_t)({}LL))}}",
                                e.page, e.offset, e.len_pages, e.len_bytes
                            )
                        })
                        .collect();
                    // One spare element, so that an empty vector is still a valid array.
                    (format!("struct iovec v[{}] = {{{}}};\n    ", v.len() + 1, join_or0(&elems)), "v".to_string())
                }
            };
            format!("{decl}return pm({fd}, {arg}, {n}UL, {}, {flags}U);", advice.value())
        }
        Step::Fork { .. } | Step::ForkLive | Step::InChild { .. } | Step::ChildExit => "return -1;".into(),
    }
}

/// The fixed part of every reproducer: observation and comparison.
const RUNTIME: &str = include_str!("repro_runtime.c");

/// Generate the C file.
pub fn generate(r: &Repro) -> String {
    let p = r.program;
    let mut c = String::new();
    let _ = writeln!(c, "/* madcheck reproducer: {}", r.id);
    for l in &r.about {
        let _ = writeln!(c, " * {}", l.replace("*/", "* /"));
    }
    let _ = writeln!(c, " *");
    let _ = writeln!(c, " * Build: gcc -std=c99 -O2 -static -o repro this.c   (or aarch64-linux-gnu-gcc ...)");
    let _ = writeln!(c, " * Run (as root for the shared zero page): ./repro; exit 0 = every point matches, 1 = a");
    let _ = writeln!(c, " * difference (printed), 125 = cannot test here, 3 = setup failure.");
    let _ = writeln!(c, " * A page expected as Hash(..) matches any page that is not zero, a fill or a file page.");
    let _ = writeln!(c, " */");
    let _ = writeln!(c, "#define ID {}", lit(r.id));
    let _ = writeln!(c, "#define BASE {:#x}UL", ARENA.base);
    let _ = writeln!(c, "#define GAP_PAGES {}", ARENA.gap_pages);
    let _ = writeln!(c, "#define MAX_PAGES {}", ARENA.max_pages);
    let _ = writeln!(c, "#define ARENA_PAGES {}", p.arena_pages);
    let _ = writeln!(c, "#define EXPECT_PS {}", r.page_size);
    let _ = writeln!(c, "#define NFILES {}", p.files.len());
    let _ = writeln!(c, "#define NPOINTS {}", r.points.len());
    let _ = writeln!(c, "#define USES_HUGETLB {}", i32::from(p.uses_hugetlb()));
    let _ = writeln!(c, "#define USES_MLOCK {}", i32::from(p.locks()));
    // Reclaim can change MADV_FREE pages and droppable memory (dropped dirty or not): the same check.
    let droppable = |m: &MapSpec| m.backing == Backing::AnonDroppable;
    let uses_free = p.steps.iter().any(|s| uses_advice(s, 8))
        || p.maps.iter().any(droppable)
        || p.steps.iter().any(|s| matches!(s, Step::Mmap { map } if droppable(map)));
    let uses_pageout = p.steps.iter().any(|s| uses_advice(s, 21));
    let _ = writeln!(c, "#define USES_FREE {}", i32::from(uses_free));
    let _ = writeln!(c, "#define USES_FORK {}", i32::from(p.steps.iter().any(|s| matches!(s, Step::Fork { .. }))));
    let _ = writeln!(c, "#define USES_LIVE {}", i32::from(p.steps.iter().any(|s| matches!(s, Step::ForkLive))));
    let _ = writeln!(c, "#define COUNT_LAZYFREED {}", i32::from(!uses_pageout));
    let _ = writeln!(c, "#define USES_PM {}", i32::from(p.steps.iter().any(|s| matches!(s, Step::ProcessMadvise { .. }))));
    let (head, body) = RUNTIME.split_once("/*@TABLES@*/").unwrap_or((RUNTIME, ""));
    c.push_str(head);

    // Files.
    let kinds: Vec<String> = p.files.iter().map(|f| match f.kind {
        FileKind::Disk => "0".to_string(),
        FileKind::Memfd => "1".to_string(),
        FileKind::Hugetlb => "2".to_string(),
        FileKind::Tmpfs => "3".to_string(),
    }).collect();
    let readonly: Vec<String> = p.files.iter().map(|f| i32::from(f.readonly).to_string()).collect();
    let pages: Vec<String> = p.files.iter().map(|f| f.pages.to_string()).collect();
    let _ = writeln!(c, "static const int file_kind[NFILES + 1] = {{{}}};", join_or0(&kinds));
    let _ = writeln!(c, "static const unsigned file_pages[NFILES + 1] = {{{}}};", join_or0(&pages));
    let _ = writeln!(c, "static const int file_readonly[NFILES + 1] = {{{}}};", join_or0(&readonly));
    let sealing: Vec<String> = p.files.iter().map(|f| i32::from(f.sealing).to_string()).collect();
    let _ = writeln!(c, "static const int file_sealing[NFILES + 1] = {{{}}};\n", join_or0(&sealing));

    // Expectations.
    emit_points(&mut c, r);
    c.push_str(body);

    // Steps: one case per step (top level, fork child and in_child steps), numbered in program order.
    let mut bodies: Vec<String> = Vec::new();
    let mut top_case: Vec<usize> = Vec::new();
    let mut child_case: Vec<Vec<usize>> = Vec::new();
    // The cases of a grandchild's steps: (top step, child step) → one case per grandchild step.
    let mut grand_case: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
    for (i, s) in p.steps.iter().enumerate() {
        let mut kids = Vec::new();
        match s {
            Step::Fork { child } => {
                for (j, cs) in child.iter().enumerate() {
                    if let Step::Fork { child: grand } = cs {
                        let g: Vec<usize> = grand
                            .iter()
                            .map(|gs| {
                                bodies.push(step_body(gs));
                                bodies.len() - 1
                            })
                            .collect();
                        grand_case.insert((i, j), g);
                    }
                    kids.push(bodies.len());
                    bodies.push(step_body(cs));
                }
            }
            Step::InChild { step } => {
                kids.push(bodies.len());
                bodies.push(step_body(step));
            }
            _ => {}
        }
        top_case.push(bodies.len());
        bodies.push(step_body(s));
        child_case.push(kids);
    }
    c.push_str("static long do_step(int s) {\n  switch (s) {\n");
    for (i, b) in bodies.iter().enumerate() {
        let _ = writeln!(c, "  case {i}: {{\n    {b}\n  }}");
    }
    c.push_str("  }\n  return -1;\n}\n\n");

    // The scenario, straight-line, one check per point.
    // A point's index in the expectation table, which holds the points the answer has (`r.points`): after
    // a fork child or grandchild died, its later points are missing, and so are their entries (-1: code
    // that never runs, since that process is gone).
    let pi_of = |id: StepId| r.points.iter().position(|(x, _)| *x == id).map_or(-1, |i| i as i64);
    c.push_str("static int scenario(void) {\n  long r;\n  int k;\n  (void)r; (void)k;\n");
    for (i, m) in p.maps.iter().enumerate() {
        let _ = writeln!(c, "  if ({} != 0) return setup_failed(\"layout map {i}\");", map_call(m, "MAP_FIXED_NOREPLACE"));
    }
    for (i, s) in p.steps.iter().enumerate() {
        let here = pi_of(StepId { step: i as u32, child: None, grandchild: None });
        let _ = writeln!(c, "  /* {} */", lit(&crate::run::call::render_point(p, StepId { step: i as u32, child: None, grandchild: None })));
        match s {
            Step::Fork { child } => {
                let _ = writeln!(c, "  k = fork_begin({});", pi_of(StepId { step: i as u32, child: Some(0), grandchild: None }));
                let _ = writeln!(c, "  if (k == 0) {{");
                for (j, _) in child.iter().enumerate() {
                    let pi = pi_of(StepId { step: i as u32, child: Some(j as u32 + 1), grandchild: None });
                    if let Some(g) = grand_case.get(&(i, j)) {
                        // The child forks again: the grandchild's points, then the child's own view; the
                        // shared cursor then names the child's next point again.
                        let gpi = |k: u32| pi_of(StepId { step: i as u32, child: Some(j as u32 + 1), grandchild: Some(k) });
                        let _ = writeln!(c, "    k = fork_begin({});", gpi(0));
                        let _ = writeln!(c, "    if (k == 0) {{");
                        for (gj, case) in g.iter().enumerate() {
                            let _ = writeln!(c, "      child_point({}, do_step({case}));", gpi(gj as u32 + 1));
                        }
                        let _ = writeln!(c, "      _exit(0);\n    }}");
                        let _ = writeln!(c, "    if ((k = fork_end(k, {pi})) != 0) _exit(k);");
                        let _ = writeln!(c, "    fflush(stdout);\n    cur->child_point = {};", if pi < 0 { -1 } else { pi + 1 });
                        continue;
                    }
                    let _ = writeln!(c, "    child_point({pi}, do_step({}));", child_case[i][j]);
                }
                let _ = writeln!(c, "    _exit(0);\n  }}");
                let _ = writeln!(c, "  if ((k = fork_end(k, {here})) != 0) return k;");
            }
            Step::ForkLive => {
                let _ = writeln!(c, "  if ((k = live_begin({}, {here})) != 0) return k;", pi_of(StepId { step: i as u32, child: Some(0), grandchild: None }));
            }
            Step::InChild { .. } => {
                let _ = writeln!(c, "  if ((k = live_step({}, {here})) != 0) return k;", child_case[i][0]);
            }
            Step::ChildExit => {
                let _ = writeln!(c, "  if ((k = live_end({here})) != 0) return k;");
            }
            Step::ProcessMadvise { target: simulator::program::PidfdTarget::LiveChild, .. } => {
                let _ = writeln!(c, "  if ((k = live_pm({here}, do_step({}))) != 0) return k;", top_case[i]);
            }
            _ => {
                let _ = writeln!(c, "  cur->point = {here};");
                let _ = writeln!(c, "  if ((k = check({here}, do_step({}))) != 0) return k;", top_case[i]);
            }
        }
    }
    c.push_str("  return 0;\n}\n");
    c
}

fn join_or0(v: &[String]) -> String {
    if v.is_empty() {
        "0".into()
    } else {
        v.join(", ")
    }
}

fn uses_advice(s: &Step, value: i32) -> bool {
    match s {
        Step::Madvise { advice, .. } | Step::ProcessMadvise { advice, .. } => advice.value() == value,
        Step::Fork { child } => child.iter().any(|c| uses_advice(c, value)),
        Step::InChild { step } => uses_advice(step, value),
        _ => false,
    }
}

fn emit_points(c: &mut String, r: &Repro) {
    // Flat tables: VMAs and page alternatives of every point.
    let mut vmas = String::new();
    let mut alts = String::new();
    let mut alt_index = String::new();
    let mut points = String::new();
    let (mut nv, mut na, mut nai) = (0usize, 0usize, 0usize);
    for (k, (id, e)) in r.points.iter().enumerate() {
        let call = r.calls.get(k).cloned().unwrap_or_default();
        match e {
            Expect::Unsupported(why) => {
                let _ = writeln!(
                    points,
                    "  {{{}, {}, {}, 0, {{0}}, NULL, 0, NULL, 0, NULL, 0, 0, 0, 0, NULL, 0, 0, NULL, NULL, NULL}},",
                    lit(&id.to_string()),
                    lit(&call),
                    lit(why)
                );
            }
            Expect::Allowed(a) => {
                let rets: Vec<String> = a.ret.iter().take(8).map(|r| ret_code(*r).to_string()).collect();
                let layout: Vec<_> = a.vmas.iter().map(|v| (v.start, v.end, v.perms.as_str(), v.offset, v.backing)).collect();
                let v0 = nv;
                for v in &a.vmas {
                    let _ = writeln!(
                        vmas,
                        "  {{{}, {}, {}, {}, {}, {}, {{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}}, {{{}, {}, {}, {}, {}, {}, {}}}, {}}},",
                        v.start,
                        v.end,
                        lit(&v.perms),
                        v.offset,
                        backing_code(v.backing),
                        lit(&v.flags.join(" ")),
                        v.rss.lo, v.rss.hi, v.anon.lo, v.anon.hi, v.lazyfree.lo, v.lazyfree.hi, v.locked.lo, v.locked.hi,
                        v.hugetlb_shared.lo, v.hugetlb_shared.hi, v.hugetlb_private.lo, v.hugetlb_private.hi, v.swap.lo, v.swap.hi,
                        lit(&v.rss.to_string()), lit(&v.anon.to_string()), lit(&v.lazyfree.to_string()), lit(&v.locked.to_string()),
                        lit(&v.hugetlb_shared.to_string()), lit(&v.hugetlb_private.to_string()), lit(&v.swap.to_string()),
                        v.pkey.map_or(-1, |k| k as i64),
                    );
                    nv += 1;
                }
                let ai0 = nai;
                let mut texts = Vec::new();
                for page_alts in &a.pages {
                    let _ = write!(alt_index, "{na}, {}, ", page_alts.len());
                    nai += 1;
                    for pa in page_alts {
                        let (kind, x, y) = content_code(pa.content);
                        let _ = write!(alts, "{{{}, {kind}, {x}, {y}}}, ", res_code(pa.res));
                        na += 1;
                    }
                    texts.push(lit(&page_alts.iter().map(render_page).collect::<Vec<_>>().join(" | ")));
                    if nai % 8 == 0 {
                        alt_index.push('\n');
                        alts.push('\n');
                    }
                }
                let texts_name = format!("ptext{k}");
                let _ = writeln!(c, "static const char *const {texts_name}[] = {{{}}};", join_or_null(&texts));
                let (huge, hf, hr, hs) = match a.hugetlb {
                    Some(h) => (1, h.free, h.rsvd, h.surp),
                    None => (0, 0, 0, 0),
                };
                let _ = writeln!(
                    points,
                    "  {{{}, {}, NULL, {}, {{{}}}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, &vexp[{v0}], &aidx[{}]}},",
                    lit(&id.to_string()),
                    lit(&call),
                    rets.len(),
                    join_or0(&rets),
                    lit(&render_ret_set(&a.ret)),
                    a.vmas.len(),
                    lit(&render_layout(&layout)),
                    a.pages.len(),
                    texts_name,
                    huge,
                    hf,
                    hr,
                    hs,
                    lit(&a.hugetlb.map_or_else(|| "not observed".to_string(), |h| h.to_string())),
                    i32::from(a.locked_vm.is_some()),
                    a.locked_vm.unwrap_or(0),
                    lit(&a.locked_vm.map_or_else(|| "not observed".to_string(), |n| format!("{n} pages"))),
                    ai0 * 2,
                );
            }
        }
    }
    let _ = writeln!(c, "static const struct vexp vexp[] = {{\n{}  {{0, 0, \"\", 0, 0, \"\", {{0}}, {{0}}}}\n}};", vmas);
    let _ = writeln!(c, "static const struct pexp alts[] = {{\n{}{{0, 0, 0, 0}}\n}};", alts);
    let _ = writeln!(c, "static const int aidx[] = {{\n{}0, 0\n}};", alt_index);
    let _ = writeln!(c, "static const struct point P[NPOINTS + 1] = {{\n{}  {{NULL}}\n}};\n", points);
}

fn join_or_null(v: &[String]) -> String {
    if v.is_empty() {
        "NULL".into()
    } else {
        v.join(", ")
    }
}

/// Turn recorded observations (another kernel's) into single-valued answers for [`Repro::points`].
pub fn exact_points(points: &[(StepId, simulator::observe::Observation)]) -> Vec<(StepId, Expect)> {
    points
        .iter()
        .map(|(id, o)| {
            let a = simulator::observe::Allowed {
                ret: vec![o.ret],
                vmas: o.vmas.iter().map(simulator::observe::VmaAllowed::exact).collect(),
                pages: o.pages.iter().map(|p: &PageObs| vec![*p]).collect(),
                hugetlb: o.hugetlb, locked_vm: o.locked_vm,
            };
            (*id, Expect::Allowed(a))
        })
        .collect()
}
