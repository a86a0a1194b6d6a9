//! What the fuzz targets (`fuzz/`, nightly, `cargo fuzz`) run, here so that stable `cargo test`
//! replays their regression inputs through the very same functions (`cases/tests/fuzz_regressions.rs`).
//!
//! Two harnesses, each a function from bytes to `Err(what broke)`; a panic is a finding too:
//! - [`load_bytes`]: any bytes as a case file. Loading never panics; whatever loads has passed
//!   `validate`, and loads again, unchanged, from its own serialisation.
//! - [`simulate_bytes`]: bytes decoded ([`program_from_bytes`]) into a *valid* program, simulated on
//!   every named kernel profile. The simulator never panics, is a function of its input, and every
//!   observation point it answers keeps the invariants of [`check_expect`]: VMAs sorted, non-empty and
//!   disjoint inside the arena window, counters consistent (`anon <= rss`, `lazyfree <= anon`,
//!   `locked <= rss`, `rss <= pages`, `lo <= hi`), one page entry per arena page, content exactly on
//!   present pages.
//!
//! Invariant: pure, like the simulator: no I/O (the file name given to the loader is only a name).

use crate::{load_str, validate, Provenance, Scenario};
use simulator::observe::{Expect, Residency};
use simulator::program::{Advice, AdviceArg, Backing, FileKind, FileSpec, MapSpec, Program, Prot, Step, ARENA};
use simulator::{KernelFacts, KernelModel};
use std::path::Path;

/// The name the loader harness gives its input (the stem is the id).
pub const FUZZ_CASE_NAME: &str = "fuzz_input.json";

/// Bytes as a case file: never a panic; a loaded scenario is valid and survives a round trip.
pub fn load_bytes(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let path = Path::new(FUZZ_CASE_NAME);
    let Ok(s) = load_str(&text, path) else { return Ok(()) };
    validate(&s).map_err(|e| format!("a loaded scenario fails validation: {e}"))?;
    let json = serde_json::to_string(&s).map_err(|e| format!("a loaded scenario does not serialise: {e}"))?;
    let again = load_str(&json, path).map_err(|e| format!("a loaded scenario does not load again: {e}\n{json}"))?;
    if again != s {
        return Err(format!("a scenario changed through serialise + load:\n{s:?}\n{again:?}"));
    }
    Ok(())
}

/// The kernel models every simulated program runs on.
pub fn models() -> Vec<KernelModel> {
    ["4.5", "6.1", "6.12", "6.18"]
        .iter()
        .map(|p| KernelModel::from_facts(KernelFacts::profile(p).expect("a named profile")))
        .collect()
}

/// Bytes → a valid program → every model: no panic, deterministic, invariants kept.
pub fn simulate_bytes(data: &[u8], models: &[KernelModel]) -> Result<(), String> {
    let Some(prog) = program_from_bytes(data) else { return Ok(()) };
    for m in models {
        check_simulation(m, &prog).map_err(|e| format!("model {}: {e}\nprogram: {}", m.profile, to_json(&prog)))?;
    }
    Ok(())
}

fn to_json(p: &Program) -> String {
    serde_json::to_string(p).unwrap_or_else(|e| format!("(unserialisable: {e})"))
}

/// Simulates `prog` twice on `model` and checks the answers are equal and keep the invariants.
pub fn check_simulation(model: &KernelModel, prog: &Program) -> Result<(), String> {
    let first = simulator::simulate(model, &ARENA, prog);
    let second = simulator::simulate(model, &ARENA, prog);
    if first != second {
        return Err("two simulations of the same program differ".into());
    }
    let ids = prog.step_ids();
    let mut last = None;
    for (id, e) in &first {
        let pos = ids.iter().position(|i| i == id).ok_or_else(|| format!("point {id} is not a step id of the program"))?;
        if last.is_some_and(|l| pos <= l) {
            return Err(format!("point {id} is out of order"));
        }
        last = Some(pos);
        check_expect(prog, e).map_err(|why| format!("point {id}: {why}"))?;
    }
    Ok(())
}

/// The invariants of one answer (see the module doc).
pub fn check_expect(prog: &Program, e: &Expect) -> Result<(), String> {
    let a = match e {
        Expect::Unsupported(why) if why.is_empty() => return Err("unsupported without a reason".into()),
        Expect::Unsupported(_) => return Ok(()),
        Expect::Allowed(a) => a,
    };
    if a.ret.is_empty() {
        return Err("no return value is allowed".into());
    }
    let (lo, hi) = (-(ARENA.gap_pages as i64), prog.arena_pages as i64 + ARENA.gap_pages as i64);
    let mut prev_end = i64::MIN;
    for (i, v) in a.vmas.iter().enumerate() {
        if v.start >= v.end {
            return Err(format!("vma[{i}] [{}, {}) is empty or reversed", v.start, v.end));
        }
        if v.start < prev_end {
            return Err(format!("vma[{i}] [{}, {}) overlaps or precedes the one before it (ending at {prev_end})", v.start, v.end));
        }
        if v.start < lo || v.end > hi {
            return Err(format!("vma[{i}] [{}, {}) leaves the arena window [{lo}, {hi})", v.start, v.end));
        }
        prev_end = v.end;
        let pages = (v.end - v.start) as u64;
        for (name, c) in [
            ("rss", v.rss),
            ("anon", v.anon),
            ("lazyfree", v.lazyfree),
            ("locked", v.locked),
            ("hugetlb_shared", v.hugetlb_shared),
            ("hugetlb_private", v.hugetlb_private),
            ("anon_huge", v.anon_huge),
        ] {
            if c.lo > c.hi {
                return Err(format!("vma[{i}].{name} allows the empty range {}..={}", c.lo, c.hi));
            }
        }
        let checks = [
            ("rss", v.rss.lo, "its pages", pages),
            ("anon", v.anon.lo, "rss", v.rss.hi),
            ("lazyfree", v.lazyfree.lo, "anon", v.anon.hi),
            ("locked", v.locked.lo, "rss", v.rss.hi),
        ];
        for (name, least, bound, most) in checks {
            if least > most {
                return Err(format!("vma[{i}].{name} is at least {least}, more than {bound} ({most})"));
            }
        }
    }
    if !a.pages.is_empty() && a.pages.len() != prog.arena_pages as usize {
        return Err(format!("{} page entries for an arena of {} pages", a.pages.len(), prog.arena_pages));
    }
    for (p, alts) in a.pages.iter().enumerate() {
        if alts.is_empty() {
            return Err(format!("page[{p}] allows nothing"));
        }
        for alt in alts {
            let present = matches!(alt.res, Residency::Present | Residency::ZeroPage);
            if present != alt.content.is_some() {
                return Err(format!("page[{p}] allows {:?} with content {:?}", alt.res, alt.content));
            }
        }
        let mapped = a.vmas.iter().any(|v| v.start <= p as i64 && (p as i64) < v.end);
        if !mapped && alts.iter().any(|x| x.res != Residency::Absent) {
            return Err(format!("page[{p}] lies in no VMA but may be {:?}", alts.iter().map(|x| x.res).collect::<Vec<_>>()));
        }
    }
    Ok(())
}

/// A byte reader that yields zeros once the input is used up, so every input decodes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u32) -> u32 {
        if n <= 256 {
            self.u8() as u32 % n
        } else {
            self.u32() % n
        }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u32) as usize]
    }
    fn empty(&self) -> bool {
        self.0.is_empty()
    }
}

const PROTS: [&str; 6] = ["rw-", "r--", "---", "rwx", "r-x", "-w-"];
const LEN_BYTES: [i64; 6] = [0, 0, 1, -1, 4096, -4096];
const OFFSETS: [i64; 4] = [0, 0, 1, 4096];

fn prot(b: &mut Bytes) -> Prot {
    Prot::parse(b.pick(&PROTS)).expect("a valid prot")
}

fn map(b: &mut Bytes, arena: u32, files: &[FileSpec]) -> MapSpec {
    let page = b.below(arena);
    let pages = 1 + b.below(arena - page);
    let backing = match b.below(6) {
        0 | 1 if !files.is_empty() => {
            let file = b.below(files.len() as u32);
            let offset = b.below(files[file as usize].pages.max(1));
            if b.bool() {
                Backing::FilePrivate { file, offset }
            } else {
                Backing::FileShared { file, offset }
            }
        }
        2 => Backing::AnonShared,
        4 => Backing::AnonDroppable,
        3 if arena >= 1024 => {
            if b.bool() {
                Backing::HugetlbPrivate
            } else {
                Backing::HugetlbShared
            }
        }
        _ => Backing::AnonPrivate,
    };
    // A hugetlb mapping is whole 2 MiB pages (512 4K pages).
    let (page, pages) = match backing {
        Backing::HugetlbPrivate | Backing::HugetlbShared => (page / 512 * 512, 512),
        _ => (page, pages),
    };
    MapSpec { page, pages, prot: prot(b), backing, populate: b.below(4) == 0, locked: b.below(6) == 0, noreserve: b.below(8) == 0 }
}

/// One step; `depth` 0 is top level. Numbers stay near the arena so most steps pass validation.
fn step(b: &mut Bytes, arena: u32, files: &[FileSpec], top: bool) -> Step {
    let page = |b: &mut Bytes| b.below(arena + 2);
    let pages = |b: &mut Bytes| 1 + b.below(arena);
    match b.below(if top { 17 } else { 13 }) {
        0..=3 => {
            let advice = if b.below(8) == 0 {
                AdviceArg::Raw(b.pick(&crate::GENERATED_INVALID_ADVICE))
            } else {
                AdviceArg::Named(b.pick(&Advice::ALL))
            };
            Step::Madvise {
                page: b.below(arena + 8) as i64 - 4,
                offset: b.pick(&OFFSETS),
                len_pages: b.below(arena + 4) as i64,
                len_bytes: b.pick(&LEN_BYTES),
                advice,
            }
        }
        4 => {
            let (page, fill, caught) = (page(b), b.u8(), b.below(4) == 0);
            if caught { Step::TryWrite { page, fill } } else { Step::Write { page, fill } }
        }
        5 => {
            let (page, caught) = (page(b), b.below(4) == 0);
            if caught { Step::TryRead { page } } else { Step::Read { page } }
        }
        6 => Step::Mprotect { page: page(b), pages: pages(b), prot: prot(b) },
        7 => Step::Munmap { page: page(b), pages: pages(b) },
        8 => Step::Mmap { map: map(b, arena, files) },
        9 => Step::Mlock { page: page(b), pages: pages(b), onfault: b.bool() },
        10 => Step::Munlock { page: page(b), pages: pages(b) },
        11 => Step::Mseal { page: page(b), pages: pages(b) },
        12 => {
            let to = if b.bool() { Some(page(b)) } else { None };
            Step::Mremap { page: page(b), pages: pages(b), new_pages: b.below(arena + 1), to, dontunmap: to.is_some() && b.bool() }
        }
        13 => {
            let n = b.below(4);
            Step::Fork { child: (0..n).map(|_| step(b, arena, files, false)).collect() }
        }
        14 => Step::ForkLive,
        15 => Step::InChild { step: Box::new(step(b, arena, files, false)) },
        _ => Step::ChildExit,
    }
}

/// Decodes bytes into a program that passes `validate`, or `None`. The first byte chooses the form:
/// a generated scenario (`generate(seed, index)` from the next 12 bytes) with steps appended from the
/// rest, or a program built from the bytes alone.
pub fn program_from_bytes(data: &[u8]) -> Option<Program> {
    let mut b = Bytes(data);
    let mode = b.u8();
    let mut prog = if mode & 0x80 != 0 {
        let (seed, index) = (b.u64(), b.u32() as u64);
        crate::generate(seed, index).program
    } else {
        let arena = if mode & 0x40 != 0 { 1024 } else { 1 + (mode as u32 & 0x1f) };
        let files: Vec<FileSpec> = (0..b.below(3))
            .map(|_| {
                let kind = if b.bool() { FileKind::Disk } else { FileKind::Memfd };
                FileSpec { kind, pages: 1 + b.below(16), readonly: false, sealing: false }
            })
            .collect();
        let maps = (0..b.below(5)).map(|_| map(&mut b, arena, &files)).collect();
        Program { arena_pages: arena, files, maps, steps: Vec::new(), word_bits: None }
    };
    let mut added = 0;
    while !b.empty() && added < 32 {
        let s = step(&mut b, prog.arena_pages, &prog.files.clone(), true);
        prog.steps.push(s);
        added += 1;
    }
    let s = Scenario { id: "fuzz".into(), description: String::new(), provenance: Provenance::File { path: "fuzz".into() }, program: prog };
    validate(&s).ok().map(|_| s.program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_programs_are_valid_and_many_decode() {
        // A fixed pseudo-random walk over inputs: a good share must decode, and all must check.
        let models = models();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut decoded = 0;
        for _ in 0..300 {
            let bytes: Vec<u8> = (0..40)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if program_from_bytes(&bytes).is_some() {
                decoded += 1;
            }
            simulate_bytes(&bytes, &models).unwrap();
            load_bytes(&bytes).unwrap();
        }
        assert!(decoded >= 30, "only {decoded} of 300 inputs decode to a valid program");
    }
}
