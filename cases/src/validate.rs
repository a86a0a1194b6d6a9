//! The one check every scenario passes before it runs.
//!
//! Invariant: a program that passes is safe inside the worker's arena on every page size in
//! [`PAGE_SIZES`]. Mappings and page-granular steps stay inside `[0, arena_pages)`; a madvise call
//! either is rejected by the kernel's front end before it looks at any VMA (spec/semantics.md §2.1:
//! unaligned start, length that rounds to 0, end that wraps) or stays inside the arena plus its guard
//! gaps. The check is done per page size because the same program means different byte ranges on each,
//! and per kernel word size ([`WORD_BITS`]: madvise's arithmetic wraps at 2^64 or 2^32) unless the
//! program names the one word size it runs on (`word_bits`).

use crate::{CaseError, Scenario};
use simulator::program::{Backing, FileSpec, IovElem, MapSpec, PidfdTarget, Program, Step, ARENA, UIO_MAXIOV};

/// Every page size a program must be safe on (x86_64 and most arm64 use 4 KiB; arm64 also 16/64 KiB).
pub const PAGE_SIZES: [u64; 3] = [4096, 16384, 65536];

/// Every kernel word size a program must be safe on: 64-bit kernels, and 32-bit ones (armhf), where
/// `size_t` arithmetic wraps at 2^32.
pub const WORD_BITS: [u32; 2] = [64, 32];

/// The word sizes `p` must be safe on: the one it names, or all of [`WORD_BITS`].
pub fn word_sizes(p: &Program) -> Vec<u32> {
    match p.word_bits {
        Some(w) => vec![w],
        None => WORD_BITS.to_vec(),
    }
}

/// `x` reduced to a `bits`-bit word.
fn word(x: u64, bits: u32) -> u64 {
    if bits >= 64 { x } else { x & ((1u64 << bits) - 1) }
}

/// The byte range `[start, end)` a madvise step would walk on page size `ps` of a 64-bit kernel, or
/// `None` when the kernel rejects the call before walking (EINVAL: unaligned start, rounded length 0
/// from a nonzero one, or an end that wraps past 2^64). A zero length with an aligned start gives an
/// empty range, which the kernel returns 0 for without walking, but it still has to lie inside the
/// arena's window to pass [`validate`]. All arithmetic wraps, as the kernel's `size_t` arithmetic does.
pub fn madvise_extent(page: i64, offset: i64, len_pages: i64, len_bytes: i64, ps: u64) -> Option<(u64, u64)> {
    madvise_extent_in(page, offset, len_pages, len_bytes, ps, 64)
}

/// [`madvise_extent`] on a kernel whose word is `bits` wide: start and length are reduced to the word
/// (as the C ABI passes them), and `PAGE_ALIGN` and `start + len` wrap at 2^bits.
pub fn madvise_extent_in(page: i64, offset: i64, len_pages: i64, len_bytes: i64, ps: u64, bits: u32) -> Option<(u64, u64)> {
    let start = word(ARENA.base.wrapping_add((page as u64).wrapping_mul(ps)).wrapping_add(offset as u64), bits);
    let len = word((len_pages as u64).wrapping_mul(ps).wrapping_add(len_bytes as u64), bits);
    let rounded = word(len.wrapping_add(ps - 1) & !(ps - 1), bits);
    if !start.is_multiple_of(ps) || (len != 0 && rounded == 0) {
        return None;
    }
    let end = start.checked_add(rounded)?;
    if word(end, bits) != end {
        return None;
    }
    Some((start, end))
}

/// The bytes a madvise range may touch on page size `ps`: the arena plus its guard gap on both sides.
pub fn madvise_window(arena_pages: u32, ps: u64) -> (u64, u64) {
    (ARENA.base - ARENA.gap_pages * ps, ARENA.base + (arena_pages as u64 + ARENA.gap_pages) * ps)
}

/// Checks one madvise step on every word size; `Err((field, message))` names the field (relative to the
/// step) at fault.
pub fn check_madvise(
    arena_pages: u32,
    page: i64,
    offset: i64,
    len_pages: i64,
    len_bytes: i64,
) -> Result<(), (&'static str, String)> {
    check_madvise_words(arena_pages, page, offset, len_pages, len_bytes, &WORD_BITS)
}

/// [`check_madvise`] on the kernel word sizes `words` only.
pub fn check_madvise_words(
    arena_pages: u32,
    page: i64,
    offset: i64,
    len_pages: i64,
    len_bytes: i64,
    words: &[u32],
) -> Result<(), (&'static str, String)> {
    let gap = ARENA.gap_pages as i64;
    let hi = arena_pages as i64 + gap;
    if page < -gap || page > hi {
        return Err((
            "page",
            format!("page {page} is outside [-{gap}, {hi}] (the arena of {arena_pages} pages and its guard gaps)"),
        ));
    }
    for &bits in words {
        for ps in PAGE_SIZES {
            if let Some((start, end)) = madvise_extent_in(page, offset, len_pages, len_bytes, ps, bits) {
                let (lo, top) = madvise_window(arena_pages, ps);
                if start < lo || end > top {
                    return Err((
                        "len_pages",
                        format!(
                            "with {ps}-byte pages on a {bits}-bit kernel the call walks [{start:#x}, {end:#x}), which \
                             leaves the arena and its guard gaps [{lo:#x}, {top:#x}) and could reach the worker's own \
                             mappings; keep page + offset + length inside the window, or make the kernel reject the \
                             call up front (unaligned start, length that rounds to 0, end past 2^{bits}), or name \
                             the one word size the scenario runs on (`word_bits`)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks the id, the layout and every step; the first problem found is returned.
pub fn validate(s: &Scenario) -> Result<(), CaseError> {
    let err = |field: String, msg: String| CaseError::new(s.origin(), field, msg);
    if !id_ok(&s.id) {
        return Err(err(
            "id".into(),
            format!("id {:?} must be snake_case ([a-z0-9_]+) or gen-<seed>-<index>", s.id),
        ));
    }
    check_program(&s.program).map_err(|(field, msg)| err(field, msg))
}

fn id_ok(id: &str) -> bool {
    if let Some(rest) = id.strip_prefix("gen-") {
        let mut parts = rest.split('-');
        let num = |p: Option<&str>| p.is_some_and(|p| p.parse::<u64>().is_ok_and(|n| n.to_string() == p));
        return num(parts.next()) && num(parts.next()) && parts.next().is_none();
    }
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

type Problem = (String, String);

/// At most this many steps per scenario, a fork child's steps included (the corpus's longest has 540).
pub const MAX_STEPS: usize = 4096;
/// At most this many layout maps per scenario.
pub const MAX_MAPS: usize = 64;
/// At most this many files per scenario.
pub const MAX_FILES: usize = 16;
/// A case file larger than this is refused before it is parsed (a scenario within the limits above is
/// far smaller).
pub const MAX_CASE_BYTES: u64 = 4 << 20;

/// The program part of [`validate`], with field paths relative to the scenario.
pub fn check_program(p: &Program) -> Result<(), Problem> {
    if let Some(w) = p.word_bits {
        if !WORD_BITS.contains(&w) {
            return Err(("word_bits".into(), format!("word_bits {w}: a kernel's word is 64 or 32 bits")));
        }
    }
    fn count(s: &Step) -> usize {
        1 + if let Step::Fork { child } = s { child.iter().map(count).sum() } else { 0 }
    }
    let steps: usize = p.steps.iter().map(count).sum();
    if steps > MAX_STEPS {
        return Err(("steps".into(), format!("{steps} steps (fork children's and grandchildren's included): at most {MAX_STEPS} per scenario")));
    }
    if p.maps.len() > MAX_MAPS {
        return Err(("maps".into(), format!("{} maps: at most {MAX_MAPS} per scenario", p.maps.len())));
    }
    if p.files.len() > MAX_FILES {
        return Err(("files".into(), format!("{} files: at most {MAX_FILES} per scenario", p.files.len())));
    }
    for (i, f) in p.files.iter().enumerate() {
        if f.sealing && !matches!(f.kind, simulator::program::FileKind::Memfd | simulator::program::FileKind::Hugetlb) {
            return Err((format!("files[{i}].sealing"), "sealing (MFD_ALLOW_SEALING) is a memfd_create flag: only for memfd and hugetlb files".into()));
        }
    }
    if p.arena_pages == 0 || p.arena_pages > ARENA.max_pages {
        return Err((
            "arena_pages".into(),
            format!("arena_pages {} must be in 1..={}", p.arena_pages, ARENA.max_pages),
        ));
    }
    let mut placed: Vec<(u32, u32, usize)> = Vec::new();
    for (i, m) in p.maps.iter().enumerate() {
        let path = format!("maps[{i}]");
        check_map(p, m, &path)?;
        // A layout map must succeed; MAP_LOCKED|MAP_DROPPABLE is EINVAL on every kernel that knows
        // MAP_DROPPABLE (an mmap step may still ask for it, to see the EINVAL).
        if m.backing == Backing::AnonDroppable && m.locked {
            return Err((format!("{path}.locked"), "a layout map of kind anon_droppable cannot be locked (mmap refuses MAP_LOCKED|MAP_DROPPABLE with EINVAL); use an mmap step to test that".into()));
        }
        // The layout must be set up: MAP_SHARED with PROT_WRITE of an O_RDONLY file fails mmap (EACCES),
        // which only an `mmap` step may ask for.
        if let Backing::FileShared { file, .. } = m.backing {
            if m.prot.write && p.files.get(file as usize).is_some_and(|f| f.readonly) {
                return Err((
                    format!("{path}.prot"),
                    format!("files[{file}] is readonly: a shared writable mapping of it fails with EACCES (use an mmap step to test that)"),
                ));
            }
        }
        placed.push((m.page, m.page + m.pages, i));
    }
    // Layout maps are made one after another with MAP_FIXED; an overlap would silently replace part of
    // an earlier map, which is what an Mmap step is for, so the layout forbids it.
    placed.sort();
    for w in placed.windows(2) {
        let ((_, a1, ai), (b0, _, bi)) = (w[0], w[1]);
        if b0 < a1 {
            let (first, second) = (ai.min(bi), ai.max(bi));
            let (f, g) = (&p.maps[first], &p.maps[second]);
            return Err((
                format!("maps[{second}].page"),
                format!(
                    "pages [{}, {}) overlap maps[{first}] (pages [{}, {}))",
                    g.page,
                    g.page + g.pages,
                    f.page,
                    f.page + f.pages
                ),
            ));
        }
    }
    // At most one live child at a time; `in_child` and `child_exit` only while it lives, and no plain
    // `fork` meanwhile (its child would see the live child's mappings in every mapcount). A scenario may
    // end with the child alive: the worker kills it at teardown, unobserved.
    let mut live = false;
    for (i, s) in p.steps.iter().enumerate() {
        let path = format!("steps[{i}]");
        match s {
            Step::ForkLive if live => {
                return Err((path, "fork_live while a live child exists (one at a time: child_exit first)".into()))
            }
            Step::ForkLive => live = true,
            Step::InChild { .. } | Step::ChildExit if !live => {
                return Err((format!("{path}.op"), format!("{} needs a live child (a fork_live step before it)", s.op())))
            }
            Step::ChildExit => live = false,
            Step::ProcessMadvise { target: PidfdTarget::LiveChild, .. } if !live => {
                return Err((
                    format!("{path}.target"),
                    "target live_child needs a live child (a fork_live step before it, no child_exit since)".into(),
                ))
            }
            Step::Fork { .. } if live => {
                return Err((path, "fork while a live child exists: child_exit first".into()))
            }
            _ => {}
        }
        check_step(p, s, &path, true)?;
    }
    Ok(())
}

fn check_range(arena: u32, page: u32, pages: u32, path: &str) -> Result<(), Problem> {
    if pages == 0 {
        return Err((format!("{path}.pages"), "pages must be at least 1".into()));
    }
    if page as u64 + pages as u64 > arena as u64 {
        return Err((
            format!("{path}.page"),
            format!(
                "pages [{page}, {}) are not inside the arena [0, {arena})",
                page as u64 + pages as u64
            ),
        ));
    }
    Ok(())
}

fn check_map(p: &Program, m: &MapSpec, path: &str) -> Result<(), Problem> {
    check_range(p.arena_pages, m.page, m.pages, path)?;
    if let Backing::FilePrivate { file, offset } | Backing::FileShared { file, offset } = m.backing {
        let Some(FileSpec { pages: size, .. }) = p.files.get(file as usize) else {
            return Err((
                format!("{path}.file"),
                format!("file {file} does not exist (the scenario has {} files)", p.files.len()),
            ));
        };
        // Pages past EOF raise SIGBUS on access, which would kill the worker; the format has no way to
        // ask for that on purpose.
        if offset as u64 + m.pages as u64 > *size as u64 {
            return Err((
                format!("{path}.offset"),
                format!(
                    "file pages [{offset}, {}) run past the end of files[{file}] ({size} pages)",
                    offset as u64 + m.pages as u64
                ),
            ));
        }
    }
    Ok(())
}

/// Largest file size (in pages) an `ftruncate` or `fallocate` step may ask for: the largest arena, so a
/// file stays small on every page size.
pub const MAX_FILE_PAGES: u32 = ARENA.max_pages;

fn check_file(p: &Program, file: u32, path: &str) -> Result<(), Problem> {
    if p.files.get(file as usize).is_none() {
        return Err((format!("{path}.file"), format!("file {file} does not exist (the scenario has {} files)", p.files.len())));
    }
    Ok(())
}

fn check_step(p: &Program, s: &Step, path: &str, top: bool) -> Result<(), Problem> {
    let arena = p.arena_pages;
    match s {
        Step::Madvise { page, offset, len_pages, len_bytes, .. } => {
            check_madvise_words(arena, *page, *offset, *len_pages, *len_bytes, &word_sizes(p))
                .map_err(|(f, m)| (format!("{path}.{f}"), m))
        }
        Step::Write { page, .. } | Step::Read { page } | Step::TryWrite { page, .. } | Step::TryRead { page } => {
            check_range(arena, *page, 1, path)
        }
        Step::Mprotect { page, pages, .. }
        | Step::Munmap { page, pages }
        | Step::Mlock { page, pages, .. }
        | Step::Munlock { page, pages } => check_range(arena, *page, *pages, path),
        Step::Mmap { map } => check_map(p, map, &format!("{path}.map")),
        Step::Fork { child } => {
            // A fork child may fork once more (a grandchild); the grandchild may not.
            if !top && path.matches(".child[").count() != 1 {
                return Err((path.to_string(), "a grandchild (a fork inside a fork child) may not fork again".into()));
            }
            for (j, c) in child.iter().enumerate() {
                check_step(p, c, &format!("{path}.child[{j}]"), false)?;
            }
            Ok(())
        }
        Step::ForkLive | Step::ChildExit if !top => {
            Err((path.to_string(), format!("{} is a top-level step (not inside a fork child or in_child)", s.op())))
        }
        Step::ForkLive | Step::ChildExit => Ok(()),
        Step::InChild { step } => {
            if !top {
                return Err((path.to_string(), "in_child is a top-level step".into()));
            }
            if matches!(**step, Step::Fork { .. }) {
                return Err((format!("{path}.step"), "the live child may not fork".into()));
            }
            check_step(p, step, &format!("{path}.step"), false)
        }
        Step::Mseal { page, pages } => check_range(arena, *page, *pages, path),
        Step::Seal { file, .. } => {
            if !top {
                return Err((path.to_string(), "seal is a top-level step (not inside a fork child or in_child)".into()));
            }
            check_file(p, *file, path)
        }
        Step::Close { file } => {
            if !top {
                return Err((path.to_string(), "close is a top-level step (not inside a fork child or in_child)".into()));
            }
            check_file(p, *file, path)
        }
        Step::PkeyMprotect { page, pages, pkey, .. } => {
            check_range(arena, *page, *pages, path)?;
            if !(-1..=15).contains(pkey) {
                return Err((format!("{path}.pkey"), format!("pkey {pkey}: must be -1 (keep each VMA's key) or a key 0-15")));
            }
            Ok(())
        }
        Step::PkeyFree { pkey } => {
            if !(-1..=16).contains(pkey) {
                return Err((format!("{path}.pkey"), format!("pkey {pkey}: must be in -1..=16")));
            }
            Ok(())
        }
        Step::PkeySet { pkey, .. } => {
            if *pkey > 15 {
                return Err((format!("{path}.pkey"), format!("pkey {pkey}: PKRU holds keys 0-15")));
            }
            Ok(())
        }
        Step::PkeyAlloc { .. } => Ok(()),
        Step::Ftruncate { file, pages } => {
            if !top {
                return Err((path.to_string(), "ftruncate is a top-level step (not inside a fork child or in_child)".into()));
            }
            check_file(p, *file, path)?;
            if *pages > MAX_FILE_PAGES {
                return Err((format!("{path}.pages"), format!("{pages} pages: a file may have at most {MAX_FILE_PAGES}")));
            }
            Ok(())
        }
        Step::Fallocate { file, page, pages, .. } => {
            if !top {
                return Err((path.to_string(), "fallocate is a top-level step (not inside a fork child or in_child)".into()));
            }
            check_file(p, *file, path)?;
            if *pages == 0 {
                return Err((format!("{path}.pages"), "pages must be at least 1 (fallocate of length 0 is EINVAL)".into()));
            }
            if *page as u64 + *pages as u64 > MAX_FILE_PAGES as u64 {
                return Err((
                    format!("{path}.pages"),
                    format!("file pages [{page}, {}) go past {MAX_FILE_PAGES}", *page as u64 + *pages as u64),
                ));
            }
            Ok(())
        }
        Step::ProcessMadvise { .. } if !top => {
            Err((path.to_string(), "process_madvise is a top-level step (not inside a fork child or in_child)".into()))
        }
        Step::ProcessMadvise { iov, vlen, .. } => check_process_madvise_words(arena, iov, *vlen, path, &word_sizes(p)),
        Step::Mremap { page, pages, new_pages, to, dontunmap } => {
            check_range(arena, *page, *pages, path)?;
            match to {
                // Growing in place extends past the old end: keep that inside the arena too.
                None => {
                    if *dontunmap {
                        return Err((format!("{path}.dontunmap"), "MREMAP_DONTUNMAP needs a `to` page".into()));
                    }
                    if *new_pages > 0 {
                        check_range(arena, *page, *new_pages, path)
                            .map_err(|(_, m)| (format!("{path}.new_pages"), m))?;
                    }
                    Ok(())
                }
                Some(to) => {
                    check_range(arena, *to, (*new_pages).max(1), path).map_err(|(_, m)| (format!("{path}.to"), m))
                }
            }
        }
    }
}

/// Checks a process_madvise step's vector. Every element must stay inside the arena and its guard gaps
/// on every page size, unaligned or not, unless its length does not fit `ssize_t` (import_iovec refuses
/// the whole call with EINVAL before anything runs): a longer element would be cut at MAX_RW_COUNT, or
/// fail access_ok with EFAULT, rather than be refused, and could reach the worker's own mappings. `vlen`
/// may not exceed the elements given (the kernel would read past them) unless it is above UIO_MAXIOV
/// (EINVAL before anything is read) or the vector is NULL.
pub fn check_process_madvise(arena_pages: u32, iov: &Option<Vec<IovElem>>, vlen: Option<u64>, path: &str) -> Result<(), Problem> {
    check_process_madvise_words(arena_pages, iov, vlen, path, &WORD_BITS)
}

/// [`check_process_madvise`] on the kernel word sizes `words` only (iov_base and iov_len are reduced to
/// the word, and "does not fit ssize_t" is the word's sign bit).
pub fn check_process_madvise_words(
    arena_pages: u32,
    iov: &Option<Vec<IovElem>>,
    vlen: Option<u64>,
    path: &str,
    words: &[u32],
) -> Result<(), Problem> {
    let gap = ARENA.gap_pages as i64;
    let hi = arena_pages as i64 + gap;
    if let Some(v) = iov {
        if v.len() as u64 > UIO_MAXIOV {
            return Err((format!("{path}.iov"), format!("{} elements: at most UIO_MAXIOV = {UIO_MAXIOV}", v.len())));
        }
        for (j, e) in v.iter().enumerate() {
            let at = format!("{path}.iov[{j}]");
            if e.page < -gap || e.page > hi {
                return Err((
                    format!("{at}.page"),
                    format!("page {} is outside [-{gap}, {hi}] (the arena of {arena_pages} pages and its guard gaps)", e.page),
                ));
            }
            for (&bits, ps) in words.iter().flat_map(|b| PAGE_SIZES.iter().map(move |&ps| (b, ps))) {
                let (start, len) = e.raw(ARENA.base, ps);
                let (start, len) = (word(start, bits), word(len, bits));
                if (len >> (bits - 1)) & 1 == 1 {
                    continue;
                }
                let rounded = word(len.wrapping_add(ps - 1) & !(ps - 1), bits);
                let (lo, top) = madvise_window(arena_pages, ps);
                let end = start.checked_add(rounded);
                if start < lo || end.is_none_or(|end| end > top) {
                    return Err((
                        format!("{at}.len_pages"),
                        format!(
                            "with {ps}-byte pages on a {bits}-bit kernel the element covers [{start:#x}, +{len:#x}), which \
                             leaves the arena and its guard gaps [{lo:#x}, {top:#x}) and could reach the worker's own \
                             mappings (process_madvise refuses only lengths that do not fit ssize_t up front)"
                        ),
                    ));
                }
            }
        }
    }
    if let (Some(n), Some(v)) = (vlen, iov) {
        if n > v.len() as u64 && n <= UIO_MAXIOV {
            return Err((
                format!("{path}.vlen"),
                format!(
                    "vlen {n} is more than the {} elements given: the kernel would read past them (use at most {}, or more \
                     than UIO_MAXIOV = {UIO_MAXIOV}, or a null iov)",
                    v.len(),
                    v.len()
                ),
            ));
        }
    }
    Ok(())
}
