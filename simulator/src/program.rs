//! The calls a scenario can make: layout (files and mappings) and steps.
//!
//! Invariant: everything is placed relative to the arena, in pages, so one program runs unchanged on any
//! page size. Only `Madvise` can express raw byte offsets and lengths, because the front end's alignment
//! and overflow checks are what it tests.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A memory protection, written `"rw-"` style (`r`, `w`, `x` or `-` in that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot { read: false, write: false, exec: false };
    pub const R: Prot = Prot { read: true, write: false, exec: false };
    pub const RW: Prot = Prot { read: true, write: true, exec: false };
    pub fn parse(s: &str) -> Option<Prot> {
        let b = s.as_bytes();
        if b.len() != 3 {
            return None;
        }
        let bit = |c: u8, want: u8| match c {
            c if c == want => Some(true),
            b'-' => Some(false),
            _ => None,
        };
        Some(Prot { read: bit(b[0], b'r')?, write: bit(b[1], b'w')?, exec: bit(b[2], b'x')? })
    }
    pub fn is_none(self) -> bool {
        !self.read && !self.write && !self.exec
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            if self.read { 'r' } else { '-' },
            if self.write { 'w' } else { '-' },
            if self.exec { 'x' } else { '-' }
        )
    }
}

impl Serialize for Prot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Prot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Prot::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("bad protection {s:?}: expected three characters like \"rw-\" or \"---\""))
        })
    }
}

/// Every advice value madcheck knows by name (asm-generic numbering: x86_64, arm64, riscv, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Advice {
    Normal,
    Random,
    Sequential,
    Willneed,
    Dontneed,
    Free,
    Remove,
    Dontfork,
    Dofork,
    Mergeable,
    Unmergeable,
    Hugepage,
    Nohugepage,
    Dontdump,
    Dodump,
    Wipeonfork,
    Keeponfork,
    Cold,
    Pageout,
    PopulateRead,
    PopulateWrite,
    DontneedLocked,
    Collapse,
    Hwpoison,
    SoftOffline,
    GuardInstall,
    GuardRemove,
}

impl Advice {
    pub const ALL: [Advice; 27] = [
        Advice::Normal,
        Advice::Random,
        Advice::Sequential,
        Advice::Willneed,
        Advice::Dontneed,
        Advice::Free,
        Advice::Remove,
        Advice::Dontfork,
        Advice::Dofork,
        Advice::Mergeable,
        Advice::Unmergeable,
        Advice::Hugepage,
        Advice::Nohugepage,
        Advice::Dontdump,
        Advice::Dodump,
        Advice::Wipeonfork,
        Advice::Keeponfork,
        Advice::Cold,
        Advice::Pageout,
        Advice::PopulateRead,
        Advice::PopulateWrite,
        Advice::DontneedLocked,
        Advice::Collapse,
        Advice::Hwpoison,
        Advice::SoftOffline,
        Advice::GuardInstall,
        Advice::GuardRemove,
    ];

    /// The raw value from include/uapi/asm-generic/mman-common.h.
    pub fn value(self) -> i32 {
        use Advice::*;
        match self {
            Normal => 0,
            Random => 1,
            Sequential => 2,
            Willneed => 3,
            Dontneed => 4,
            Free => 8,
            Remove => 9,
            Dontfork => 10,
            Dofork => 11,
            Mergeable => 12,
            Unmergeable => 13,
            Hugepage => 14,
            Nohugepage => 15,
            Dontdump => 16,
            Dodump => 17,
            Wipeonfork => 18,
            Keeponfork => 19,
            Cold => 20,
            Pageout => 21,
            PopulateRead => 22,
            PopulateWrite => 23,
            DontneedLocked => 24,
            Collapse => 25,
            Hwpoison => 100,
            SoftOffline => 101,
            GuardInstall => 102,
            GuardRemove => 103,
        }
    }

    pub fn from_value(v: i32) -> Option<Advice> {
        Advice::ALL.iter().copied().find(|a| a.value() == v)
    }

    /// Upper-case name without the `MADV_` prefix, as in the scenario language.
    pub fn name(self) -> &'static str {
        use Advice::*;
        match self {
            Normal => "NORMAL",
            Random => "RANDOM",
            Sequential => "SEQUENTIAL",
            Willneed => "WILLNEED",
            Dontneed => "DONTNEED",
            Free => "FREE",
            Remove => "REMOVE",
            Dontfork => "DONTFORK",
            Dofork => "DOFORK",
            Mergeable => "MERGEABLE",
            Unmergeable => "UNMERGEABLE",
            Hugepage => "HUGEPAGE",
            Nohugepage => "NOHUGEPAGE",
            Dontdump => "DONTDUMP",
            Dodump => "DODUMP",
            Wipeonfork => "WIPEONFORK",
            Keeponfork => "KEEPONFORK",
            Cold => "COLD",
            Pageout => "PAGEOUT",
            PopulateRead => "POPULATE_READ",
            PopulateWrite => "POPULATE_WRITE",
            DontneedLocked => "DONTNEED_LOCKED",
            Collapse => "COLLAPSE",
            Hwpoison => "HWPOISON",
            SoftOffline => "SOFT_OFFLINE",
            GuardInstall => "GUARD_INSTALL",
            GuardRemove => "GUARD_REMOVE",
        }
    }

    /// Accepts `DONTNEED`, `dontneed` and `MADV_DONTNEED`.
    pub fn from_name(s: &str) -> Option<Advice> {
        let up = s.trim().to_ascii_uppercase();
        let up = up.strip_prefix("MADV_").unwrap_or(&up);
        Advice::ALL.iter().copied().find(|a| a.name() == up)
    }
}

/// The advice argument of a madvise step: a known name, or any raw integer (invalid values included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdviceArg {
    Named(Advice),
    Raw(i32),
}

impl AdviceArg {
    pub fn value(self) -> i32 {
        match self {
            AdviceArg::Named(a) => a.value(),
            AdviceArg::Raw(v) => v,
        }
    }
    /// The named advice this value means, if any (a raw 4 is DONTNEED).
    pub fn advice(self) -> Option<Advice> {
        Advice::from_value(self.value())
    }
    pub fn label(self) -> String {
        match self.advice() {
            Some(a) => a.name().to_string(),
            None => format!("{}", self.value()),
        }
    }
}

impl Serialize for AdviceArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AdviceArg::Named(a) => s.serialize_str(a.name()),
            AdviceArg::Raw(v) => s.serialize_i32(*v),
        }
    }
}

impl<'de> Deserialize<'de> for AdviceArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AdviceArg;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an advice name such as \"DONTNEED\" or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AdviceArg, E> {
                Advice::from_name(s).map(AdviceArg::Named).ok_or_else(|| {
                    E::custom(format!(
                        "unknown advice name {s:?} (known: {}; or give any integer)",
                        Advice::ALL.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AdviceArg, E> {
                i32::try_from(v).map(AdviceArg::Raw).map_err(|_| E::custom(format!("advice {v} does not fit in an int")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AdviceArg, E> {
                i32::try_from(v).map(AdviceArg::Raw).map_err(|_| E::custom(format!("advice {v} does not fit in an int")))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a file is stored on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file in the harness's temporary directory on disk (ext4 here).
    Disk,
    /// A memfd (shmem/tmpfs).
    Memfd,
    /// A regular file opened by path on a tmpfs mount (`/dev/shm`, see the harness's `detect::TMPFS_DIR`):
    /// shmem like a memfd, but created with open(2) in a mounted tmpfs directory, as peer suites do.
    Tmpfs,
    /// A hugetlbfs memfd (`MFD_HUGETLB`, the default huge page size). It starts as holes (hugetlbfs has no
    /// write(2)), so every page reads as zero until written through a mapping; `pages` must be a multiple
    /// of the huge page size.
    Hugetlb,
}

/// A file the scenario maps. File page `n` starts with the content `content::file_page(id, n)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub kind: FileKind,
    /// File size in pages.
    pub pages: u32,
    /// The scenario's fd is opened `O_RDONLY` (the content is written through a writable fd first, which
    /// is then closed). MAP_SHARED with PROT_WRITE fails EACCES, and a read-only MAP_SHARED mapping loses
    /// VM_SHARED and VM_MAYWRITE [S 6.18 mm/mmap.c:do_mmap, case MAP_SHARED].
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
    /// A `memfd` or `hugetlb` file created with `MFD_ALLOW_SEALING`: it starts with no seals, so `seal`
    /// steps can add them. Without it a memfd starts with F_SEAL_SEAL (as every tmpfs/hugetlbfs inode
    /// does) and F_ADD_SEALS is EPERM [S 6.18 mm/memfd.c:memfd_create (MFD_ALLOW_SEALING clears
    /// F_SEAL_SEAL), mm/shmem.c:__shmem_get_inode, fs/hugetlbfs/inode.c:hugetlbfs_get_inode].
    #[serde(default, skip_serializing_if = "is_false")]
    pub sealing: bool,
}

/// How a mapping is backed. (Scenario JSON spells it inside `MapSpec` as `kind`/`file`/`offset`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Backing {
    /// MAP_PRIVATE|MAP_ANONYMOUS
    AnonPrivate,
    /// MAP_SHARED|MAP_ANONYMOUS (shmem; maps shows `/dev/zero (deleted)`)
    AnonShared,
    /// MAP_PRIVATE of `files[file]` at file page `offset`
    FilePrivate { file: u32, offset: u32 },
    /// MAP_SHARED of `files[file]` at file page `offset`
    FileShared { file: u32, offset: u32 },
    /// MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB (maps shows `/anon_hugepage (deleted)`)
    HugetlbPrivate,
    /// MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB
    HugetlbShared,
    /// MAP_DROPPABLE|MAP_ANONYMOUS (6.11+, 64-bit): private anonymous memory the kernel may drop under
    /// memory pressure; VM_DROPPABLE with VM_WIPEONFORK, VM_DONTDUMP and VM_NORESERVE
    /// [S 6.12 mm/mmap.c:do_mmap, case MAP_DROPPABLE].
    AnonDroppable,
}

impl Backing {
    pub fn file(self) -> Option<(u32, u32)> {
        match self {
            Backing::FilePrivate { file, offset } | Backing::FileShared { file, offset } => Some((file, offset)),
            _ => None,
        }
    }
    pub fn is_shared(self) -> bool {
        matches!(self, Backing::AnonShared | Backing::FileShared { .. } | Backing::HugetlbShared)
    }
    /// MAP_HUGETLB (anonymous hugetlb; a mapping of a `FileKind::Hugetlb` file is hugetlb too, see
    /// `Program::is_hugetlb_map`).
    pub fn is_map_hugetlb(self) -> bool {
        matches!(self, Backing::HugetlbPrivate | Backing::HugetlbShared)
    }
    pub fn short(self) -> &'static str {
        match self {
            Backing::AnonPrivate => "AP",
            Backing::AnonShared => "AS",
            Backing::FilePrivate { .. } => "FP",
            Backing::FileShared { .. } => "FS",
            Backing::HugetlbPrivate => "HP",
            Backing::HugetlbShared => "HS",
            Backing::AnonDroppable => "AD",
        }
    }
}

/// One mmap(MAP_FIXED) inside the arena. In JSON it is flat and strict:
/// `{"page":0,"pages":4,"prot":"rw-","kind":"file_shared","file":0,"offset":2,"populate":true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMapSpec", into = "RawMapSpec")]
pub struct MapSpec {
    /// First arena page.
    pub page: u32,
    pub pages: u32,
    pub prot: Prot,
    pub backing: Backing,
    pub populate: bool,
    pub locked: bool,
    /// MAP_NORESERVE: no commit charge (VM_NORESERVE, smaps `nr`, no VM_ACCOUNT) unless
    /// vm.overcommit_memory is 2; on hugetlb no reservation at mmap time.
    pub noreserve: bool,
}

/// The JSON form of `MapSpec` (serde cannot combine `flatten` with `deny_unknown_fields`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapSpec {
    page: u32,
    pages: u32,
    prot: Prot,
    kind: MapKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    populate: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    locked: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    noreserve: bool,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MapKind {
    AnonPrivate,
    AnonShared,
    FilePrivate,
    FileShared,
    HugetlbPrivate,
    HugetlbShared,
    AnonDroppable,
}

impl TryFrom<RawMapSpec> for MapSpec {
    type Error = String;
    fn try_from(r: RawMapSpec) -> Result<MapSpec, String> {
        let backing = match (r.kind, r.file) {
            (MapKind::AnonPrivate, None) => Backing::AnonPrivate,
            (MapKind::AnonShared, None) => Backing::AnonShared,
            (MapKind::HugetlbPrivate, None) => Backing::HugetlbPrivate,
            (MapKind::HugetlbShared, None) => Backing::HugetlbShared,
            (MapKind::AnonDroppable, None) => Backing::AnonDroppable,
            (MapKind::FilePrivate, Some(file)) => Backing::FilePrivate { file, offset: r.offset.unwrap_or(0) },
            (MapKind::FileShared, Some(file)) => Backing::FileShared { file, offset: r.offset.unwrap_or(0) },
            (
                MapKind::AnonPrivate | MapKind::AnonShared | MapKind::HugetlbPrivate | MapKind::HugetlbShared | MapKind::AnonDroppable,
                Some(_),
            ) => {
                return Err("an anonymous mapping takes no `file`".into())
            }
            (MapKind::FilePrivate | MapKind::FileShared, None) => {
                return Err("a file mapping needs `file` (an index into `files`)".into())
            }
        };
        if r.offset.is_some() && r.file.is_none() {
            return Err("`offset` is only for file mappings".into());
        }
        Ok(MapSpec { page: r.page, pages: r.pages, prot: r.prot, backing, populate: r.populate, locked: r.locked, noreserve: r.noreserve })
    }
}

impl From<MapSpec> for RawMapSpec {
    fn from(m: MapSpec) -> RawMapSpec {
        let (kind, file, offset) = match m.backing {
            Backing::AnonPrivate => (MapKind::AnonPrivate, None, None),
            Backing::AnonShared => (MapKind::AnonShared, None, None),
            Backing::HugetlbPrivate => (MapKind::HugetlbPrivate, None, None),
            Backing::HugetlbShared => (MapKind::HugetlbShared, None, None),
            Backing::AnonDroppable => (MapKind::AnonDroppable, None, None),
            Backing::FilePrivate { file, offset } => (MapKind::FilePrivate, Some(file), Some(offset)),
            Backing::FileShared { file, offset } => (MapKind::FileShared, Some(file), Some(offset)),
        };
        RawMapSpec { page: m.page, pages: m.pages, prot: m.prot, kind, file, offset, populate: m.populate, locked: m.locked, noreserve: m.noreserve }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The `pidfd` argument of a `process_madvise` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PidfdTarget {
    /// `pidfd_open(getpid(), 0)`: a pidfd of the calling process.
    SelfPidfd,
    /// `PIDFD_SELF` (-10000, `PIDFD_SELF_THREAD`), the sentinel for the calling thread.
    PidfdSelf,
    /// A pidfd of the live child of `fork_live` (another address space).
    LiveChild,
    /// A pidfd of a child that has exited and been reaped.
    ExitedChild,
    /// -1: no open file.
    BadFd,
    /// An open file that is not a pidfd (an eventfd).
    NotPidfd,
}

impl PidfdTarget {
    pub const ALL: [PidfdTarget; 6] = [
        PidfdTarget::SelfPidfd,
        PidfdTarget::PidfdSelf,
        PidfdTarget::LiveChild,
        PidfdTarget::ExitedChild,
        PidfdTarget::BadFd,
        PidfdTarget::NotPidfd,
    ];
    pub fn name(self) -> &'static str {
        match self {
            PidfdTarget::SelfPidfd => "self_pidfd",
            PidfdTarget::PidfdSelf => "pidfd_self",
            PidfdTarget::LiveChild => "live_child",
            PidfdTarget::ExitedChild => "exited_child",
            PidfdTarget::BadFd => "bad_fd",
            PidfdTarget::NotPidfd => "not_pidfd",
        }
    }
}

/// `PIDFD_SELF` (= `PIDFD_SELF_THREAD`) [S 6.15+ include/uapi/linux/pidfd.h].
pub const PIDFD_SELF: i32 = -10000;
/// `UIO_MAXIOV` [S include/uapi/linux/uio.h], the most iovec elements one call takes.
pub const UIO_MAXIOV: u64 = 1024;

/// One iovec element of a `process_madvise` step, placed like a madvise range:
/// `iov_base = ARENA.base + page*PS + offset`, `iov_len = len_pages*PS + len_bytes` (wrapping u64,
/// then reduced to the kernel's word: `KernelModel::word`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IovElem {
    pub page: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub len_pages: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub len_bytes: i64,
}

impl IovElem {
    /// `(iov_base, iov_len)` for page size `ps`.
    pub fn raw(&self, base: u64, ps: u64) -> (u64, u64) {
        let start = (base as i64).wrapping_add(self.page.wrapping_mul(ps as i64)).wrapping_add(self.offset) as u64;
        let len = self.len_pages.wrapping_mul(ps as i64).wrapping_add(self.len_bytes) as u64;
        (start, len)
    }
}

/// One step of a scenario. Each step is observed afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", deny_unknown_fields)]
pub enum Step {
    /// `madvise(arena + page*PS + offset, len_pages*PS + len_bytes, advice)`. `page` may be negative (the
    /// guard gap below the arena); the length is computed in wrapping 64-bit arithmetic and reduced to the
    /// kernel's word (`KernelModel::word`: 32 bits on armhf), so a negative
    /// total expresses `(size_t)-n`.
    Madvise {
        page: i64,
        #[serde(default, skip_serializing_if = "is_zero")]
        offset: i64,
        #[serde(default, skip_serializing_if = "is_zero")]
        len_pages: i64,
        #[serde(default, skip_serializing_if = "is_zero")]
        len_bytes: i64,
        advice: AdviceArg,
    },
    /// Fill every byte of one page with `fill`.
    Write { page: u32, fill: u8 },
    /// Read one byte of one page (faults it in).
    Read { page: u32 },
    /// `write` with the fault caught: a SIGSEGV or SIGBUS is this step's result (`Ret::Signal`) and the
    /// program goes on, as kselftest guard-regions.c's `try_write_buf` does. Nothing changes when it faults.
    TryWrite { page: u32, fill: u8 },
    /// `read` with the fault caught (kselftest's `try_read_buf`).
    TryRead { page: u32 },
    Mprotect { page: u32, pages: u32, prot: Prot },
    Munmap { page: u32, pages: u32 },
    /// mmap(MAP_FIXED) of `map` (it may replace what is there).
    Mmap { map: MapSpec },
    /// mlock, or mlock2(MLOCK_ONFAULT) when `onfault`.
    Mlock {
        page: u32,
        pages: u32,
        #[serde(default, skip_serializing_if = "is_false")]
        onfault: bool,
    },
    Munlock { page: u32, pages: u32 },
    /// fork(); the child runs `child` (observing after its start and after every child step), then
    /// exits. The parent waits for it, then is observed.
    Fork {
        #[serde(default)]
        child: Vec<Step>,
    },
    /// fork() of a child that stays alive while the parent goes on (at most one at a time). Observed
    /// twice: the child's view right after fork (`N.child0`), then the parent's (`N`).
    ForkLive,
    /// Run `step` inside the live child; the point `N` is the child's view after it. Once the child has
    /// died (a fatal signal at an earlier `in_child`), every later `in_child` point repeats that signal.
    InChild { step: Box<Step> },
    /// The live child exits (`_exit(0)`, or nothing if it already died); the parent reaps it and is observed.
    ChildExit,
    /// mseal(addr, len, 0) (6.10+, 64-bit): seal [page, page+pages).
    Mseal { page: u32, pages: u32 },
    /// mremap of [page, page+pages) to `new_pages` pages. `to: None`: flags 0 (shrink, or grow in
    /// place). `to: Some(p)`: MREMAP_MAYMOVE|MREMAP_FIXED to arena page p, plus MREMAP_DONTUNMAP when
    /// `dontunmap` (which needs new_pages == pages).
    Mremap {
        page: u32,
        pages: u32,
        new_pages: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<u32>,
        #[serde(default, skip_serializing_if = "is_false")]
        dontunmap: bool,
    },
    /// ftruncate(fd of `files[file]`, pages * PS): shrink or grow the file under its mappings. Shrinking
    /// unmaps every PTE past the new end, private COW copies included, and a later access there is
    /// SIGBUS; growing adds holes that read as zero.
    Ftruncate { file: u32, pages: u32 },
    /// fallocate(fd of `files[file]`, mode, page * PS, pages * PS) over file pages [page, page + pages).
    Fallocate { file: u32, page: u32, pages: u32, mode: FallocMode },
    /// `process_madvise(pidfd, iov, vlen, advice, flags)`. `iov: null` passes a NULL vector; `vlen`
    /// defaults to the number of elements (it may be smaller, larger than `UIO_MAXIOV`, or anything with
    /// a NULL vector). Returns the bytes advised before the first failing element, or the errno. With
    /// `target: live_child` the point is the live child's view (the call runs in the parent).
    ProcessMadvise {
        target: PidfdTarget,
        iov: Option<Vec<IovElem>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vlen: Option<u64>,
        advice: AdviceArg,
        #[serde(default, skip_serializing_if = "is_zero_u32")]
        flags: u32,
    },
    /// close(fd of `files[file]`): the scenario's only fd of the file goes; its mappings stay valid (each
    /// VMA holds its own reference to the file). Later file steps on it pass fd -1 (EBADF).
    Close { file: u32 },
    /// `pkey_alloc(0, rights)`: a protection key whose access rights (this thread's PKRU bits) start as
    /// `rights`. Returns the key (`ret key N`) or the errno: ENOSPC when no key is free, and always where
    /// the CPU has no protection keys (x86 without OSPKE); ENOSYS where the kernel has no pkey syscalls
    /// [S 6.12, 6.18 mm/mprotect.c:pkey_alloc; arch/x86/include/asm/pkeys.h:mm_pkey_alloc].
    PkeyAlloc { rights: PkeyRights },
    /// `pkey_free(pkey)`: EINVAL for a key that is not allocated. The VMAs that carry it keep it.
    PkeyFree { pkey: i32 },
    /// `pkey_mprotect(addr, pages*PS, prot, pkey)`: mprotect that also tags the VMAs with `pkey` (-1:
    /// keep each VMA's key, as mprotect does). A key that is not allocated is EINVAL before any VMA is
    /// looked at [S 6.18 mm/mprotect.c:do_mprotect_pkey].
    PkeyMprotect { page: u32, pages: u32, prot: Prot, pkey: i32 },
    /// Set this thread's rights for `pkey` to `rights` in the PKRU register (glibc's `pkey_set`: RDPKRU,
    /// WRPKRU). x86_64 with PKU only: anywhere else the step is Unsupported with the reason (the
    /// instruction would be #UD, SIGILL). No system call; it returns 0.
    PkeySet { pkey: u32, rights: PkeyRights },
    /// `fcntl(fd of files[file], F_ADD_SEALS, seals)`: add memfd seals (mm/memfd.c:memfd_add_seals).
    Seal { file: u32, seals: Vec<SealKind> },
}

/// The access rights of a protection key (`init_val` of pkey_alloc, the rights of `pkey_set`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkeyRights {
    /// 0: reads and writes allowed.
    Enabled,
    /// PKEY_DISABLE_WRITE (2): reads allowed, writes fault.
    DisableWrite,
    /// PKEY_DISABLE_ACCESS (1): every data access faults.
    DisableAccess,
    /// PKEY_DISABLE_ACCESS|PKEY_DISABLE_WRITE (3).
    DisableAll,
}

impl PkeyRights {
    /// The `init_val` bits (include/uapi/asm-generic/mman-common.h), which are also the key's two PKRU
    /// bits on x86 (AD = 1, WD = 2; arch/x86/include/asm/pkru.h).
    pub fn value(self) -> u32 {
        match self {
            PkeyRights::Enabled => 0,
            PkeyRights::DisableWrite => 2,
            PkeyRights::DisableAccess => 1,
            PkeyRights::DisableAll => 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PkeyRights::Enabled => "enabled",
            PkeyRights::DisableWrite => "disable_write",
            PkeyRights::DisableAccess => "disable_access",
            PkeyRights::DisableAll => "disable_all",
        }
    }
}

/// One memfd seal of a `seal` step (the F_SEAL_* bits of include/uapi/linux/fcntl.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealKind {
    /// F_SEAL_SEAL: later F_ADD_SEALS calls are EPERM.
    Seal,
    /// F_SEAL_SHRINK: ftruncate to a smaller size is EPERM.
    Shrink,
    /// F_SEAL_GROW: ftruncate to a larger size, and fallocate past EOF, are EPERM.
    Grow,
    /// F_SEAL_WRITE: EBUSY while any shared mapping may write the file; afterwards shared writable mmap
    /// is EPERM, write(2) and hole punching EPERM.
    Write,
    /// F_SEAL_FUTURE_WRITE: as F_SEAL_WRITE for new mappings and calls, but existing mappings keep writing.
    FutureWrite,
}

impl SealKind {
    pub const ALL: [SealKind; 5] = [SealKind::Seal, SealKind::Shrink, SealKind::Grow, SealKind::Write, SealKind::FutureWrite];

    /// The F_SEAL_* bit.
    pub fn value(self) -> u32 {
        match self {
            SealKind::Seal => 0x0001,
            SealKind::Shrink => 0x0002,
            SealKind::Grow => 0x0004,
            SealKind::Write => 0x0008,
            SealKind::FutureWrite => 0x0010,
        }
    }

    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            SealKind::Seal => "seal",
            SealKind::Shrink => "shrink",
            SealKind::Grow => "grow",
            SealKind::Write => "write",
            SealKind::FutureWrite => "future_write",
        }
    }

    /// The bits of a list of seals.
    pub fn bits(seals: &[SealKind]) -> u32 {
        seals.iter().fold(0, |a, s| a | s.value())
    }
}

/// The `mode` of a `fallocate` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallocMode {
    /// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE: the pages become a hole (read as zero), their page-cache
    /// pages are unmapped from every mapping; private COW copies stay.
    PunchHole,
    /// Mode 0: allocate the range; a range past EOF extends the file (i_size) to its end. Nothing mapped
    /// changes; allocated holes still read as zero.
    Allocate,
    /// FALLOC_FL_KEEP_SIZE: allocate the range without changing i_size (shmem keeps the pages allocated
    /// past EOF until a truncation removes them).
    KeepSize,
}

impl FallocMode {
    /// The mode argument of fallocate(2) (include/uapi/linux/falloc.h).
    pub fn value(self) -> i32 {
        match self {
            FallocMode::PunchHole => 0x02 | 0x01,
            FallocMode::Allocate => 0,
            FallocMode::KeepSize => 0x01,
        }
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

impl Step {
    /// The `vlen` a `process_madvise` step passes.
    pub fn pm_vlen(iov: &Option<Vec<IovElem>>, vlen: Option<u64>) -> u64 {
        vlen.unwrap_or_else(|| iov.as_ref().map_or(0, |v| v.len() as u64))
    }
}

impl Step {
    pub fn op(&self) -> &'static str {
        match self {
            Step::Madvise { .. } => "madvise",
            Step::Write { .. } => "write",
            Step::Read { .. } => "read",
            Step::TryWrite { .. } => "try_write",
            Step::TryRead { .. } => "try_read",
            Step::Mprotect { .. } => "mprotect",
            Step::Munmap { .. } => "munmap",
            Step::Mmap { .. } => "mmap",
            Step::Mlock { .. } => "mlock",
            Step::Munlock { .. } => "munlock",
            Step::Fork { .. } => "fork",
            Step::ForkLive => "fork_live",
            Step::InChild { .. } => "in_child",
            Step::ChildExit => "child_exit",
            Step::Mseal { .. } => "mseal",
            Step::Mremap { .. } => "mremap",
            Step::Ftruncate { .. } => "ftruncate",
            Step::Fallocate { .. } => "fallocate",
            Step::ProcessMadvise { .. } => "process_madvise",
            Step::Close { .. } => "close",
            Step::Seal { .. } => "seal",
            Step::PkeyAlloc { .. } => "pkey_alloc",
            Step::PkeyFree { .. } => "pkey_free",
            Step::PkeyMprotect { .. } => "pkey_mprotect",
            Step::PkeySet { .. } => "pkey_set",
        }
    }
}

/// Where an observation was taken: parent step `step`, or child step `child` of the fork at `step`
/// (`child == Some(0)` is the child's first view, right after fork; `Some(k)` follows child step k-1).
/// An `in_child` step's point is plain `step`: it is the live child's view after that step.
/// `grandchild` names the points of a fork inside the fork child (child step `child - 1` is the nested
/// `fork`): `Some(0)` is the grandchild's first view, `Some(g)` follows grandchild step g-1; the child's
/// own view after its fork (the grandchild has exited) is `child` with `grandchild == None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepId {
    pub step: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grandchild: Option<u32>,
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.child, self.grandchild) {
            (None, _) => write!(f, "{}", self.step),
            (Some(c), None) => write!(f, "{}.child{}", self.step, c),
            (Some(c), Some(g)) => write!(f, "{}.child{}.child{}", self.step, c, g),
        }
    }
}

/// A runnable program: the part of a scenario both backends execute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Size of the observed arena window, in pages.
    pub arena_pages: u32,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Initial mappings, made in order before step 0 (not observed on their own: step 0's observation
    /// shows them).
    pub maps: Vec<MapSpec>,
    pub steps: Vec<Step>,
    /// The kernel word size (32 or 64) whose `size_t` arithmetic the program's madvise and
    /// process_madvise arguments are written for; elsewhere it is Unsupported with the reason
    /// ([`crate::environment_refusal`]). `None`: any (it is then safe on both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_bits: Option<u32>,
}

impl Program {
    /// The observation points, in the order both backends produce them: for a fork, the child's views
    /// come before the parent's view after the fork.
    pub fn step_ids(&self) -> Vec<StepId> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let i = i as u32;
            if let Step::Fork { child: steps } = s {
                out.push(StepId { step: i, child: Some(0), grandchild: None });
                for (k, cs) in steps.iter().enumerate() {
                    let c = k as u32 + 1;
                    if let Step::Fork { child: gsteps } = cs {
                        for g in 0..=gsteps.len() as u32 {
                            out.push(StepId { step: i, child: Some(c), grandchild: Some(g) });
                        }
                    }
                    out.push(StepId { step: i, child: Some(c), grandchild: None });
                }
            }
            if let Step::ForkLive = s {
                out.push(StepId { step: i, child: Some(0), grandchild: None });
            }
            out.push(StepId { step: i, child: None, grandchild: None });
        }
        out
    }

    /// Is this mapping hugetlb (MAP_HUGETLB, or a mapping of a hugetlbfs file)?
    pub fn is_hugetlb_map(&self, m: &MapSpec) -> bool {
        m.backing.is_map_hugetlb()
            || m.backing.file().is_some_and(|(f, _)| self.files.get(f as usize).is_some_and(|f| f.kind == FileKind::Hugetlb))
    }

    /// Can the program lock memory (a MAP_LOCKED map, an mlock step, or a MAP_LOCKED mmap step, in the
    /// parent or a child)? Such programs observe `mm->locked_vm` (`VmLck` of /proc/self/status).
    pub fn locks(&self) -> bool {
        fn step_locks(s: &Step) -> bool {
            match s {
                Step::Mlock { .. } => true,
                Step::Mmap { map } => map.locked,
                Step::Fork { child } => child.iter().any(step_locks),
                Step::InChild { step } => step_locks(step),
                _ => false,
            }
        }
        self.maps.iter().any(|m| m.locked) || self.steps.iter().any(step_locks)
    }

    /// Does the program use hugetlb memory at all (a hugetlbfs file or a hugetlb mapping, initial or by a
    /// step)? Such programs need the huge page pool and observe the HugePages_* counters.
    pub fn uses_hugetlb(&self) -> bool {
        fn steps_map(steps: &[Step], f: &dyn Fn(&MapSpec) -> bool) -> bool {
            steps.iter().any(|s| match s {
                Step::Mmap { map } => f(map),
                Step::Fork { child } => steps_map(child, f),
                _ => false,
            })
        }
        self.files.iter().any(|f| f.kind == FileKind::Hugetlb)
            || self.maps.iter().any(|m| self.is_hugetlb_map(m))
            || steps_map(&self.steps, &|m| self.is_hugetlb_map(m))
    }

    /// Does the program use protection keys (a `pkey_*` step anywhere)? A worker that ran one retires
    /// afterwards: the keys it allocated and its PKRU register are process-wide state.
    pub fn uses_pkeys(&self) -> bool {
        fn any(steps: &[Step]) -> bool {
            steps.iter().any(|s| match s {
                Step::PkeyAlloc { .. } | Step::PkeyFree { .. } | Step::PkeyMprotect { .. } | Step::PkeySet { .. } => true,
                Step::Fork { child } => any(child),
                Step::InChild { step } => any(std::slice::from_ref(&**step)),
                _ => false,
            })
        }
        any(&self.steps)
    }

    /// The step an id names (the Fork step itself for `child == Some(0)`, the child's Fork step for
    /// `grandchild == Some(0)`).
    pub fn step(&self, id: StepId) -> Option<&Step> {
        let s = self.steps.get(id.step as usize)?;
        let cs = match (id.child, s) {
            (None, _) | (Some(0), _) => return Some(s),
            (Some(c), Step::Fork { child: steps }) => steps.get(c as usize - 1)?,
            _ => return None,
        };
        match (id.grandchild, cs) {
            (None, _) | (Some(0), _) => Some(cs),
            (Some(g), Step::Fork { child: steps }) => steps.get(g as usize - 1),
            _ => None,
        }
    }
}

/// Fixed facts about where programs run, shared by both backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaGeometry {
    /// Virtual address of arena page 0. It is below the executable, heap and libraries, so the arena's
    /// VMAs come first in /proc/self/smaps.
    pub base: u64,
    /// Unmapped pages kept free below and above the arena window. madvise ranges may reach into them.
    pub gap_pages: u64,
    /// Largest arena, in pages.
    pub max_pages: u32,
}

pub const ARENA: ArenaGeometry = ArenaGeometry { base: 0x1000_0000, gap_pages: 64, max_pages: 8192 };

/// The part of the arena hugetlb scenarios use: a kernel whose default huge page needs more than half
/// of it (2,048 pages: 32 MiB on arm64 16K) answers them Unsupported. It stayed at the arena's old size
/// when the arena grew to 8,192 pages for PMD THPs, so that no profile's hugetlb scenarios changed.
pub const HUGETLB_ARENA_PAGES: u32 = 1024;
