//! What both backends report after every step (`Observation`), what the model allows (`Allowed`), and
//! the one pure comparison between them (`compare` → `Verdict`).
//!
//! Invariant: an `Observation` is already normalised when it is built (arena-relative pages, page counts
//! instead of kB, files by scenario index), so comparing is plain equality plus set membership. No field
//! is ever skipped: where the kernel is nondeterministic the model answers with a set or a range.

use serde::{Deserialize, Serialize};
use std::fmt;

mod expect;

/// An errno, as data. `Other` keeps any value the model has no name for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Errno {
    EPERM,
    ESRCH,
    EINTR,
    EIO,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EINVAL,
    ENOSPC,
    ENOSYS,
    EOPNOTSUPP,
    EHWPOISON,
    Other(i32),
}

impl Errno {
    /// The one conversion from a raw Linux errno (generic numbering, x86_64 and arm64 alike).
    pub fn from_raw(e: i32) -> Errno {
        match e {
            1 => Errno::EPERM,
            3 => Errno::ESRCH,
            4 => Errno::EINTR,
            5 => Errno::EIO,
            9 => Errno::EBADF,
            11 => Errno::EAGAIN,
            12 => Errno::ENOMEM,
            13 => Errno::EACCES,
            14 => Errno::EFAULT,
            16 => Errno::EBUSY,
            17 => Errno::EEXIST,
            22 => Errno::EINVAL,
            28 => Errno::ENOSPC,
            38 => Errno::ENOSYS,
            95 => Errno::EOPNOTSUPP,
            133 => Errno::EHWPOISON,
            other => Errno::Other(other),
        }
    }
}

/// A fatal signal, as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Signal {
    SIGSEGV,
    SIGBUS,
    SIGABRT,
    SIGKILL,
    SIGILL,
    Other(i32),
}

impl Signal {
    pub fn from_raw(s: i32) -> Signal {
        match s {
            11 => Signal::SIGSEGV,
            7 => Signal::SIGBUS,
            6 => Signal::SIGABRT,
            9 => Signal::SIGKILL,
            4 => Signal::SIGILL,
            other => Signal::Other(other),
        }
    }
}

/// The result of a step: success, an errno, or the fatal signal that ended the process at that step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Ret {
    Ok,
    Err(Errno),
    Signal(Signal),
    /// A byte count (`process_madvise`: the bytes advised before the first failing element).
    Bytes(u64),
    /// A protection key (`pkey_alloc`).
    Key(u32),
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Ok => f.write_str("0"),
            Ret::Bytes(n) => write!(f, "{n} bytes"),
            Ret::Key(k) => write!(f, "key {k}"),
            Ret::Err(Errno::Other(e)) => write!(f, "errno {e}"),
            Ret::Err(e) => write!(f, "{e:?}"),
            Ret::Signal(Signal::Other(s)) => write!(f, "signal {s}"),
            Ret::Signal(s) => write!(f, "{s:?}"),
        }
    }
}

/// What backs a VMA, as seen in its maps line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmaBacking {
    /// No file (private anonymous).
    Anon,
    /// MAP_SHARED|MAP_ANONYMOUS: shmem, `/dev/zero (deleted)`.
    Shmem,
    /// `files[i]` of the scenario (disk file or memfd).
    File(u32),
    /// MAP_ANONYMOUS|MAP_HUGETLB: a hugetlbfs file of its own, `/anon_hugepage (deleted)`.
    Hugetlb,
    /// A file or mapping the scenario did not create (should never be seen inside the arena).
    Foreign,
}

/// One smaps `VmFlags` mnemonic. The kernel prints every flag as exactly two characters
/// (`mnemonics[BITS_PER_LONG][2]`, "??" for a bit with no name) [S 6.18 fs/proc/task_mmu.c:
/// show_smap_vma_flags], so a flag is kept inline: a VMA's flags are one allocation, not one `String`
/// per flag (every observation of every step builds them, in the worker, the runner and the model).
/// It serialises, prints and compares as its two-character string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmFlag([u8; 2]);

impl VmFlag {
    /// The flag spelled by `s`: exactly two printable ASCII characters, else `None`.
    pub fn parse(s: &[u8]) -> Option<VmFlag> {
        match *s {
            [a, b] if a.is_ascii_graphic() && b.is_ascii_graphic() => Some(VmFlag([a, b])),
            _ => None,
        }
    }

    /// A flag named in the source (the model's mnemonic table, tests); panics on a name that is not two
    /// printable ASCII characters, which is a programming error, never input.
    pub const fn named(s: &str) -> VmFlag {
        let b = s.as_bytes();
        assert!(b.len() == 2 && b[0].is_ascii_graphic() && b[1].is_ascii_graphic(), "a VmFlags mnemonic is two printable characters");
        VmFlag([b[0], b[1]])
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII bytes (checked where made) are valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::ops::Deref for VmFlag {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for VmFlag {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for VmFlag {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for VmFlag {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for VmFlag {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for VmFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for VmFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for VmFlag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VmFlag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<VmFlag, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        VmFlag::parse(s.as_bytes())
            .ok_or_else(|| serde::de::Error::custom(format!("VmFlags mnemonic {s:?} is not two printable characters")))
    }
}

/// One VMA inside the arena window.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmaObs {
    /// Arena-relative page range `[start, end)`.
    pub start: i64,
    pub end: i64,
    /// `rw-p` style, exactly as in maps.
    pub perms: String,
    /// The maps offset column, in pages (0 for private anonymous VMAs).
    pub offset: u64,
    pub backing: VmaBacking,
    /// smaps VmFlags mnemonics in kernel (bit) order.
    pub flags: Vec<VmFlag>,
    /// smaps counters, in pages.
    pub rss: u64,
    pub anon: u64,
    pub lazyfree: u64,
    pub locked: u64,
    /// smaps `Shared_Hugetlb` and `Private_Hugetlb`, in (base) pages; hugetlb pages are not in `Rss`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hugetlb_shared: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hugetlb_private: u64,
    /// smaps `AnonHugePages`, in (base) pages: anonymous THPs mapped by a PMD.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub anon_huge: u64,
    /// smaps `Swap`, in pages: the VMA's pages out on swap (shmem: its swapped pages in range).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub swap: u64,
    /// smaps `ProtectionKey:`, printed only where the CPU has protection keys (x86: OSPKE)
    /// [S 6.12, 6.18 arch/x86/kernel/setup.c:arch_show_smap]; `None` where the line is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkey: Option<u32>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Free, unreserved huge pages every hugetlb scenario can count on when it starts, with 2 MiB huge
/// pages of 512 base pages (4K pages): the run raises `vm.nr_hugepages` to make sure (harness
/// `hugepool`), in a guest before every hugetlb scenario. Past that an allocation may fail, which the
/// model answers as unsupported. Other huge page sizes: [`pool_free_unreserved`].
pub const POOL_FREE_UNRESERVED: i64 = 8;

/// Base pages per huge page the generator and the named cases are written for (2 MiB on 4K pages).
pub const POOL_UNIT_PAGES: u64 = 512;

/// Free, unreserved huge pages a run needs when a huge page is `hugetlb_pages` base pages. Scenarios
/// are in base pages, so the same hugetlb layout of 512-page slots takes `512 / hugetlb_pages` times as
/// many smaller huge pages: with 64K pages and 2 MiB huge pages (ppc64 radix, 32 base pages) a 512-page
/// private mapping reserves 16 of them at mmap, and a pool of 8 answered ENOMEM [S 7.2 mm/hugetlb.c:
/// hugetlb_reserve_pages, hugetlb_acct_memory]. The pool is therefore `POOL_FREE_UNRESERVED × 512`
/// base pages of huge memory (16 MiB on 4K pages, 256 MiB on 64K), never fewer than 8 huge pages.
pub fn pool_free_unreserved(hugetlb_pages: u64) -> i64 {
    if hugetlb_pages == 0 || hugetlb_pages >= POOL_UNIT_PAGES {
        return POOL_FREE_UNRESERVED;
    }
    POOL_FREE_UNRESERVED * POOL_UNIT_PAGES.div_ceil(hugetlb_pages) as i64
}

/// The hugetlb pool counters of /proc/meminfo (`HugePages_Free`, `HugePages_Rsvd`, `HugePages_Surp`, in
/// huge pages), as the change since the scenario started. Observed only by programs that use hugetlb.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HugeDelta {
    pub free: i64,
    pub rsvd: i64,
    pub surp: i64,
}

impl fmt::Display for HugeDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "free {:+} rsvd {:+} surp {:+}", self.free, self.rsvd, self.surp)
    }
}

/// Residency of one page, from /proc/self/pagemap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Residency {
    /// pagemap entry 0 (hole or empty PTE).
    Absent,
    /// Present, mapping an ordinary page.
    Present,
    /// Present, mapping the shared zero page (needs PFNs; see `KernelModel::zero_page_visible`).
    ZeroPage,
    /// A non-present swap-format entry (swap, migration, hwpoison, guard marker).
    Swap,
}

/// The contents of a present page, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Content {
    /// Every byte zero.
    Zero,
    /// Every byte equal to this (non-zero) value.
    Fill(u8),
    /// Exactly the original content of file `file`, page `page` (see `content::file_page`).
    FilePage { file: u32, page: u32 },
    /// Anything else: XXH3-64 of the page.
    Hash(u64),
}

/// One arena page. `content` is `Some` exactly when the page is present (Present or ZeroPage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageObs {
    pub res: Residency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl PageObs {
    pub const ABSENT: PageObs = PageObs { res: Residency::Absent, content: None };
}

/// Everything observed after one step. Identical in shape for both backends. After a fatal signal the
/// process is gone: `vmas` and `pages` are empty. A caught fault (`try_write`, `try_read`) has the
/// signal as `ret` and a full observation, since the process goes on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub ret: Ret,
    pub vmas: Vec<VmaObs>,
    pub pages: Vec<PageObs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugetlb: Option<HugeDelta>,
    /// `mm->locked_vm` in pages (`VmLck:` of /proc/self/status), for programs that lock memory
    /// (`Program::locks`); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_vm: Option<u64>,
}

/// An inclusive range of page counts the model allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Count {
    pub lo: u64,
    pub hi: u64,
}

impl Count {
    pub fn exact(n: u64) -> Count {
        Count { lo: n, hi: n }
    }
    pub fn contains(self, n: u64) -> bool {
        self.lo <= n && n <= self.hi
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}..={}", self.lo, self.hi)
        }
    }
}

/// The model's answer for one VMA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmaAllowed {
    pub start: i64,
    pub end: i64,
    pub perms: String,
    pub offset: u64,
    pub backing: VmaBacking,
    pub flags: Vec<VmFlag>,
    pub rss: Count,
    pub anon: Count,
    pub lazyfree: Count,
    pub locked: Count,
    #[serde(default)]
    pub hugetlb_shared: Count,
    #[serde(default)]
    pub hugetlb_private: Count,
    #[serde(default)]
    pub anon_huge: Count,
    #[serde(default)]
    pub swap: Count,
    /// smaps `ProtectionKey:` (`None`: the kernel prints no such line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkey: Option<u32>,
}

impl VmaAllowed {
    /// The observed VMA as an answer of single values.
    pub fn exact(v: &VmaObs) -> VmaAllowed {
        VmaAllowed {
            start: v.start,
            end: v.end,
            perms: v.perms.clone(),
            offset: v.offset,
            backing: v.backing,
            flags: v.flags.clone(),
            rss: Count::exact(v.rss),
            anon: Count::exact(v.anon),
            lazyfree: Count::exact(v.lazyfree),
            locked: Count::exact(v.locked),
            hugetlb_shared: Count::exact(v.hugetlb_shared),
            hugetlb_private: Count::exact(v.hugetlb_private),
            anon_huge: Count::exact(v.anon_huge),
            swap: Count::exact(v.swap),
            pkey: v.pkey,
        }
    }
}

/// The model's answer for one step: a set of returns, one VMA list, and per page a set of alternatives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    pub ret: Vec<Ret>,
    pub vmas: Vec<VmaAllowed>,
    pub pages: Vec<Vec<PageObs>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugetlb: Option<HugeDelta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_vm: Option<u64>,
}

/// The model's answer for one observation point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    Allowed(Allowed),
    /// The model does not know this behaviour; the rest of the scenario is not compared.
    Unsupported(String),
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// `ret`, `vmas` (the layout: count, ranges, perms, offset or backing), `vma[i].flags`, `vma[i].rss`,
    /// `vma[i].anon`, `vma[i].lazyfree`, `vma[i].locked`, `vma[i].hugetlb_shared`,
    /// `vma[i].hugetlb_private`, `vma[i].anon_huge`, `vma[i].swap`, `vma[i].pkey`, `hugetlb` (the pool counters), `locked_vm`, `page[p].res`, `page[p].content`.
    pub field: String,
    pub expected: String,
    pub observed: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Match,
    Diverge(Vec<Difference>),
    Unsupported(String),
    /// The host left the model's scope (e.g. reclaim by someone else); the result says nothing.
    Poisoned(String),
}

fn layout_key(v: &VmaAllowed) -> (i64, i64, &str, u64, VmaBacking) {
    (v.start, v.end, &v.perms, v.offset, v.backing)
}

fn layout_key_obs(v: &VmaObs) -> (i64, i64, &str, u64, VmaBacking) {
    (v.start, v.end, &v.perms, v.offset, v.backing)
}

pub fn render_ret_set(rets: &[Ret]) -> String {
    rets.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" | ")
}

pub fn render_layout(v: &[(i64, i64, &str, u64, VmaBacking)]) -> String {
    v.iter()
        .map(|(s, e, p, o, b)| format!("[{s},{e}) {p} off={o} {b:?}"))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn render_page(p: &PageObs) -> String {
    match p.content {
        None => format!("{:?}", p.res),
        Some(c) => format!("{:?} {:?}", p.res, c),
    }
}

/// The one comparison. Every field of the observation is checked against the model's answer.
pub fn compare(expect: &Expect, obs: &Observation) -> Verdict {
    let allowed = match expect {
        Expect::Unsupported(why) => return Verdict::Unsupported(why.clone()),
        Expect::Allowed(a) => a,
    };
    let mut diffs = Vec::new();
    let mut diff = |field: String, expected: String, observed: String| {
        diffs.push(Difference { field, expected, observed })
    };
    if !allowed.ret.contains(&obs.ret) {
        diff("ret".into(), render_ret_set(&allowed.ret), obs.ret.to_string());
    }
    let exp_layout: Vec<_> = allowed.vmas.iter().map(layout_key).collect();
    let obs_layout: Vec<_> = obs.vmas.iter().map(layout_key_obs).collect();
    if exp_layout != obs_layout {
        diff("vmas".into(), render_layout(&exp_layout), render_layout(&obs_layout));
    } else {
        for (i, (a, o)) in allowed.vmas.iter().zip(&obs.vmas).enumerate() {
            if a.flags != o.flags {
                diff(format!("vma[{i}].flags"), a.flags.join(" "), o.flags.join(" "));
            }
            if a.pkey != o.pkey {
                let show = |k: Option<u32>| k.map_or_else(|| "no ProtectionKey line".to_string(), |k| k.to_string());
                diff(format!("vma[{i}].pkey"), show(a.pkey), show(o.pkey));
            }
            for (name, c, v) in [
                ("rss", a.rss, o.rss),
                ("anon", a.anon, o.anon),
                ("lazyfree", a.lazyfree, o.lazyfree),
                ("locked", a.locked, o.locked),
                ("hugetlb_shared", a.hugetlb_shared, o.hugetlb_shared),
                ("hugetlb_private", a.hugetlb_private, o.hugetlb_private),
                ("anon_huge", a.anon_huge, o.anon_huge),
                ("swap", a.swap, o.swap),
            ] {
                if !c.contains(v) {
                    diff(format!("vma[{i}].{name}"), c.to_string(), v.to_string());
                }
            }
        }
    }
    if allowed.hugetlb != obs.hugetlb {
        let show = |h: Option<HugeDelta>| h.map_or_else(|| "not observed".to_string(), |h| h.to_string());
        diff("hugetlb".into(), show(allowed.hugetlb), show(obs.hugetlb));
    }
    if allowed.locked_vm != obs.locked_vm {
        let show = |n: Option<u64>| n.map_or_else(|| "not observed".to_string(), |n| format!("{n} pages"));
        diff("locked_vm".into(), show(allowed.locked_vm), show(obs.locked_vm));
    }
    if allowed.pages.len() != obs.pages.len() {
        diff("pages".into(), format!("{} pages", allowed.pages.len()), format!("{} pages", obs.pages.len()));
    } else {
        for (p, (alts, o)) in allowed.pages.iter().zip(&obs.pages).enumerate() {
            if alts.contains(o) {
                continue;
            }
            let exp = alts.iter().map(render_page).collect::<Vec<_>>().join(" | ");
            if alts.iter().any(|a| a.res == o.res) {
                diff(format!("page[{p}].content"), exp, render_page(o));
            } else {
                diff(format!("page[{p}].res"), exp, render_page(o));
            }
        }
    }
    if diffs.is_empty() {
        Verdict::Match
    } else {
        Verdict::Diverge(diffs)
    }
}
