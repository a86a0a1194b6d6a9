//! How a call is written: one step (`madvise(page 3 +1, 2 pages, DONTNEED)`), the call behind an
//! observation point (`step 2: madvise(...)`), and a mapping (`page 0, 4 pages, rw-, anon private`).
//!
//! Invariant: pure (data in, `String` out), and it imports nothing from the crate, so the judge (which
//! names the divergent call) and every output write calls the same way.

use simulator::program::{AdviceArg, Backing, MapSpec, Program, Step, StepId};

/// A call rendered as text, e.g. `madvise(page 3 +1, 2 pages, DONTNEED)`.
pub fn render_step(step: &Step) -> String {
    match step {
        Step::Madvise { page, offset, len_pages, len_bytes, advice } => {
            format!("madvise({}, {}, {})", page_at(*page, *offset), length(*len_pages, *len_bytes), advice_label(*advice))
        }
        Step::Write { page, fill } => format!("write(page {page}, fill 0x{fill:02x})"),
        Step::Read { page } => format!("read(page {page})"),
        Step::TryWrite { page, fill } => format!("try_write(page {page}, fill 0x{fill:02x})"),
        Step::TryRead { page } => format!("try_read(page {page})"),
        Step::Mprotect { page, pages, prot } => format!("mprotect(page {page}, {}, {prot})", plural(*pages as i64, "page")),
        Step::Munmap { page, pages } => format!("munmap(page {page}, {})", plural(*pages as i64, "page")),
        Step::Mmap { map } => format!("mmap({})", render_map(map)),
        Step::Mlock { page, pages, onfault: false } => format!("mlock(page {page}, {})", plural(*pages as i64, "page")),
        Step::Mlock { page, pages, onfault: true } => {
            format!("mlock2(page {page}, {}, ONFAULT)", plural(*pages as i64, "page"))
        }
        Step::Munlock { page, pages } => format!("munlock(page {page}, {})", plural(*pages as i64, "page")),
        Step::Fork { child } => format!("fork(child runs {})", plural(child.len() as i64, "step")),
        Step::ForkLive => "fork(child stays alive)".to_string(),
        Step::InChild { step } => format!("in child: {}", render_step(step)),
        Step::ChildExit => "child exits; parent waits".to_string(),
        Step::Mseal { page, pages } => format!("mseal(page {page}, {})", plural(*pages as i64, "page")),
        Step::Close { file } => format!("close(file {file})"),
        Step::Seal { file, seals } => format!(
            "fcntl(file {file}, F_ADD_SEALS, {})",
            if seals.is_empty() { "0".to_string() } else { seals.iter().map(|s| seal_label(*s)).collect::<Vec<_>>().join("|") }
        ),
        Step::PkeyAlloc { rights } => format!("pkey_alloc({})", rights.name()),
        Step::PkeyFree { pkey } => format!("pkey_free({pkey})"),
        Step::PkeyMprotect { page, pages, prot, pkey } => {
            format!("pkey_mprotect(page {page}, {}, {prot}, key {pkey})", plural(*pages as i64, "page"))
        }
        Step::PkeySet { pkey, rights } => format!("pkey_set(key {pkey}, {})", rights.name()),
        Step::Ftruncate { file, pages } => format!("ftruncate(file {file}, {})", plural(*pages as i64, "page")),
        Step::Fallocate { file, page, pages, mode } => {
            format!("fallocate(file {file}, file page {page}, {}, {})", plural(*pages as i64, "page"), falloc_label(*mode))
        }
        Step::Mremap { page, pages, new_pages, to, dontunmap } => format!(
            "mremap(page {page}, {} -> {}{})",
            plural(*pages as i64, "page"),
            plural(*new_pages as i64, "page"),
            match (to, dontunmap) {
                (None, _) => String::new(),
                (Some(t), false) => format!(", MAYMOVE|FIXED to page {t}"),
                (Some(t), true) => format!(", MAYMOVE|FIXED|DONTUNMAP to page {t}"),
            }
        ),
        Step::ProcessMadvise { target, iov, vlen, advice, flags } => {
            let vec = match iov {
                None => "NULL".to_string(),
                Some(v) => format!(
                    "[{}]",
                    v.iter().map(|e| format!("{}, {}", page_at(e.page, e.offset), length(e.len_pages, e.len_bytes))).collect::<Vec<_>>().join("; ")
                ),
            };
            let mut s = format!("process_madvise({}, {vec}", target.name());
            if let Some(n) = vlen {
                s.push_str(&format!(", vlen {n}"));
            }
            s.push_str(&format!(", {}", advice_label(*advice)));
            if *flags != 0 {
                s.push_str(&format!(", flags {flags:#x}"));
            }
            s.push(')');
            s
        }
    }
}

fn seal_label(s: simulator::program::SealKind) -> &'static str {
    use simulator::program::SealKind;
    match s {
        SealKind::Seal => "F_SEAL_SEAL",
        SealKind::Shrink => "F_SEAL_SHRINK",
        SealKind::Grow => "F_SEAL_GROW",
        SealKind::Write => "F_SEAL_WRITE",
        SealKind::FutureWrite => "F_SEAL_FUTURE_WRITE",
    }
}

fn falloc_label(m: simulator::program::FallocMode) -> &'static str {
    match m {
        simulator::program::FallocMode::PunchHole => "PUNCH_HOLE|KEEP_SIZE",
        simulator::program::FallocMode::Allocate => "mode 0",
        simulator::program::FallocMode::KeepSize => "KEEP_SIZE",
    }
}

/// The call behind an observation point, with where it ran: `step 2: madvise(...)`,
/// `step 4 child view 0: fork(...)` (the child's first look), `step 4 child step 1: write(...)`.
pub fn render_point(prog: &Program, id: StepId) -> String {
    let call = prog.step(id).map(render_step).unwrap_or_else(|| "<no such step>".into());
    match (id.child, id.grandchild) {
        (None, _) => format!("step {}: {call}", id.step),
        (Some(0), _) => format!("step {} child view 0 (right after fork): {call}", id.step),
        (Some(c), None) => format!("step {} child step {}: {call}", id.step, c - 1),
        (Some(c), Some(0)) => format!("step {} child step {} grandchild view 0 (right after fork): {call}", id.step, c - 1),
        (Some(c), Some(g)) => format!("step {} child step {} grandchild step {}: {call}", id.step, c - 1, g - 1),
    }
}

/// One initial or stepped mapping: `page 0, 4 pages, rw-, anon private, populate`.
pub fn render_map(m: &MapSpec) -> String {
    let mut s = format!("page {}, {}, {}, {}", m.page, plural(m.pages as i64, "page"), m.prot, render_backing(m.backing));
    if m.populate {
        s.push_str(", populate");
    }
    if m.locked {
        s.push_str(", locked");
    }
    if m.noreserve {
        s.push_str(", noreserve");
    }
    s
}

fn render_backing(b: Backing) -> String {
    match b {
        Backing::AnonPrivate => "anon private".into(),
        Backing::AnonShared => "anon shared".into(),
        Backing::FilePrivate { file, offset } => format!("file {file} @{offset} private"),
        Backing::FileShared { file, offset } => format!("file {file} @{offset} shared"),
        Backing::HugetlbPrivate => "hugetlb private".into(),
        Backing::HugetlbShared => "hugetlb shared".into(),
        Backing::AnonDroppable => "anon droppable".into(),
    }
}

fn advice_label(a: AdviceArg) -> String {
    match a {
        AdviceArg::Named(_) => a.label(),
        // A raw value that happens to name an advice is shown both ways, so the reader sees what was sent.
        AdviceArg::Raw(v) => match a.advice() {
            Some(named) => format!("{v} ({})", named.name()),
            None => format!("{v}"),
        },
    }
}

fn page_at(page: i64, offset: i64) -> String {
    match offset {
        0 => format!("page {page}"),
        o if o > 0 => format!("page {page} +{o}"),
        o => format!("page {page} {o}"),
    }
}

fn length(pages: i64, bytes: i64) -> String {
    match (pages, bytes) {
        (0, 0) => "0 bytes".into(),
        (p, 0) => plural(p, "page"),
        (0, b) => plural(b, "byte"),
        (p, b) if b > 0 => format!("{} +{b} bytes", plural(p, "page")),
        (p, b) => format!("{} {b} bytes", plural(p, "page")),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn madvise_renders_like_the_docs() {
        let s = Step::Madvise {
            page: 3,
            offset: 1,
            len_pages: 2,
            len_bytes: 0,
            advice: AdviceArg::Named(simulator::Advice::Dontneed),
        };
        assert_eq!(render_step(&s), "madvise(page 3 +1, 2 pages, DONTNEED)");
        let raw = Step::Madvise { page: -1, offset: 0, len_pages: 0, len_bytes: -1, advice: AdviceArg::Raw(7) };
        assert_eq!(render_step(&raw), "madvise(page -1, -1 bytes, 7)");
    }
}
