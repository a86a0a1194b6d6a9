//! The seeded generator: `generate(seed, index)` is a pure function of its two arguments.
//!
//! Invariant: every scenario it returns passes [`validate`](crate::validate). It leans towards the
//! edges the front end and the VMA walk care about (spec/semantics.md §2): unaligned starts, zero and
//! sub-page lengths, lengths that wrap, ranges that end in or span holes or cross VMAs of different
//! kinds, ranges starting in the guard gap. About 70% of madvise calls are well formed (aligned, inside
//! the arena) so the semantic paths get most of the runs.
//!
//! The generator keeps a conservative picture of each arena page (mapped? with which protection? maybe
//! DONTFORK?) so that ordinary reads and writes never fault: a fault kills the worker, which is
//! expensive, so only about 2–3% of scenarios end with one access that faults on purpose. Caught
//! accesses (`try_write`, `try_read`) may fault anywhere, since the program goes on after them: they
//! pick any arena page, half the time one the picture says faults (a hole, a guard, a page without the
//! permission).

use crate::validate::{check_madvise, madvise_extent, PAGE_SIZES};
use crate::{Provenance, Scenario};
use simulator::program::{Advice, AdviceArg, Backing, FileKind, FileSpec, MapSpec, Program, Prot, Step, ARENA};
use std::collections::HashSet;

/// Named advice the generator never draws: on a kernel with CONFIG_MEMORY_FAILURE, HWPOISON and
/// SOFT_OFFLINE over a mapped page would poison or migrate a real frame (the corpus runs them only with
/// length 0, unaligned, or over holes).
pub const NEVER_GENERATED: [Advice; 2] = [Advice::Hwpoison, Advice::SoftOffline];

/// The named advice values the generator draws from: `Advice::ALL` without `NEVER_GENERATED`, in
/// `Advice::ALL` order.
pub const GENERATED_ADVICE: &[Advice] = &{
    let mut out = [Advice::Normal; Advice::ALL.len() - NEVER_GENERATED.len()];
    let (mut i, mut n) = (0, 0);
    while i < Advice::ALL.len() {
        let a = Advice::ALL[i];
        let mut never = false;
        let mut j = 0;
        while j < NEVER_GENERATED.len() {
            never |= a as u8 == NEVER_GENERATED[j] as u8;
            j += 1;
        }
        if !never {
            out[n] = a;
            n += 1;
        }
        i += 1;
    }
    out
};

/// Raw advice values no kernel knows (holes in the numbering, negatives, huge), drawn for ~5% of calls.
pub const GENERATED_INVALID_ADVICE: &[i32] = &[5, 6, 7, 26, 99, 104, -1, 1000, i32::MAX];

/// The scenario `gen-<seed>-<index>`; the same arguments give the same scenario on every machine.
pub fn generate(seed: u64, index: u64) -> Scenario {
    draw(seed, index, 0, false)
}

/// `generate(seed, index)`, or with `destructive` its destructive variant: a hugetlb scenario also draws
/// fork (plain and live) and mremap steps, which can leak huge pages or corrupt the pool's counters on
/// some kernels, so they only run in a disposable qemu guest (`madcheck run --destructive`). The
/// destructive steps come from their own hash of (seed, index), so every other scenario, and every
/// hugetlb scenario without `destructive`, is byte-identical to `generate(seed, index)`.
pub fn generate_with(seed: u64, index: u64, destructive: bool) -> Scenario {
    draw(seed, index, 0, destructive)
}

/// `generate(seed, i)` for `i` in `0..n`, with pairwise distinct programs. A program equal to an
/// earlier one in the batch is redrawn from `(seed, index, attempt)` with the same id and a description
/// that says so; with programs this rich that does not happen in practice (tests check 10,000), so each
/// scenario can be replayed with `generate(seed, index)` alone.
pub fn generate_many(seed: u64, n: u64) -> Vec<Scenario> {
    generate_many_with(seed, n, false)
}

/// `generate_many`, with the destructive variant when `destructive` (see `generate_with`).
pub fn generate_many_with(seed: u64, n: u64, destructive: bool) -> Vec<Scenario> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for index in 0..n {
        let mut attempt = 0;
        loop {
            let s = draw(seed, index, attempt, destructive);
            // Program has no Hash; its JSON is a faithful key.
            let key = serde_json::to_string(&s.program).unwrap_or_default();
            if seen.insert(key) {
                out.push(s);
                break;
            }
            attempt += 1;
        }
    }
    out
}

/// Scenarios per thousand that are hugetlb scenarios (`hugetlb::draw`). The choice comes from its own
/// hash of (seed, index), so the other scenarios of a seed stay what they were before hugetlb existed.
pub const HUGETLB_PER_MILLE: u64 = 30;

/// Scenarios per thousand that are PMD-THP scenarios (`thp::draw`), from their own hash of (seed, index)
/// like the hugetlb ones, so the other scenarios of a seed stay what they were before.
pub const THP_PER_MILLE: u64 = 25;

fn draw(seed: u64, index: u64, attempt: u64, destructive: bool) -> Scenario {
    if mix(mix(seed ^ 0x7468_705f_706d_6421) ^ index) % 1000 < THP_PER_MILLE
        && mix(mix(seed ^ 0x6875_6765_746c_6221) ^ index) % 1000 >= HUGETLB_PER_MILLE
    {
        let program = thp::draw(&mut Rng::new(seed ^ 0x5448_50, index, attempt));
        return Scenario {
            id: format!("gen-{seed}-{index}"),
            description: format!("generated (thp) from seed {seed}, index {index}"),
            provenance: Provenance::Generated { seed, index },
            program,
        };
    }
    if mix(mix(seed ^ 0x6875_6765_746c_6221) ^ index) % 1000 < HUGETLB_PER_MILLE {
        // The destructive steps have their own stream, so the ordinary draws are the same either way.
        let mut extra = destructive.then(|| Rng::new(seed ^ 0x6465_7374_7275_6374, index, attempt));
        let mut program = hugetlb::draw(&mut Rng::new(seed ^ 0x4854, index, attempt), extra.as_mut());
        hugetlb_seal_insert(&mut Rng::new(seed ^ 0x7365_616c_7321, index, attempt), &mut program);
        noreserve_insert(&mut Rng::new(seed ^ 0x6e6f_7265_7376_6521, index, attempt), &mut program);
        let has_destructive = program.steps.iter().any(|s| matches!(s, Step::Fork { .. } | Step::ForkLive | Step::Mremap { .. }));
        let description = if has_destructive {
            format!("generated (hugetlb, destructive) from seed {seed}, index {index}")
        } else {
            format!("generated (hugetlb) from seed {seed}, index {index}")
        };
        return Scenario { id: format!("gen-{seed}-{index}"), description, provenance: Provenance::Generated { seed, index }, program };
    }
    let mut g = Gen::new(Rng::new(seed, index, attempt));
    g.layout();
    let steps = g.steps();
    let description = if attempt == 0 {
        format!("generated from seed {seed}, index {index}")
    } else {
        format!("generated from seed {seed}, index {index}, redrawn {attempt} time(s) to avoid a duplicate")
    };
    let mut s = Scenario {
        id: format!("gen-{seed}-{index}"),
        description,
        provenance: Provenance::Generated { seed, index },
        program: Program { arena_pages: g.arena, files: g.files, maps: g.maps, steps, word_bits: None },
    };
    process_madvise::insert(&mut Rng::new(seed ^ 0x706d_6164_7669_7365, index, attempt), &mut s);
    pkeys::insert(&mut Rng::new(seed ^ 0x706b_6579_7321, index, attempt), &mut s);
    grandchild::insert(&mut Rng::new(seed ^ 0x6772_616e_6421, index, attempt), &mut s);
    noreserve_insert(&mut Rng::new(seed ^ 0x6e6f_7265_7376_6521, index, attempt), &mut s.program);
    s
}

/// Layout maps and mmap steps per thousand that get MAP_NORESERVE, from their own hash of (seed, index),
/// so every other draw of a seed is what it was before MAP_NORESERVE existed.
pub const NORESERVE_PER_MILLE: u64 = 80;

fn noreserve_insert(x: &mut Rng, p: &mut Program) {
    for m in &mut p.maps {
        m.noreserve = x.chance(NORESERVE_PER_MILLE);
    }
    for s in &mut p.steps {
        if let Step::Mmap { map } = s {
            map.noreserve = x.chance(NORESERVE_PER_MILLE);
        }
    }
}

/// hugetlb scenarios per thousand with a hugetlbfs memfd that get a `seal` step (the memfd made with
/// MFD_ALLOW_SEALING four times in five), from their own hash of (seed, index), so every other hugetlb
/// scenario of a seed is what it was before seals existed. Never while a live child exists.
pub const HUGETLB_SEAL_PER_MILLE: u64 = 300;

fn hugetlb_seal_insert(x: &mut Rng, p: &mut Program) {
    use simulator::program::SealKind::*;
    if p.files.is_empty() || !x.chance(HUGETLB_SEAL_PER_MILLE) {
        return;
    }
    let sets: &[&[simulator::program::SealKind]] =
        &[&[Write], &[FutureWrite], &[FutureWrite, Shrink, Grow], &[Write, Seal], &[Shrink, Grow], &[]];
    let seals = x.pick(sets).to_vec();
    let sealing = x.chance(800);
    // Before the last step (often a fault that ends the scenario), or anywhere in a short one.
    let n = p.steps.len();
    let pos = if n <= 1 { x.below(n as u64 + 1) } else { x.below(n as u64) } as usize;
    let alive = p.steps[..pos].iter().rev().find(|s| matches!(s, Step::ForkLive | Step::ChildExit)).is_some_and(|s| matches!(s, Step::ForkLive));
    if alive {
        return;
    }
    p.files[0].sealing = sealing;
    p.steps.insert(pos, Step::Seal { file: 0, seals });
}

/// Scenarios per thousand (of those with a plain fork) whose fork child forks again.
pub const GRANDCHILD_PER_MILLE: u64 = 300;

/// A fork inside a fork child (a grandchild), put into a drawn scenario from its own hash of (seed,
/// index), so every other scenario is what it was before. The grandchild runs 1 to 3 steps that cannot
/// kill it by accident: caught accesses anywhere (a write the child and the parent must not see) and
/// madvise of any advice the generator draws over a range in the arena (WIPEONFORK, DONTFORK, guards
/// and FREE set up two levels down, DONTNEED of inherited COW pages).
mod grandchild {
    use super::{Rng, GENERATED_ADVICE, GRANDCHILD_PER_MILLE};
    use crate::validate::validate;
    use crate::Scenario;
    use simulator::program::{AdviceArg, Step};

    pub(super) fn insert(x: &mut Rng, s: &mut Scenario) {
        let forks: Vec<usize> =
            s.program.steps.iter().enumerate().filter(|(_, st)| matches!(st, Step::Fork { child } if child.len() < 3)).map(|(i, _)| i).collect();
        if forks.is_empty() || !x.chance(GRANDCHILD_PER_MILLE) {
            return;
        }
        let at = forks[x.below(forks.len() as u64) as usize];
        let arena = s.program.arena_pages;
        let n = x.range(1, 3) as usize;
        let steps: Vec<Step> = (0..n)
            .map(|_| {
                let page = x.below(arena as u64) as u32;
                match x.below(100) {
                    0..=29 => Step::TryWrite { page, fill: x.range(1, 255) as u8 },
                    30..=44 => Step::TryRead { page },
                    _ => {
                        let len = x.range(1, (arena - page).clamp(1, 4) as i64);
                        Step::Madvise { page: page as i64, offset: 0, len_pages: len, len_bytes: 0, advice: AdviceArg::Named(x.pick(GENERATED_ADVICE)) }
                    }
                }
            })
            .collect();
        let mut t = s.clone();
        if let Step::Fork { child } = &mut t.program.steps[at] {
            let pos = x.below(child.len() as u64 + 1) as usize;
            child.insert(pos, Step::Fork { child: steps });
        }
        if validate(&t).is_ok() {
            *s = t;
        }
    }
}

/// Scenarios per thousand (of the non-hugetlb, non-THP ones) that get protection-key steps.
pub const PKEY_PER_MILLE: u64 = 40;

/// Protection-key steps (`pkey_alloc`, `pkey_mprotect`, `pkey_set`, `pkey_free`, and a caught access to
/// the tagged range), put into a drawn scenario from their own hash of (seed, index) like
/// `process_madvise`, so every other scenario is what it was before. The sequence goes at the end (before
/// a final access, which may be the scenario's deliberate fault), at top level, in a fork child, or in the
/// live child when one is alive there. Keys are mostly the one the first `pkey_alloc` returns on a CPU with
/// keys (1), sometimes -1 (plain mprotect), 0 (the default key) or keys never allocated. Where the CPU has
/// no keys, a scenario with `pkey_set` is Unsupported (WRPKRU is #UD), so that step is drawn for about one
/// sequence in five only.
mod pkeys {
    use super::{Rng, PKEY_PER_MILLE};
    use crate::validate::validate;
    use crate::Scenario;
    use simulator::program::{PkeyRights, Prot, Step};

    const RIGHTS: [PkeyRights; 4] = [PkeyRights::Enabled, PkeyRights::DisableWrite, PkeyRights::DisableAccess, PkeyRights::DisableAll];

    pub(super) fn insert(x: &mut Rng, s: &mut Scenario) {
        if !x.chance(PKEY_PER_MILLE) {
            return;
        }
        let steps = &s.program.steps;
        let pos = match steps.last() {
            Some(Step::Read { .. } | Step::Write { .. }) => steps.len() - 1,
            _ => steps.len(),
        };
        let alive = steps[..pos].iter().rev().find(|s| matches!(s, Step::ForkLive | Step::ChildExit)).is_some_and(|s| matches!(s, Step::ForkLive));
        let seq = sequence(x, s.program.arena_pages);
        let place = if alive { x.weighted(&[(60, 0), (40, 2)]) } else { x.weighted(&[(75, 0), (25, 1)]) };
        let wrapped: Vec<Step> = match place {
            0 => seq,
            // A fork child runs at most 3 steps, as the ones `step` draws.
            1 => vec![Step::Fork { child: seq.into_iter().take(3).collect() }],
            _ => seq.into_iter().map(|st| Step::InChild { step: Box::new(st) }).collect(),
        };
        let mut t = s.clone();
        t.program.steps.splice(pos..pos, wrapped);
        // Scenarios stay at most 18 steps long (8 drawn, a live-fork sequence, process_madvise).
        if t.program.steps.len() <= 18 && validate(&t).is_ok() {
            *s = t;
        }
    }

    fn key(x: &mut Rng) -> i32 {
        x.weighted(&[(60, 1), (12, -1), (10, 0), (10, 2), (4, 15), (4, 16)])
    }

    fn sequence(x: &mut Rng, arena: u32) -> Vec<Step> {
        let mut out = Vec::new();
        if x.chance(850) {
            out.push(Step::PkeyAlloc { rights: x.pick(&RIGHTS) });
            if x.chance(150) {
                // A second key (2 on a CPU with keys), or ENOSPC again where there are none.
                out.push(Step::PkeyAlloc { rights: x.pick(&RIGHTS) });
            }
        }
        let page = x.below(arena as u64) as u32;
        let pages = x.range(1, (arena - page).clamp(1, 4) as i64) as u32;
        if x.chance(800) {
            let prot = x.weighted(&[(50, Prot::RW), (20, Prot::R), (15, Prot::NONE), (15, Prot { read: true, write: true, exec: true })]);
            let mut k = key(x);
            if k == 16 {
                k = 1;
            }
            out.push(Step::PkeyMprotect { page, pages, prot, pkey: k });
        }
        if x.chance(200) {
            let k = x.weighted(&[(70, 1u32), (15, 0), (10, 2), (5, 15)]);
            out.push(Step::PkeySet { pkey: k, rights: x.pick(&RIGHTS) });
        }
        if x.chance(600) {
            let p = page + x.below(pages as u64) as u32;
            out.push(if x.chance(500) { Step::TryWrite { page: p, fill: x.range(1, 255) as u8 } } else { Step::TryRead { page: p } });
        }
        if x.chance(500) {
            out.push(Step::PkeyFree { pkey: key(x) });
        }
        if out.is_empty() {
            out.push(Step::PkeyFree { pkey: key(x) });
        }
        out
    }
}

/// Scenarios per thousand (of the non-hugetlb ones) that get process_madvise steps.
pub const PROCESS_MADVISE_PER_MILLE: u64 = 60;

/// process_madvise steps, put into a drawn scenario from their own hash of (seed, index), so that every
/// other scenario of a seed is what it was before process_madvise existed. Every target, vector shape
/// (empty, NULL, over UIO_MAXIOV, vlen shorter than the vector, zero-length, unaligned, sub-page and
/// negative lengths, ranges over holes), advice (mostly the four another process takes) and flags.
mod process_madvise {
    use super::{Rng, GENERATED_ADVICE, GENERATED_INVALID_ADVICE, PROCESS_MADVISE_PER_MILLE};
    use crate::validate::{check_process_madvise, validate};
    use crate::Scenario;
    use simulator::program::{Advice, AdviceArg, IovElem, PidfdTarget as T, Step, UIO_MAXIOV};

    pub(super) fn insert(x: &mut Rng, s: &mut Scenario) {
        if !x.chance(PROCESS_MADVISE_PER_MILLE) {
            return;
        }
        let n = if x.chance(250) { 2 } else { 1 };
        for _ in 0..n {
            let steps = &s.program.steps;
            // Before the last step (often a fault that ends the scenario), or anywhere in a short one.
            let pos = if steps.len() <= 1 { x.below(steps.len() as u64 + 1) } else { x.below(steps.len() as u64) } as usize;
            let alive = steps[..pos].iter().rev().find(|s| matches!(s, Step::ForkLive | Step::ChildExit)).is_some_and(|s| matches!(s, Step::ForkLive));
            let step = draw(x, s.program.arena_pages, alive);
            let mut t = s.clone();
            t.program.steps.insert(pos, step);
            if validate(&t).is_ok() {
                *s = t;
            }
        }
    }

    fn draw(x: &mut Rng, arena: u32, alive: bool) -> Step {
        let target = if alive {
            x.weighted(&[(45, T::LiveChild), (20, T::SelfPidfd), (15, T::PidfdSelf), (7, T::ExitedChild), (7, T::BadFd), (6, T::NotPidfd)])
        } else {
            x.weighted(&[(50, T::SelfPidfd), (26, T::PidfdSelf), (8, T::ExitedChild), (8, T::BadFd), (8, T::NotPidfd)])
        };
        let remote_set = [Advice::Cold, Advice::Pageout, Advice::Willneed, Advice::Collapse];
        let advice = if x.chance(40) {
            AdviceArg::Raw(x.pick(GENERATED_INVALID_ADVICE))
        } else if (target == T::LiveChild && x.chance(800)) || x.chance(300) {
            AdviceArg::Named(x.pick(&remote_set))
        } else if x.chance(400) {
            AdviceArg::Named(x.pick(&[Advice::Dontneed, Advice::Free, Advice::Pageout, Advice::Cold]))
        } else {
            AdviceArg::Named(x.pick(GENERATED_ADVICE))
        };
        let flags = if x.chance(30) { x.pick(&[1, 2, 0x8000_0000]) } else { 0 };
        let (iov, vlen) = match x.below(100) {
            0..=3 => (None, Some(x.pick(&[0, 1, 1, 8, UIO_MAXIOV + 1]))),
            4..=8 => (Some(Vec::new()), None),
            _ => {
                let n = x.weighted(&[(45, 1usize), (30, 2), (15, 3), (10, 4)]);
                let v: Vec<IovElem> = (0..n).map(|_| elem(x, arena)).collect();
                let vlen = match x.below(100) {
                    0..=3 => Some(UIO_MAXIOV + 1),
                    4..=7 => Some(0),
                    8..=13 if n > 1 => Some(x.below(n as u64)),
                    _ => None,
                };
                (Some(v), vlen)
            }
        };
        Step::ProcessMadvise { target, iov, vlen, advice, flags }
    }

    fn elem(x: &mut Rng, arena: u32) -> IovElem {
        let a = arena as i64;
        let page = x.below(arena as u64) as i64;
        let e = match x.below(100) {
            // Well-formed, inside the arena.
            0..=59 => IovElem { page, offset: 0, len_pages: x.range(1, (a - page).clamp(1, 6)), len_bytes: 0 },
            // Zero length, aligned or not, anywhere in the window.
            60..=69 => IovElem { page: x.range(-2, a + 2), offset: x.pick(&[0, 0, 1, 2048]), len_pages: 0, len_bytes: 0 },
            // Unaligned on every page size.
            70..=77 => IovElem { page, offset: x.pick(&[1, 17, 2048, -1]), len_pages: x.range(0, 2), len_bytes: 0 },
            // Sub-page lengths (counted as given, advised as a whole page).
            78..=85 => IovElem { page, offset: 0, len_pages: 0, len_bytes: x.pick(&[1, 17, 4095, 4097]) },
            // Over the end of the arena into the guard gap (a hole: ENOMEM after the mapped part).
            86..=93 => IovElem { page: (a - x.range(1, 3)).max(0), offset: 0, len_pages: x.range(2, 5), len_bytes: 0 },
            // A length that does not fit ssize_t: the whole call is EINVAL.
            _ => IovElem { page, offset: 0, len_pages: 0, len_bytes: x.pick(&[-1, i64::MIN]) },
        };
        if check_process_madvise(arena, &Some(vec![e]), None, "").is_ok() {
            e
        } else {
            IovElem { page, offset: 0, len_pages: 1, len_bytes: 0 }
        }
    }
}

/// splitmix64: tiny, fast, and good enough for test-case generation; no global state.
struct Rng(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    fn new(seed: u64, index: u64, attempt: u64) -> Rng {
        // Chained mixing so that (seed, index, attempt) triples that differ anywhere start apart.
        let s = mix(seed ^ 0x6d61_6463_6865_636b);
        let s = mix(s ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Rng(mix(s ^ attempt.wrapping_mul(0xd1b5_4a32_d192_ed03)))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn weighted<T: Copy>(&mut self, xs: &[(u64, T)]) -> T {
        let total: u64 = xs.iter().map(|x| x.0).sum();
        let mut r = self.below(total);
        for &(w, x) in xs {
            if r < w {
                return x;
            }
            r -= w;
        }
        xs[xs.len() - 1].1
    }
}

const RW: Prot = Prot::RW;
const RX: Prot = Prot { read: true, write: false, exec: true };

/// What the generator knows about one arena page after the steps so far.
#[derive(Clone, Copy, Default)]
struct PageInfo {
    /// `None`: a hole.
    prot: Option<Prot>,
    file: bool,
    /// Some DONTFORK call may have covered it: a fork child would not have it.
    dontfork: bool,
    /// Some GUARD_INSTALL call may have covered it: any access may SIGSEGV.
    guard: bool,
    /// Some mseal call may have covered it: mprotect/munmap/mmap/mremap there may fail with EPERM.
    sealed: bool,
    /// A MAP_SHARED mapping of a readonly file: mprotect adding PROT_WRITE fails there with EACCES.
    ro_shared: bool,
    /// The file a file mapping maps: an ftruncate that shrinks it makes the generator forget the page.
    fid: Option<u32>,
}

struct Gen {
    rng: Rng,
    arena: u32,
    files: Vec<FileSpec>,
    /// Each file's current size in pages (ftruncate steps change it).
    fsize: Vec<u32>,
    /// Each file's fd was closed by a `close` step (later file steps on it are EBADF and change nothing).
    closed: Vec<bool>,
    /// Each file may carry F_SEAL_GROW (a later fallocate past EOF is EPERM and does not extend it).
    grow_sealed: Vec<bool>,
    maps: Vec<MapSpec>,
    pages: Vec<PageInfo>,
    /// Interesting page indexes for madvise endpoints: 0, arena end and every layout map edge.
    edges: Vec<i64>,
}

#[derive(Clone, Copy)]
enum Op {
    Madvise,
    Write,
    Read,
    Mprotect,
    Munmap,
    Mmap,
    Mlock,
    Fork,
    ForkLive,
    Mseal,
    Mremap,
    Try,
    Ftruncate,
    Fallocate,
    Close,
}

impl Gen {
    fn new(rng: Rng) -> Gen {
        Gen { rng, arena: 0, files: Vec::new(), fsize: Vec::new(), closed: Vec::new(), grow_sealed: Vec::new(), maps: Vec::new(), pages: Vec::new(), edges: Vec::new() }
    }

    fn layout(&mut self) {
        let r = &mut self.rng;
        self.arena = r.range(8, 48) as u32;
        let nmaps = r.range(1, 4);
        let mut cursor: u32 = if r.chance(400) { 0 } else { r.range(1, 3) as u32 };
        // For each file: the largest file page any mapping needs.
        let mut need: Vec<u32> = Vec::new();
        for _ in 0..nmaps {
            if cursor >= self.arena {
                break;
            }
            let room = (self.arena - cursor) as i64;
            let pages = self.rng.range(1, room.min(8)) as u32;
            let kind = self.rng.weighted(&[(50, 0u8), (15, 1), (20, 2), (15, 3), (6, 4)]);
            let backing = match kind {
                0 => Backing::AnonPrivate,
                1 => Backing::AnonShared,
                4 => Backing::AnonDroppable,
                _ => {
                    let (file, offset) = self.file_for(pages, &mut need);
                    if kind == 2 {
                        Backing::FilePrivate { file, offset }
                    } else {
                        Backing::FileShared { file, offset }
                    }
                }
            };
            let mut prot = self.draw_prot(backing.file().is_some());
            if let Backing::FileShared { file, .. } = backing {
                // A shared writable layout map of a readonly file would fail mmap (EACCES).
                if self.files[file as usize].readonly && prot.write {
                    prot = Prot::R;
                }
            }
            let populate = self.rng.chance(150);
            // MAP_LOCKED|MAP_DROPPABLE is EINVAL: a layout map must succeed (validate).
            let locked = self.rng.chance(80) && backing != Backing::AnonDroppable;
            self.maps.push(MapSpec { page: cursor, pages, prot, backing, populate, locked, noreserve: false });
            cursor += pages;
            if !self.rng.chance(500) {
                cursor += self.rng.range(1, 3) as u32;
            }
        }
        for (f, n) in need.iter().enumerate() {
            let extra = if self.rng.chance(300) { self.rng.range(1, 3) as u32 } else { 0 };
            self.files[f].pages = n + extra;
        }
        self.fsize = self.files.iter().map(|f| f.pages).collect();
        self.closed = vec![false; self.files.len()];
        self.grow_sealed = vec![false; self.files.len()];
        self.pages = vec![PageInfo::default(); self.arena as usize];
        self.edges = vec![0, self.arena as i64];
        for m in self.maps.clone() {
            self.edges.extend([m.page as i64, (m.page + m.pages) as i64]);
            self.set_map(&m);
        }
        self.edges.sort();
        self.edges.dedup();
    }

    /// Picks a file and file offset for a new layout mapping of `pages` pages: a new file, or a second
    /// mapping of an existing one at the contiguous offset (so the two could merge), the same offset
    /// (private and shared views of the same pages) or anywhere else.
    fn file_for(&mut self, pages: u32, need: &mut Vec<u32>) -> (u32, u32) {
        let new = self.files.is_empty() || (self.files.len() < 2 && self.rng.chance(350));
        let (file, offset) = if new {
            let kind = self.rng.weighted(&[(45, FileKind::Disk), (40, FileKind::Memfd), (15, FileKind::Tmpfs)]);
            let readonly = self.rng.chance(150);
            // The first memfd of a scenario allows sealing (no extra draw, so existing seeds keep their
            // layouts); a later one starts with F_SEAL_SEAL, so seal steps meet both.
            let sealing = kind == FileKind::Memfd && self.files.is_empty();
            self.files.push(FileSpec { kind, pages: 0, readonly, sealing });
            need.push(0);
            (self.files.len() as u32 - 1, self.rng.pick(&[0, 0, 0, 1, 2, 3]))
        } else {
            let file = self.rng.below(self.files.len() as u64) as u32;
            let prev = self.maps.iter().rev().find_map(|m| match m.backing.file() {
                Some((f, off)) if f == file => Some((off, m.pages)),
                _ => None,
            });
            let (poff, ppages) = prev.unwrap_or((0, 0));
            let offset = match self.rng.weighted(&[(50, 0u8), (20, 1), (30, 2)]) {
                0 => poff + ppages,
                1 => poff,
                _ => self.rng.range(0, 4) as u32,
            };
            (file, offset)
        };
        let n = &mut need[file as usize];
        *n = (*n).max(offset + pages);
        (file, offset)
    }

    /// Mostly `rw-`; `r-x` only on anonymous memory, because a disk file may live on a noexec mount
    /// where PROT_EXEC fails and the generator's picture of the page would be wrong.
    fn draw_prot(&mut self, file: bool) -> Prot {
        let p = self.rng.weighted(&[(75, RW), (12, Prot::R), (8, Prot::NONE), (5, RX)]);
        if file && p == RX {
            Prot::R
        } else {
            p
        }
    }

    fn set_map(&mut self, m: &MapSpec) {
        if self.any_sealed(m.page, m.pages) {
            // mmap over sealed memory fails with EPERM; what stays mapped is no longer certain.
            self.forget(m.page, m.pages);
            return;
        }
        let ro_shared = matches!(m.backing, Backing::FileShared { file, .. } if self.files[file as usize].readonly);
        for p in m.page..m.page + m.pages {
            self.pages[p as usize] =
                PageInfo {
                prot: Some(m.prot),
                file: m.backing.file().is_some(),
                dontfork: false,
                guard: false,
                sealed: false,
                ro_shared,
                fid: m.backing.file().map(|(f, _)| f),
            };
        }
    }

    fn steps(&mut self) -> Vec<Step> {
        let n = self.rng.range(1, 8) as usize;
        let want_fault = self.rng.chance(30);
        let mut steps = Vec::with_capacity(n);
        let mut live_drawn = false;
        for _ in 0..n {
            let op = self.rng.weighted(&[
                (50, Op::Madvise),
                (18, Op::Write),
                (10, Op::Read),
                (5, Op::Mprotect),
                (3, Op::Munmap),
                (3, Op::Mmap),
                (4, Op::Mlock),
                (7, Op::Fork),
                (5, Op::ForkLive),
                (2, Op::Mseal),
                // mremap: modelled (MREMAP_MODELLED); set the weight to 0 again if it is switched off.
                (4, Op::Mremap),
                (4, Op::Try),
                (2, Op::Ftruncate),
                (2, Op::Fallocate),
                (1, Op::Close),
            ]);
            // At most one live-fork sequence per scenario (it is several steps long already); a second
            // draw is a plain fork.
            let op = match op {
                Op::ForkLive if live_drawn => Op::Fork,
                op => op,
            };
            if let Op::ForkLive = op {
                live_drawn = true;
                let (seq, alive) = self.live_fork();
                steps.extend(seq);
                if alive {
                    // The scenario ends with the child alive (the worker kills it at teardown): no
                    // other fork may follow, so stop here.
                    break;
                }
                continue;
            }
            let s = self.step(op, true);
            steps.push(s);
        }
        if want_fault {
            if let Some(s) = self.faulting_access() {
                // Last, because nothing after it runs.
                if steps.len() == 8 {
                    steps.pop();
                }
                steps.push(s);
            }
        }
        steps
    }

    fn step(&mut self, op: Op, top: bool) -> Step {
        match op {
            Op::Madvise => self.madvise(top),
            Op::Write => self.write(top).or_else(|| self.read(top)).unwrap_or_else(|| self.madvise(top)),
            Op::Read => self.read(top).or_else(|| self.write(top)).unwrap_or_else(|| self.madvise(top)),
            Op::Mprotect => self.mprotect().unwrap_or_else(|| self.madvise(top)),
            Op::Munmap => {
                let (page, pages) = self.some_range(4);
                if self.any_sealed(page, pages) {
                    self.forget(page, pages);
                } else {
                    for p in page..page + pages {
                        self.pages[p as usize] = PageInfo::default();
                    }
                }
                Step::Munmap { page, pages }
            }
            Op::Mseal if top => {
                let (page, pages) = self.some_range(6);
                for p in page..page + pages {
                    self.pages[p as usize].sealed = true;
                }
                Step::Mseal { page, pages }
            }
            Op::Mremap if top => self.mremap(),
            Op::Mseal | Op::Mremap => self.madvise(top),
            Op::Ftruncate if top && !self.files.is_empty() => self.ftruncate(),
            Op::Fallocate if top && !self.files.is_empty() => self.fallocate(),
            // Half the close draws become seal steps (one draw more only where a close was drawn, so
            // other scenarios of a seed keep their steps).
            Op::Close if top && !self.files.is_empty() && self.rng.chance(500) => self.seal(),
            Op::Close if top && !self.files.is_empty() => {
                let file = self.rng.below(self.files.len() as u64) as u32;
                self.closed[file as usize] = true;
                Step::Close { file }
            }
            Op::Ftruncate | Op::Fallocate | Op::Close => self.madvise(top),
            Op::Mmap => self.mmap(),
            Op::Mlock => {
                let (page, pages) = self.some_range(6);
                if self.rng.chance(500) {
                    Step::Mlock { page, pages, onfault: self.rng.chance(300) }
                } else {
                    Step::Munlock { page, pages }
                }
            }
            Op::Fork if top => {
                let n = self.rng.range(0, 3);
                let child = (0..n)
                    .map(|_| {
                        let op = self.rng.weighted(&[(35, Op::Write), (25, Op::Read), (40, Op::Madvise), (5, Op::Try)]);
                        self.step(op, false)
                    })
                    .collect();
                Step::Fork { child }
            }
            Op::Fork | Op::ForkLive => self.madvise(top),
            Op::Try => self.caught_access(top),
        }
    }

    /// A `try_write` or `try_read` (the fault, if any, is caught and the program goes on): half the time
    /// on a page that faults for this access, else on any arena page. When it does not fault it is an
    /// ordinary access, which changes nothing in the picture.
    fn caught_access(&mut self, top: bool) -> Step {
        let write = self.rng.chance(550);
        let bad: Vec<u32> = (0..self.arena)
            .filter(|&p| {
                let i = self.pages[p as usize];
                i.guard
                    || (!top && i.dontfork)
                    || match i.prot {
                        None => true,
                        Some(pr) => if write { !pr.write } else { !pr.read },
                    }
            })
            .collect();
        let page = if !bad.is_empty() && self.rng.chance(500) { self.rng.pick(&bad) } else { self.rng.range(0, self.arena as i64 - 1) as u32 };
        if write {
            Step::TryWrite { page, fill: self.rng.range(1, 255) as u8 }
        } else {
            Step::TryRead { page }
        }
    }

    /// A fork whose child stays alive: `fork_live`, then a few steps interleaved between the child
    /// (`in_child`) and the parent, leaning on what sharing changes (writes on both sides, PAGEOUT, COLD,
    /// FREE and DONTNEED on pages both map, mlock), then usually `child_exit` and a parent step after
    /// it. Returns the steps and whether the child is still alive after them. The parent steps meanwhile
    /// only shrink what the generator believes is mapped (never mmap or mprotect), so that the child,
    /// which follows the same picture, does not fault by accident.
    fn live_fork(&mut self) -> (Vec<Step>, bool) {
        let mut out = Vec::new();
        if self.rng.chance(500) {
            if let Some(w) = self.write(true) {
                out.push(w);
            }
        }
        out.push(Step::ForkLive);
        let n = self.rng.range(1, 5);
        for _ in 0..n {
            let who = self.rng.weighted(&[(45, 0u8), (35, 1), (15, 2), (5, 3)]);
            let s = match who {
                // In the child: write, read, madvise (often a shared-page one), sometimes mlock.
                0 => {
                    let op = self.rng.weighted(&[(35, Op::Write), (15, Op::Read), (45, Op::Madvise), (5, Op::Mlock), (5, Op::Try)]);
                    let inner = match op {
                        Op::Madvise => self.shared_madvise(false),
                        Op::Mlock => {
                            let (page, pages) = self.some_range(4);
                            Step::Mlock { page, pages, onfault: self.rng.chance(300) }
                        }
                        _ => self.step(op, false),
                    };
                    Step::InChild { step: Box::new(inner) }
                }
                1 => self.shared_madvise(true),
                2 => {
                    let op = self.rng.weighted(&[(70, Op::Write), (30, Op::Read)]);
                    self.step(op, true)
                }
                _ => {
                    if self.rng.chance(500) {
                        let (page, pages) = self.some_range(4);
                        Step::Mlock { page, pages, onfault: self.rng.chance(300) }
                    } else {
                        self.step(Op::Munmap, true)
                    }
                }
            };
            out.push(s);
        }
        // Now and then the child dies on purpose (a guard page, a hole, a page it may not write).
        if self.rng.chance(40) {
            if let Some(s) = self.faulting_access() {
                out.push(Step::InChild { step: Box::new(s) });
            }
        }
        if self.rng.chance(150) {
            return (out, true);
        }
        out.push(Step::ChildExit);
        if self.rng.chance(600) {
            let s = if self.rng.chance(500) { self.shared_madvise(true) } else { self.step(Op::Write, true) };
            out.push(s);
        }
        (out, false)
    }

    /// A madvise that is half the time PAGEOUT, COLD, FREE or DONTNEED over a well-formed range (what
    /// sharing changes), else any madvise.
    fn shared_madvise(&mut self, top: bool) -> Step {
        if !self.rng.chance(500) {
            return self.madvise(top);
        }
        let advice = self.rng.pick(&[Advice::Pageout, Advice::Pageout, Advice::Cold, Advice::Free, Advice::Free, Advice::Dontneed]);
        let (page, offset, len_pages, len_bytes) = self.well_formed();
        Step::Madvise { page, offset, len_pages, len_bytes, advice: AdviceArg::Named(advice) }
    }

    /// A page that an access of this kind certainly does not fault on (in a fork child, also not a page
    /// DONTFORK may have left out of the child).
    fn accessible(&mut self, write: bool, top: bool) -> Option<u32> {
        let ok: Vec<u32> = (0..self.arena)
            .filter(|&p| {
                let i = self.pages[p as usize];
                i.prot.is_some_and(|pr| if write { pr.write } else { pr.read }) && (top || !i.dontfork) && !i.guard
            })
            .collect();
        (!ok.is_empty()).then(|| self.rng.pick(&ok))
    }

    fn write(&mut self, top: bool) -> Option<Step> {
        let page = self.accessible(true, top)?;
        Some(Step::Write { page, fill: self.rng.range(1, 255) as u8 })
    }

    fn read(&mut self, top: bool) -> Option<Step> {
        let page = self.accessible(false, top)?;
        Some(Step::Read { page })
    }

    /// An access that faults on every page size: into a hole, a write to a page without write
    /// permission, or a read of a `---` page.
    fn faulting_access(&mut self) -> Option<Step> {
        let write = self.rng.chance(500);
        let bad: Vec<u32> = (0..self.arena)
            .filter(|&p| match self.pages[p as usize].prot {
                None => true,
                Some(pr) => if write { !pr.write } else { !pr.read },
            })
            .collect();
        if bad.is_empty() {
            return None;
        }
        let page = self.rng.pick(&bad);
        Some(if write { Step::Write { page, fill: self.rng.range(1, 255) as u8 } } else { Step::Read { page } })
    }

    /// mprotect over a fully mapped run, so the generator's picture stays exact (over a hole mprotect
    /// fails part-way, with ENOMEM).
    fn mprotect(&mut self) -> Option<Step> {
        let mapped: Vec<u32> = (0..self.arena).filter(|&p| self.pages[p as usize].prot.is_some()).collect();
        if mapped.is_empty() {
            return None;
        }
        let start = self.rng.pick(&mapped);
        let mut end = start + 1;
        while end < self.arena && self.pages[end as usize].prot.is_some() {
            end += 1;
        }
        let end = self.rng.range(start as i64 + 1, end as i64) as u32;
        let any_file = (start..end).any(|p| self.pages[p as usize].file);
        let mut prot = self.rng.weighted(&[(40, RW), (30, Prot::R), (20, Prot::NONE), (10, RX)]);
        if any_file && prot == RX {
            prot = Prot::R;
        }
        // EACCES at a readonly file's shared mapping leaves what came before it changed: forget the range.
        let refused = prot.write && (start..end).any(|p| self.pages[p as usize].ro_shared);
        if self.any_sealed(start, end - start) || refused {
            self.forget(start, end - start);
        } else {
            for p in start..end {
                self.pages[p as usize].prot = Some(prot);
            }
        }
        Some(Step::Mprotect { page: start, pages: end - start, prot })
    }

    /// ftruncate of a file to around its size (0, one page less, the same, one more, its first size...).
    /// A shrink makes the generator forget every page mapping that file (some may now be past EOF, where
    /// an access is SIGBUS); through a readonly fd the call fails (EINVAL) and changes nothing.
    fn ftruncate(&mut self) -> Step {
        let file = self.rng.below(self.files.len() as u64) as u32;
        let f = file as usize;
        let cur = self.fsize[f];
        let pages = self.rng.pick(&[0, 1, cur.saturating_sub(1), cur.saturating_sub(1), cur, cur + 1, self.files[f].pages]);
        if !self.files[f].readonly && !self.closed[f] {
            if pages < cur {
                for p in 0..self.arena {
                    if self.pages[p as usize].fid == Some(file) {
                        self.forget(p, 1);
                    }
                }
            }
            // Under F_SEAL_GROW a grow is EPERM (a refused shrink leaves more pages than assumed: safe).
            if pages <= cur || !self.grow_sealed[f] {
                self.fsize[f] = pages;
            }
        }
        Step::Ftruncate { file, pages }
    }

    /// fallocate of a few file pages, the first or last ones often, sometimes past EOF: PUNCH_HOLE|KEEP_SIZE
    /// half the time, else mode 0 (which may extend the file) or KEEP_SIZE (which may allocate past EOF).
    fn fallocate(&mut self) -> Step {
        use simulator::program::FallocMode;
        let file = self.rng.below(self.files.len() as u64) as u32;
        let cur = self.fsize[file as usize];
        let any = self.rng.below(cur as u64 + 2) as u32;
        let page = self.rng.pick(&[0, 0, cur.saturating_sub(1), any]);
        let pages = self.rng.range(1, 3) as u32;
        let mode = self.rng.weighted(&[(50, FallocMode::PunchHole), (25, FallocMode::Allocate), (25, FallocMode::KeepSize)]);
        if mode == FallocMode::Allocate && !self.readonly_or_closed(file) && !self.grow_sealed[file as usize] {
            self.fsize[file as usize] = cur.max(page + pages);
        }
        Step::Fallocate { file, page, pages, mode }
    }

    /// fcntl(F_ADD_SEALS) on a file: one seal or a few together (the write seals alone or with the
    /// size seals), sometimes none (which still meets F_SEAL_SEAL's EPERM).
    fn seal(&mut self) -> Step {
        use simulator::program::SealKind::*;
        let file = self.rng.below(self.files.len() as u64) as u32;
        let sets: &[&[simulator::program::SealKind]] = &[
            &[Write],
            &[Write],
            &[FutureWrite],
            &[FutureWrite],
            &[Shrink],
            &[Grow],
            &[Shrink, Grow],
            &[Seal],
            &[Write, Seal],
            &[FutureWrite, Shrink, Grow],
            &[],
        ];
        let seals = self.rng.pick(sets).to_vec();
        if self.files[file as usize].sealing && !self.readonly_or_closed(file) {
            // Only a grow seal changes what later generator draws assume (fallocate no longer extends);
            // a refused seal (EBUSY) leaves it unset, so keep the assumption conservative: sealed.
            if seals.contains(&Grow) {
                self.grow_sealed[file as usize] = true;
            }
        }
        Step::Seal { file, seals }
    }

    fn readonly_or_closed(&self, file: u32) -> bool {
        self.files[file as usize].readonly || self.closed[file as usize]
    }

    fn any_sealed(&self, page: u32, pages: u32) -> bool {
        (page..page + pages).any(|p| self.pages[p as usize].sealed)
    }

    /// The generator no longer knows what is mapped there: treat the pages as holes it will not touch,
    /// but remember they may be sealed.
    fn forget(&mut self, page: u32, pages: u32) {
        for p in page..(page + pages).min(self.arena) {
            let sealed = self.pages[p as usize].sealed;
            self.pages[p as usize] = PageInfo { sealed, ..PageInfo::default() };
        }
    }

    /// mremap: in place (shrink or grow), or MREMAP_MAYMOVE|MREMAP_FIXED to a non-overlapping range,
    /// sometimes with MREMAP_DONTUNMAP. The generator's picture follows the likely outcome where it is
    /// safe to (a move of one uniformly mapped run), and forgets the pages otherwise.
    fn mremap(&mut self) -> Step {
        let (page, pages) = self.some_range(6);
        let arena = self.arena;
        let uniform = {
            let first = self.pages[page as usize];
            first.prot.is_some()
                && (page..page + pages).all(|p| {
                    let i = self.pages[p as usize];
                    i.prot == first.prot && i.file == first.file && i.fid == first.fid && !i.sealed && !i.guard
                })
        };
        if self.rng.chance(350) {
            // In place.
            let new_pages = self.rng.range(1, (pages + 3).min(arena - page) as i64) as u32;
            if new_pages < pages && uniform {
                for p in page + new_pages..page + pages {
                    self.pages[p as usize] = PageInfo::default();
                }
            } else {
                self.forget(page, new_pages.max(pages));
            }
            return Step::Mremap { page, pages, new_pages, to: None, dontunmap: false };
        }
        let dontunmap = self.rng.chance(300);
        let new_pages = if dontunmap { pages } else { self.rng.range(1, pages as i64 + 2) as u32 };
        // A destination that does not overlap the source.
        let candidates: Vec<u32> = (0..arena.saturating_sub(new_pages) + 1)
            .filter(|&t| t + new_pages <= page || t >= page + pages)
            .collect();
        if candidates.is_empty() {
            self.forget(page, pages);
            return Step::Mremap { page, pages, new_pages: pages, to: None, dontunmap: false };
        }
        let to = self.rng.pick(&candidates);
        let src = self.pages[page as usize];
        if uniform && !self.any_sealed(to, new_pages) {
            for p in to..to + new_pages {
                let guard = self.pages[p as usize].guard;
                self.pages[p as usize] = PageInfo { guard, ..src };
            }
            if !dontunmap {
                for p in page..page + pages {
                    self.pages[p as usize] = PageInfo::default();
                }
            }
        } else {
            self.forget(page, pages);
            self.forget(to, new_pages);
        }
        Step::Mremap { page, pages, new_pages, to: Some(to), dontunmap }
    }

    /// A range inside the arena of at most `max` pages, starting on a mapped page 70% of the time.
    fn some_range(&mut self, max: u32) -> (u32, u32) {
        let mapped: Vec<u32> = (0..self.arena).filter(|&p| self.pages[p as usize].prot.is_some()).collect();
        let page = if !mapped.is_empty() && self.rng.chance(700) {
            self.rng.pick(&mapped)
        } else {
            self.rng.below(self.arena as u64) as u32
        };
        let pages = self.rng.range(1, max.min(self.arena - page) as i64) as u32;
        (page, pages)
    }

    fn mmap(&mut self) -> Step {
        let (page, pages) = self.some_range(6);
        let kind = if self.files.is_empty() {
            self.rng.weighted(&[(45, 0), (45, 1), (10, 3)])
        } else {
            self.rng.weighted(&[(50, 0), (20, 1), (30, 2), (8, 3)])
        };
        let (backing, pages) = match kind {
            0 => (Backing::AnonPrivate, pages),
            1 => (Backing::AnonShared, pages),
            3 => (Backing::AnonDroppable, pages),
            _ => {
                let file = self.rng.below(self.files.len() as u64) as u32;
                let size = self.files[file as usize].pages;
                let offset = self.rng.below(size as u64) as u32;
                let pages = pages.min(size - offset);
                let b = if self.rng.chance(500) {
                    Backing::FilePrivate { file, offset }
                } else {
                    Backing::FileShared { file, offset }
                };
                (b, pages)
            }
        };
        let prot = self.draw_prot(backing.file().is_some());
        // No MAP_LOCKED here: over RLIMIT_MEMLOCK it makes mmap fail, and a failed MAP_FIXED would leave
        // the generator's picture of the pages wrong.
        let map = MapSpec { page, pages, prot, backing, populate: self.rng.chance(150), locked: false, noreserve: false };
        // MAP_SHARED|PROT_WRITE of a readonly file fails with EACCES and changes nothing.
        let refused = matches!(backing, Backing::FileShared { file, .. } if self.files[file as usize].readonly) && prot.write;
        if !refused {
            self.set_map(&map);
            // Pages past the file's current end (after an ftruncate shrink) fault SIGBUS: leave them alone.
            if let Some((f, off)) = backing.file() {
                for k in 0..pages {
                    if off + k >= self.fsize[f as usize] {
                        self.forget(page + k, 1);
                    }
                }
            }
        }
        Step::Mmap { map }
    }

    fn advice(&mut self) -> AdviceArg {
        if self.rng.chance(50) {
            AdviceArg::Raw(self.rng.pick(GENERATED_INVALID_ADVICE))
        } else {
            AdviceArg::Named(self.rng.pick(GENERATED_ADVICE))
        }
    }

    fn madvise(&mut self, top: bool) -> Step {
        let advice = self.advice();
        let (page, offset, len_pages, len_bytes) =
            if self.rng.chance(700) { self.well_formed() } else { self.edge_range() };
        // The edge shapes are drawn without looking at the page size; the few that would escape the
        // window on some page size become well-formed ranges instead.
        let (page, offset, len_pages, len_bytes) = if check_madvise(self.arena, page, offset, len_pages, len_bytes).is_ok() {
            (page, offset, len_pages, len_bytes)
        } else {
            self.well_formed()
        };
        let dontfork = top && advice.value() == Advice::Dontfork.value();
        // A guard installed by a child does not reach the parent, but marking it anyway only makes the
        // generator more careful.
        let guard = advice.value() == Advice::GuardInstall.value();
        if dontfork || guard {
            for ps in PAGE_SIZES {
                if let Some((start, end)) = madvise_extent(page, offset, len_pages, len_bytes, ps) {
                    let first = (start as i128 - ARENA.base as i128).div_euclid(ps as i128);
                    let last = (end as i128 - ARENA.base as i128 + ps as i128 - 1).div_euclid(ps as i128);
                    for p in first.max(0)..last.min(self.arena as i128) {
                        let info = &mut self.pages[p as usize];
                        info.dontfork |= dontfork;
                        info.guard |= guard;
                    }
                }
            }
        }
        Step::Madvise { page, offset, len_pages, len_bytes, advice }
    }

    /// Aligned, non-empty, inside the arena; endpoints drawn from VMA edges, hole runs and random pages,
    /// so ranges start or end exactly on a VMA edge, span several VMAs, or lie in a hole.
    fn well_formed(&mut self) -> (i64, i64, i64, i64) {
        let arena = self.arena as i64;
        let (start, end) = match self.rng.below(4) {
            // Between two edges (which may be the edges of different VMAs).
            0 => {
                let a = self.rng.pick(&self.edges.clone());
                let b = self.rng.pick(&self.edges.clone());
                (a.min(b), a.max(b))
            }
            // A few pages around one mapping's start or end.
            1 => {
                let e = self.rng.pick(&self.edges.clone());
                let s = (e + self.rng.range(-2, 1)).clamp(0, arena - 1);
                (s, s + self.rng.range(1, 4))
            }
            // Inside one mapping.
            2 if !self.maps.is_empty() => {
                let m = self.maps[self.rng.below(self.maps.len() as u64) as usize].clone();
                let s = m.page as i64 + self.rng.below(m.pages as u64) as i64;
                (s, s + self.rng.range(1, (m.page + m.pages) as i64 - s))
            }
            _ => {
                let s = self.rng.below(arena as u64) as i64;
                (s, s + self.rng.range(1, 6))
            }
        };
        let end = end.min(arena);
        let (start, end) = if end <= start { (start.min(arena - 1), start.min(arena - 1) + 1) } else { (start, end) };
        (start, 0, end - start, 0)
    }

    fn edge_range(&mut self) -> (i64, i64, i64, i64) {
        let arena = self.arena as i64;
        let gap = ARENA.gap_pages as i64;
        let in_arena = self.rng.below(arena as u64) as i64;
        match self.rng.below(8) {
            // Unaligned start: rejected before the walk on every page size, except 4096/8192 which are
            // aligned on 4 KiB pages only.
            0 => {
                let offset = self.rng.pick(&[1, 17, 2048, 4095, -1, 4096, 8192]);
                (in_arena, offset, self.rng.range(0, 3), self.rng.pick(&[0, 0, 1]))
            }
            // Zero length, anywhere in the window including the gaps.
            1 => (self.rng.range(-3, arena + 3), 0, 0, 0),
            // Sub-page lengths: rounded up to one page (or two on 4 KiB for 4097).
            2 => (in_arena, 0, 0, self.rng.pick(&[1, 17, 2048, 4095, 4097, 65535])),
            // Lengths that round to 0 or whose end wraps past 2^64: EINVAL before the walk; and a page
            // count whose byte length wraps to exactly 0 (aligned, len 0 → returns 0).
            3 => {
                let (lp, lb) = self.rng.pick(&[
                    (0, -1),
                    (-1, 0),
                    (-1, 1),
                    (i64::MAX, 0),
                    (i64::MIN, 0),
                    (0, -4096),
                    (0, i64::MIN),
                    (-2, 0),
                    (1 << 62, 0),
                ]);
                (in_arena, 0, lp, lb)
            }
            // Starting in the guard gap below the arena, ending in the gap or inside the arena.
            4 => {
                let page = -self.rng.range(1, 4);
                (page, 0, self.rng.range(1, 4 + arena.min(6)), 0)
            }
            // At or past the top of the arena, into the upper gap.
            5 => {
                let page = arena - self.rng.range(0, 2);
                (page, 0, self.rng.range(1, 4), 0)
            }
            // The very edges of the window.
            6 => {
                if self.rng.chance(500) {
                    (-gap, 0, self.rng.range(1, 2), 0)
                } else {
                    (arena + gap - self.rng.range(0, 1), 0, self.rng.range(0, 1), 0)
                }
            }
            // From inside a mapping to a page in the hole after it, or wholly in a hole.
            _ => {
                let holes: Vec<i64> =
                    (0..arena).filter(|&p| self.pages[p as usize].prot.is_none()).collect();
                if holes.is_empty() {
                    return self.well_formed();
                }
                let h = self.rng.pick(&holes);
                let start = if self.rng.chance(500) { h } else { (h - self.rng.range(1, 3)).max(0) };
                (start, 0, h + 1 - start, 0)
            }
        }
    }
}

/// hugetlb scenarios: a 1024-page arena of two 2 MiB huge pages (4K base pages; on other page sizes the
/// run reports them unsupported), hugetlb mappings (MAP_HUGETLB private/shared, a hugetlbfs memfd mapped
/// private and shared) next to ordinary ones, and steps that mostly work on whole huge pages with some
/// that cut through one (the EINVAL and rounding rules). Fork and mremap only with `destructive` (a
/// second random stream): hugetlb with mremap leaks huge pages on 6.18, so the runner refuses them
/// outside a disposable qemu guest.
mod hugetlb {
    use super::{Rng, GENERATED_ADVICE, GENERATED_INVALID_ADVICE};
    use simulator::program::{Advice, AdviceArg, Backing, FileKind, FileSpec, MapSpec, Program, Prot, Step};

    /// Base pages per huge page on 4K-page kernels with 2 MiB huge pages.
    pub const HP: u32 = 512;
    const SLOTS: u32 = 2;

    /// What the generator knows about one huge-page slot of the arena.
    #[derive(Clone, Copy, Default)]
    struct Slot {
        prot: Option<Prot>,
        huge: bool,
        sealed: bool,
    }

    pub fn draw(rng: &mut Rng, mut extra: Option<&mut Rng>) -> Program {
        let mut files = Vec::new();
        if rng.chance(600) {
            files.push(FileSpec { kind: FileKind::Hugetlb, pages: HP * rng.range(2, 3) as u32, readonly: false, sealing: false });
        }
        let mut slots = [Slot::default(); SLOTS as usize];
        let mut maps = Vec::new();
        let mut s = 0;
        while s < SLOTS {
            if rng.chance(150) && !maps.is_empty() {
                s += 1;
                continue;
            }
            let span = if s + 1 < SLOTS && rng.chance(250) { 2 } else { 1 };
            let m = map(rng, &files, s, span, maps.is_empty());
            for k in s..s + span {
                slots[k as usize] = Slot { prot: Some(m.prot), huge: is_huge(&files, &m), sealed: false };
            }
            maps.push(m);
            s += span;
        }
        let n = rng.range(1, 8);
        // Destructive: where fork, live-fork and mremap sequences go (before regular step i; i == n at
        // the end), drawn from the second stream only.
        let mut inserts: Vec<i64> = Vec::new();
        if let Some(x) = extra.as_deref_mut() {
            let k = x.weighted(&[(20, 0u8), (50, 1), (30, 2)]);
            for _ in 0..k {
                inserts.push(x.range(0, n));
            }
        }
        let mut steps = Vec::new();
        let mut live_drawn = false;
        for i in 0..=n {
            if let Some(x) = extra.as_deref_mut() {
                for _ in inserts.iter().filter(|&&at| at == i) {
                    steps.extend(destructive(x, &mut slots, &mut live_drawn));
                }
            }
            if i == n {
                break;
            }
            let step = match rng.weighted(&[(50, 0u8), (14, 1), (10, 2), (5, 3), (5, 4), (6, 5), (6, 6), (2, 7)]) {
                0 => madvise(rng),
                1 => access(rng, &slots, true).unwrap_or_else(|| madvise(rng)),
                2 => access(rng, &slots, false).unwrap_or_else(|| madvise(rng)),
                3 => {
                    let (page, pages) = range(rng, 150);
                    let prot = rng.weighted(&[(60, Prot::RW), (30, Prot::R), (10, Prot::NONE)]);
                    if page % HP == 0 && pages % HP == 0 {
                        for k in page / HP..(page + pages) / HP {
                            let sl = &mut slots[k as usize];
                            if sl.prot.is_some() && !sl.sealed {
                                sl.prot = Some(prot);
                            }
                        }
                    } else {
                        // May be refused (a hugetlb split) or may change part of a slot: forget it.
                        forget(&mut slots, page, pages);
                    }
                    Step::Mprotect { page, pages, prot }
                }
                4 => {
                    let (page, pages) = range(rng, 150);
                    if page % HP == 0 && pages % HP == 0 {
                        for k in page / HP..(page + pages) / HP {
                            if !slots[k as usize].sealed {
                                slots[k as usize] = Slot::default();
                            }
                        }
                    } else {
                        forget(&mut slots, page, pages);
                    }
                    Step::Munmap { page, pages }
                }
                5 => {
                    let k = rng.below(SLOTS as u64) as u32;
                    let m = map(rng, &files, k, 1, false);
                    if !slots[k as usize].sealed {
                        slots[k as usize] = Slot { prot: Some(m.prot), huge: is_huge(&files, &m), sealed: false };
                    }
                    Step::Mmap { map: m }
                }
                6 => {
                    let (page, pages) = range(rng, 100);
                    if rng.chance(500) {
                        Step::Mlock { page, pages, onfault: rng.chance(300) }
                    } else {
                        Step::Munlock { page, pages }
                    }
                }
                _ => {
                    let (page, pages) = range(rng, 50);
                    for k in page / HP..(page + pages).div_ceil(HP) {
                        slots[k as usize].sealed = true;
                    }
                    Step::Mseal { page, pages }
                }
            };
            steps.push(step);
        }
        Program { arena_pages: HP * SLOTS, files, maps, steps, word_bits: None }
    }

    /// One destructive sequence: an mremap (shrink, grow, move, DONTUNMAP, sometimes unaligned), a
    /// plain fork with child steps, or a live fork that always ends with `child_exit` (so the pool is
    /// settled before the next scenario starts counting).
    fn destructive(x: &mut Rng, slots: &mut [Slot; SLOTS as usize], live_drawn: &mut bool) -> Vec<Step> {
        let kind = x.weighted(&[(45, 0u8), (30, 1), (25, 2)]);
        match kind {
            0 => vec![mremap(x, slots)],
            2 if !*live_drawn => {
                *live_drawn = true;
                let mut out = vec![Step::ForkLive];
                let mut child = *slots;
                for _ in 0..x.range(1, 4) {
                    if x.chance(550) {
                        out.push(Step::InChild { step: Box::new(child_step(x, &mut child)) });
                    } else {
                        out.push(child_step(x, slots));
                    }
                }
                out.push(Step::ChildExit);
                out
            }
            _ => {
                let mut child = *slots;
                let steps = (0..x.range(0, 3)).map(|_| child_step(x, &mut child)).collect();
                vec![Step::Fork { child: steps }]
            }
        }
    }

    /// A step for either side of a fork: writes and reads (COW of shared private huge pages), madvise
    /// (DONTNEED gives a COW-shared page back), munmap of a slot, or an mremap.
    fn child_step(x: &mut Rng, slots: &mut [Slot; SLOTS as usize]) -> Step {
        match x.weighted(&[(35, 0u8), (15, 1), (30, 2), (10, 3), (10, 4)]) {
            0 => access(x, slots, true).unwrap_or_else(|| madvise(x)),
            1 => access(x, slots, false).unwrap_or_else(|| madvise(x)),
            2 => {
                let (page, pages) = range(x, 100);
                let advice = AdviceArg::Named(x.pick(&[Advice::Dontneed, Advice::Dontneed, Advice::Remove, Advice::Dontfork, Advice::Normal]));
                Step::Madvise { page: page as i64, offset: 0, len_pages: pages as i64, len_bytes: 0, advice }
            }
            3 => {
                let k = x.below(SLOTS as u64) as u32;
                if !slots[k as usize].sealed {
                    slots[k as usize] = Slot::default();
                }
                Step::Munmap { page: k * HP, pages: HP }
            }
            _ => mremap(x, slots),
        }
    }

    /// mremap on a hugetlb layout: shrink a two-slot mapping in place, grow in place (EINVAL for
    /// hugetlb), move one slot onto the other (MREMAP_FIXED), the same with MREMAP_DONTUNMAP (EINVAL for
    /// hugetlb, after the destination was unmapped on kernels before 6.16), or with an unaligned start or
    /// length (EINVAL, or lengths rounded up to whole huge pages).
    fn mremap(x: &mut Rng, slots: &mut [Slot; SLOTS as usize]) -> Step {
        let cut = x.chance(150);
        match x.weighted(&[(25, 0u8), (10, 1), (45, 2), (20, 3)]) {
            0 => {
                let (page, pages, new_pages) = if cut { (0, x.pick(&[2 * HP - 1, 2 * HP]), x.pick(&[1, HP - 1, HP + 1])) } else { (0, 2 * HP, HP) };
                if cut {
                    forget(slots, 0, 2 * HP);
                } else if !slots[1].sealed && !slots[0].sealed {
                    slots[1] = Slot::default();
                }
                Step::Mremap { page, pages, new_pages, to: None, dontunmap: false }
            }
            // Growing stays inside the arena: only the first slot grows.
            1 => Step::Mremap { page: 0, pages: HP, new_pages: x.pick(&[HP + 1, 2 * HP]), to: None, dontunmap: false },
            kind => {
                let a = x.below(SLOTS as u64) as u32;
                let b = 1 - a;
                let dontunmap = kind == 3;
                let (page, pages, to) = if cut {
                    let (page, to) = (a * HP + x.pick(&[0, 1]), b * HP + x.pick(&[0, 1]));
                    // Inside the arena at both ends.
                    let len = x.pick(&[1, HP - 1, HP]).min(SLOTS * HP - page.max(to));
                    (page, len, to)
                } else {
                    (a * HP, HP, b * HP)
                };
                let (sa, sb) = (slots[a as usize], slots[b as usize]);
                if !cut && !dontunmap && sa.huge && !sa.sealed && !sb.sealed {
                    slots[b as usize] = sa;
                    slots[a as usize] = Slot::default();
                } else {
                    forget(slots, a * HP, HP);
                    forget(slots, b * HP, HP);
                }
                Step::Mremap { page, pages, new_pages: pages, to: Some(to), dontunmap }
            }
        }
    }

    fn is_huge(files: &[FileSpec], m: &MapSpec) -> bool {
        m.backing.is_map_hugetlb() || m.backing.file().is_some_and(|(f, _)| files[f as usize].kind == FileKind::Hugetlb)
    }

    /// A mapping of `span` slots from slot `s`: mostly hugetlb, sometimes ordinary anonymous memory of
    /// a few pages (so ranges cross hugetlb and ordinary VMAs). The first mapping is always hugetlb.
    fn map(rng: &mut Rng, files: &[FileSpec], s: u32, span: u32, first: bool) -> MapSpec {
        let kinds: &[(u64, u8)] = match (files.is_empty(), first) {
            (true, true) => &[(50, 0), (50, 1)],
            (true, false) => &[(40, 0), (35, 1), (25, 4)],
            (false, true) => &[(25, 0), (25, 1), (20, 2), (30, 3)],
            (false, false) => &[(20, 0), (20, 1), (20, 2), (25, 3), (15, 4)],
        };
        let kind = rng.weighted(kinds);
        let prot = rng.weighted(&[(80, Prot::RW), (13, Prot::R), (7, Prot::NONE)]);
        let (populate, locked) = (rng.chance(150), rng.chance(100));
        let mut m = MapSpec { page: s * HP, pages: span * HP, prot, backing: Backing::HugetlbPrivate, populate, locked, noreserve: false };
        m.backing = match kind {
            0 => Backing::HugetlbPrivate,
            1 => Backing::HugetlbShared,
            2 | 3 => {
                let fpages = files[0].pages;
                let max_off = (fpages - span * HP) / HP;
                let offset = HP * rng.range(0, max_off as i64) as u32;
                if kind == 2 {
                    Backing::FilePrivate { file: 0, offset }
                } else {
                    Backing::FileShared { file: 0, offset }
                }
            }
            _ => {
                // Ordinary anonymous memory at the start or the end of the slot.
                let pages = rng.range(1, 8) as u32;
                m.page = if rng.chance(500) { s * HP } else { (s + span) * HP - pages };
                m.pages = pages;
                Backing::AnonPrivate
            }
        };
        m
    }

    /// A page an access of this kind certainly does not fault on.
    fn access(rng: &mut Rng, slots: &[Slot], write: bool) -> Option<Step> {
        let ok: Vec<u32> = (0..SLOTS)
            .filter(|&k| {
                let s = slots[k as usize];
                s.huge && s.prot.is_some_and(|p| if write { p.write } else { p.read })
            })
            .collect();
        if ok.is_empty() {
            return None;
        }
        let k = ok[rng.below(ok.len() as u64) as usize];
        let page = k * HP + rng.pick(&[0, 1, 2, HP / 2, HP - 1]);
        Some(if write { Step::Write { page, fill: rng.range(1, 255) as u8 } } else { Step::Read { page } })
    }

    fn forget(slots: &mut [Slot], page: u32, pages: u32) {
        for k in page / HP..(page + pages).div_ceil(HP).min(SLOTS) {
            slots[k as usize].prot = None;
            slots[k as usize].huge = false;
        }
    }

    /// A range inside the arena: whole huge pages, or (with probability `cut`/1000) one that cuts a huge
    /// page somewhere.
    fn range(rng: &mut Rng, cut: u64) -> (u32, u32) {
        if rng.chance(cut) {
            let page = rng.pick(&[0, 1, 2, HP - 1, HP, HP + 1, HP + HP / 2]);
            let max = HP * SLOTS - page;
            let pages = rng.pick(&[1, 2, HP - 1, HP, HP + 1]).min(max);
            (page, pages)
        } else {
            let k = rng.below(SLOTS as u64) as u32;
            let n = rng.range(1, (SLOTS - k) as i64) as u32;
            (k * HP, n * HP)
        }
    }

    fn madvise(rng: &mut Rng) -> Step {
        let advice = if rng.chance(40) {
            AdviceArg::Raw(rng.pick(GENERATED_INVALID_ADVICE))
        } else {
            AdviceArg::Named(rng.pick(GENERATED_ADVICE))
        };
        let (page, pages) = range(rng, 350);
        Step::Madvise { page: page as i64, offset: 0, len_pages: pages as i64, len_bytes: 0, advice }
    }
}

/// PMD-sized THP scenarios: one private anonymous mapping over two 512-page PMD ranges (or one page
/// short of one, or starting one page in), HUGEPAGE/NOHUGEPAGE, faults at PMD edges, and the calls that
/// split or collapse a THP at a PMD edge and one page inside. 512 pages is the PMD of 4K-page kernels;
/// on others the same programs run with the PMD they have.
mod thp {
    use super::Rng;
    use simulator::program::{Advice, AdviceArg, Backing, MapSpec, Program, Prot, Step};

    const P: u32 = 512;
    const ARENA: u32 = 2 * P + 64;

    pub fn draw(rng: &mut Rng) -> Program {
        let (page, pages) = rng.pick(&[(0, 2 * P), (0, 2 * P), (1, 2 * P - 1), (0, P - 1), (0, P + 1), (0, ARENA), (P - 1, P + 2)]);
        let maps = vec![MapSpec { page, pages, prot: Prot::RW, backing: Backing::AnonPrivate, populate: false, locked: false, noreserve: false }];
        // What the generator knows about each page: mapped, and with which protection.
        let mut prot: Vec<Option<Prot>> = (0..ARENA).map(|p| (page..page + pages).contains(&p).then_some(Prot::RW)).collect();
        let mut steps = Vec::new();
        if rng.chance(850) {
            steps.push(madvise(page, pages, Advice::Hugepage));
        }
        for _ in 0..rng.range(2, 7) {
            let step = match rng.weighted(&[(30, 0u8), (12, 1), (34, 2), (8, 3), (6, 4), (6, 5), (4, 6)]) {
                0 => {
                    let p = rng.pick(&[0, 1, 5, P - 2, P - 1, P, P + 1, 2 * P - 1, page]);
                    match prot.get(p as usize).copied().flatten() {
                        Some(pr) if pr.write => Step::Write { page: p, fill: rng.pick(&[0u8, 7, 0x5a]) },
                        Some(pr) if pr.read => Step::Read { page: p },
                        _ => continue,
                    }
                }
                1 => {
                    let p = rng.pick(&[0, 1, P - 1, P, 2 * P - 1, page]);
                    match prot.get(p as usize).copied().flatten() {
                        Some(pr) if pr.read => Step::Read { page: p },
                        _ => continue,
                    }
                }
                2 => {
                    let advice = rng.pick(&[
                        Advice::Dontneed,
                        Advice::Free,
                        Advice::Pageout,
                        Advice::Cold,
                        Advice::Collapse,
                        Advice::Collapse,
                        Advice::Hugepage,
                        Advice::Nohugepage,
                        Advice::PopulateRead,
                        Advice::PopulateWrite,
                    ]);
                    let (s, n) = range(rng);
                    madvise(s, n, advice)
                }
                3 => {
                    let (s, n) = range(rng);
                    let pr = rng.pick(&[Prot::R, Prot::RW, Prot::NONE]);
                    for p in s..s + n {
                        if let Some(x) = prot.get_mut(p as usize) {
                            if x.is_some() {
                                *x = Some(pr);
                            }
                        }
                    }
                    Step::Mprotect { page: s, pages: n, prot: pr }
                }
                4 => {
                    let (s, n) = range(rng);
                    for p in s..s + n {
                        if let Some(x) = prot.get_mut(p as usize) {
                            *x = None;
                        }
                    }
                    Step::Munmap { page: s, pages: n }
                }
                5 => madvise(page, pages, rng.pick(&[Advice::Collapse, Advice::Dontneed, Advice::Free, Advice::Pageout])),
                _ => madvise(page, pages, rng.pick(&[Advice::Nohugepage, Advice::Hugepage, Advice::PopulateWrite])),
            };
            steps.push(step);
        }
        Program { arena_pages: ARENA, files: Vec::new(), maps, steps, word_bits: None }
    }

    /// A range at a PMD edge, one page inside one, or whole PMDs.
    fn range(rng: &mut Rng) -> (u32, u32) {
        rng.pick(&[
            (0, P),
            (0, 2 * P),
            (P, P),
            (1, 1),
            (0, 1),
            (P - 1, 1),
            (P - 1, 2),
            (P, 1),
            (3, 1),
            (0, P - 1),
            (1, P),
            (0, P + 100),
            (P - 2, 4),
        ])
    }

    fn madvise(page: u32, pages: u32, advice: Advice) -> Step {
        Step::Madvise { page: page as i64, offset: 0, len_pages: pages as i64, len_bytes: 0, advice: AdviceArg::Named(advice) }
    }
}
