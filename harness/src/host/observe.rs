//! Observation of the arena on the real kernel: the lean path from `docs/perf-floor.md`.
//!
//! Invariant: an observation never changes what it observes. Only pages pagemap reports present are
//! read, readable ones through their address and the rest through `/proc/self/mem`; nothing is faulted
//! in. smaps is read through a kept fd in 1 KiB reads and abandoned at the first record past the arena
//! (the arena is the lowest mapping in the process, so its records come first; the worker's stop
//! mappings right above the arena window come next and cost no page-table walk), which keeps the cost
//! independent of the worker's own mappings. The /proc fds bind to the process that opened them, so a
//! forked child must call `reopen`.

use crate::host::procmem::PageReader;
use crate::host::sys::{self, Fd};
use simulator::content::{file_page, FILE_MAGIC};
use simulator::observe::{Content, Observation, PageObs, Residency, Ret, VmFlag, VmaBacking, VmaObs};
use std::collections::HashMap;

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAP: u64 = 1 << 62;
const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// Identity of one scenario file, to attribute a VMA to `VmaBacking::File(i)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdent {
    pub major: u32,
    pub minor: u32,
    pub ino: u64,
}

impl FileIdent {
    pub fn from_stat(st: &libc::stat) -> FileIdent {
        // st_ino is 32 bits on 32-bit glibc (armhf) without _FILE_OFFSET_BITS=64.
        FileIdent { major: libc::major(st.st_dev), minor: libc::minor(st.st_dev), ino: st.st_ino as u64 }
    }
}

/// Classifies page bytes exactly like `simulator::content::classify`, but without allocating: expected
/// file pages are generated once and kept.
pub struct Classifier {
    cache: HashMap<(u32, u32, usize), Box<[u8]>>,
}

/// Entries kept before the cache is dropped; a page is 4 KiB, so this bounds it at ~16 MiB.
const CACHE_LIMIT: usize = 4096;

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new()
    }
}

impl Classifier {
    pub fn new() -> Classifier {
        Classifier { cache: HashMap::new() }
    }

    /// The original bytes of page `page` of file `file` (cached).
    pub fn file_page(&mut self, file: u32, page: u32, len: usize) -> &[u8] {
        if self.cache.len() >= CACHE_LIMIT && !self.cache.contains_key(&(file, page, len)) {
            self.cache.clear();
        }
        self.cache.entry((file, page, len)).or_insert_with(|| file_page(file, page, len).into_boxed_slice())
    }

    pub fn classify(&mut self, bytes: &[u8]) -> Content {
        let Some(&first) = bytes.first() else { return Content::Hash(xxhash_rust::xxh3::xxh3_64(bytes)) };
        if is_uniform(bytes, first) {
            return if first == 0 { Content::Zero } else { Content::Fill(first) };
        }
        if bytes.len() >= 16 && &bytes[..8] == FILE_MAGIC {
            let file = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let page = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
            if self.file_page(file, page, bytes.len()) == bytes {
                return Content::FilePage { file, page };
            }
        }
        Content::Hash(xxhash_rust::xxh3::xxh3_64(bytes))
    }
}

/// What a shmem-backed file (memfd, tmpfs, hugetlbfs) holds at one page, read through its fd
/// (docs/absent-contents.md; not yet part of `Observation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // used by the tests until the worker observes absent pages through the file
pub enum FileContent {
    Content(Content),
    /// The page is at or past i_size: nothing to read (a mapping of it would raise SIGBUS).
    PastEof,
    /// The scenario closed the fd: not read.
    Unknown,
}

impl Classifier {
    /// The contents of pages `first..first + n` (of `ps` bytes) of the shmem-backed file open as `fd`
    /// (-1: closed), read with one fstat and one pread and classified like present pages. A read of a
    /// shmem or hugetlbfs hole copies zeros and allocates nothing, and no read maps anything, so this
    /// changes neither residency nor RSS [S 6.12 mm/shmem.c:shmem_file_read_iter (SGP_READ, ZERO_PAGE);
    /// fs/hugetlbfs/inode.c:hugetlbfs_read_iter (iov_iter_zero on a hole)]; measured by
    /// docs/repro/absent_pread.c and the test below. Never for disk files: a pread fills their page
    /// cache, which later fault-around maps.
    #[allow(dead_code)] // used by the tests until the worker observes absent pages through the file
    pub fn read_through_file(
        &mut self,
        fd: i32,
        first: u64,
        n: usize,
        ps: usize,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<FileContent>, String> {
        if fd < 0 {
            return Ok(vec![FileContent::Unknown; n]);
        }
        // SAFETY: fstat writes into the zeroed struct it is given.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(format!("fstat of a scenario file: {}", sys::strerror(sys::errno())));
        }
        let size = st.st_size as u64;
        let start = first * ps as u64;
        // Pages wholly or partly before EOF are read; a partial last page shows zeros past EOF, as a
        // mapping of it does.
        let readable = if start >= size { 0 } else { (size - start).div_ceil(ps as u64).min(n as u64) as usize };
        buf.clear();
        buf.resize(readable * ps, 0);
        let got = sys::pread_full(fd, buf, start).map_err(|e| format!("pread of a scenario file: {}", sys::strerror(e)))?;
        buf[got..].fill(0);
        let mut out: Vec<FileContent> = buf.chunks_exact(ps).map(|b| FileContent::Content(self.classify(b))).collect();
        out.resize(n, FileContent::PastEof);
        Ok(out)
    }
}

/// Every byte equals `first`. Written as a branch-free OR per 64-byte block so it vectorises.
fn is_uniform(bytes: &[u8], first: u8) -> bool {
    let mut chunks = bytes.chunks_exact(64);
    for c in &mut chunks {
        if c.iter().fold(0u8, |acc, &b| acc | (b ^ first)) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == first)
}

/// Bytes per smaps read. The kernel generates records (`show_smap`: a page-table walk and about 25
/// formatted lines, ~1.1 KiB) until it holds at least the bytes a read asks for, keeps what it did not
/// copy out for the next read, and throws away (to generate again later) a record that overflows its
/// page-sized buffer [S 6.18 fs/seq_file.c:seq_read_iter]. A 4 KiB read therefore generated 3–4 records
/// past a one-VMA arena (the worker's stop mappings, `worker::map_smaps_stops`) that the parser never
/// looks at; 1 KiB reads generate about one record per read, so past the arena only the first stop's.
/// Measured on this 6.18 host (a C loop, early-stop read of a one-VMA arena with the four stops after
/// it): 17.0 µs of CPU per observation with 4 KiB reads, 8.2 with 2 KiB, 6.8 with 1 KiB, 7.0 with 512
/// bytes; with three arena VMAs all sizes cost the same (16 µs). The C floor reads 1 KiB too.
const SMAPS_CHUNK: usize = 1024;

/// The kept /proc fds and scratch buffers of one process.
pub struct Observer {
    ps: u64,
    base: u64,
    zero_pfn: Option<ZeroPfns>,
    smaps: Fd,
    pagemap: Fd,
    /// Reads present pages in unreadable VMAs (`/proc/self/mem` or the ptrace helper).
    pub reader: PageReader,
    text: Vec<u8>,
    pm: Vec<u8>,
    page_buf: Vec<u8>,
    pub classifier: Classifier,
    /// The hugetlb pool counters at the start of the current scenario, for programs that use hugetlb.
    pub huge_base: Option<crate::host::hugepool::Counters>,
    /// Whether the current scenario observes `mm->locked_vm` (`Program::locks`).
    pub observe_locked_vm: bool,
    /// /proc/self/status and /proc/meminfo, opened on first use and kept (re-read from the start each
    /// time, like smaps), and the buffer they are read into: opening them for every observation of a
    /// locking or hugetlb program was 4% of a run's CPU.
    status: Option<Fd>,
    meminfo: Option<Fd>,
    small_text: Vec<u8>,
}

fn open_proc_fds() -> Result<(Fd, Fd), String> {
    Ok((Fd::open(c"/proc/self/smaps", libc::O_RDONLY)?, Fd::open(c"/proc/self/pagemap", libc::O_RDONLY)?))
}

impl Observer {
    /// `zero_pfn` is the shared zero page's PFN when pagemap shows PFNs (see `probe_zero_pfn`).
    pub fn open(ps: usize, base: u64, zero_pfn: Option<ZeroPfns>, reader: PageReader) -> Result<Observer, String> {
        let (smaps, pagemap) = open_proc_fds()?;
        Ok(Observer {
            ps: ps as u64,
            base,
            zero_pfn,
            smaps,
            pagemap,
            reader,
            text: Vec::with_capacity(16 << 10),
            pm: Vec::new(),
            page_buf: vec![0; ps],
            classifier: Classifier::new(),
            huge_base: None,
            observe_locked_vm: false,
            status: None,
            meminfo: None,
            small_text: Vec::with_capacity(4 << 10),
        })
    }

    /// Re-open the /proc fds in a forked child: inherited ones would describe the parent.
    pub fn reopen(&mut self) -> Result<(), String> {
        let (smaps, pagemap) = open_proc_fds()?;
        self.smaps = smaps;
        self.pagemap = pagemap;
        // /proc/self/status names the process that opened it; meminfo is the machine's, but its open file
        // (and offset) would be shared with the parent.
        self.status = None;
        self.meminfo = None;
        self.reader.after_fork()
    }

    /// Observe `arena_pages` pages from the arena base after a step that returned `ret`.
    pub fn observe(&mut self, ret: Ret, arena_pages: u32, files: &[FileIdent]) -> Result<Observation, String> {
        let lo = self.base;
        let hi = self.base + arena_pages as u64 * self.ps;
        let vmas = self.read_smaps(lo, hi, files)?;
        let pages = self.read_pages(arena_pages, &vmas)?;
        let hugetlb = match self.huge_base {
            Some(base) => Some(self.huge_counters()?.since(base)),
            None => None,
        };
        let locked_vm = if self.observe_locked_vm { Some(self.vm_lck_kb()? * 1024 / self.ps) } else { None };
        Ok(Observation { ret, vmas, pages, hugetlb, locked_vm })
    }

    /// `VmLck` of this process's /proc/self/status (mm->locked_vm), in kB.
    pub fn vm_lck_kb(&mut self) -> Result<u64, String> {
        let text = reread(&mut self.status, c"/proc/self/status", &mut self.small_text)?;
        parse_vm_lck(text)
    }

    /// The `HugePages_*` counters of /proc/meminfo.
    pub fn huge_counters(&mut self) -> Result<crate::host::hugepool::Counters, String> {
        let text = reread(&mut self.meminfo, c"/proc/meminfo", &mut self.small_text)?;
        crate::host::hugepool::Counters::parse(text).ok_or_else(|| "no HugePages_* lines in /proc/meminfo".to_string())
    }

    /// The arena's VMAs from smaps, stopping at the first record that starts at or past `hi`.
    fn read_smaps(&mut self, lo: u64, hi: u64, files: &[FileIdent]) -> Result<Vec<VmaObs>, String> {
        // SAFETY: lseek on an fd we own.
        if unsafe { libc::lseek(self.smaps.0, 0, libc::SEEK_SET) } < 0 {
            return Err(format!("lseek /proc/self/smaps: {}", sys::strerror(sys::errno())));
        }
        self.text.clear();
        let mut parser = SmapsParser { lo, hi, ps: self.ps, base: self.base, files, out: Vec::new(), cur: None };
        let mut pos = 0; // start of the first unparsed line
        'read: loop {
            let len = self.text.len();
            self.text.resize(len + SMAPS_CHUNK, 0);
            let n = sys::read_some(self.smaps.0, &mut self.text[len..])
                .map_err(|e| format!("read /proc/self/smaps: {}", sys::strerror(e)))?;
            self.text.truncate(len + n);
            if n == 0 {
                break;
            }
            while let Some(nl) = memchr(b'\n', &self.text[pos..]) {
                let line = &self.text[pos..pos + nl];
                pos += nl + 1;
                if parser.line(line)? {
                    break 'read;
                }
            }
        }
        parser.finish();
        Ok(parser.out)
    }

    fn read_pages(&mut self, arena_pages: u32, vmas: &[VmaObs]) -> Result<Vec<PageObs>, String> {
        let n = arena_pages as usize;
        self.pm.resize(n * 8, 0);
        let off = (self.base / self.ps) * 8;
        let got = sys::pread_full(self.pagemap.0, &mut self.pm, off)
            .map_err(|e| format!("pread /proc/self/pagemap: {}", sys::strerror(e)))?;
        if got != n * 8 {
            return Err(format!("short pagemap read: {got} of {} bytes", n * 8));
        }
        let mut pages = Vec::with_capacity(n);
        let mut vi = 0;
        // A key this thread may not read (PKRU AD) faults on a direct read: such pages go through
        // /proc/self/mem, a foreign access that pkeys do not check [S 6.12 arch/x86/include/asm/
        // mmu_context.h:arch_vma_access_permitted, `foreign`].
        let pkru = if vmas.iter().any(|v| v.pkey.is_some_and(|k| k != 0)) { crate::host::pkru::read() } else { 0 };
        for p in 0..n {
            // pagemap entries are u64s in the kernel's byte order (big-endian on s390x).
            let e = u64::from_ne_bytes(self.pm[p * 8..p * 8 + 8].try_into().unwrap_or([0; 8]));
            let res = if e & PM_PRESENT != 0 {
                let vpn = self.base / self.ps + p as u64;
                match &self.zero_pfn {
                    Some(z) if z.is_zero(vpn, e & PM_PFN_MASK) => Residency::ZeroPage,
                    _ => Residency::Present,
                }
            } else if e & PM_SWAP != 0 {
                Residency::Swap
            } else {
                Residency::Absent
            };
            let content = match res {
                Residency::Absent | Residency::Swap => None,
                // The shared zero page is all zeros by definition; no need to read it.
                Residency::ZeroPage => Some(Content::Zero),
                Residency::Present => {
                    let pi = p as i64;
                    while vi < vmas.len() && vmas[vi].end <= pi {
                        vi += 1;
                    }
                    let readable = vmas.get(vi).is_some_and(|v| {
                        v.start <= pi && v.perms.as_bytes()[0] == b'r' && v.pkey.is_none_or(|k| crate::host::pkru::allows_read(pkru, k))
                    });
                    let addr = self.base + p as u64 * self.ps;
                    Some(self.page_content(addr, readable)?)
                }
            };
            pages.push(PageObs { res, content });
        }
        Ok(pages)
    }

    fn page_content(&mut self, addr: u64, readable: bool) -> Result<Content, String> {
        if readable {
            // SAFETY: the page is present in a readable VMA of this single-threaded process, so reading it
            // neither faults nor races.
            let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, self.ps as usize) };
            return Ok(self.classifier.classify(bytes));
        }
        // /proc/self/mem reads with FOLL_FORCE, which works on PROT_NONE and exec-only pages; where the
        // kernel grants that only to a ptracer, the reader goes through the helper (`procmem`).
        self.reader.read(addr, &mut self.page_buf)?;
        let buf = std::mem::take(&mut self.page_buf);
        let c = self.classifier.classify(&buf);
        self.page_buf = buf;
        Ok(c)
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Incremental parser of smaps lines; keeps only VMAs that intersect `[lo, hi)`.
struct SmapsParser<'a> {
    lo: u64,
    hi: u64,
    ps: u64,
    base: u64,
    files: &'a [FileIdent],
    out: Vec<VmaObs>,
    cur: Option<VmaObs>,
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

fn bad(line: &[u8]) -> String {
    format!("unparsable /proc/self/smaps line: {:?}", String::from_utf8_lossy(line))
}

impl SmapsParser<'_> {
    /// Feed one line (without its newline). Returns true when reading can stop.
    fn line(&mut self, line: &[u8]) -> Result<bool, String> {
        let first_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let first = &line[..first_end];
        if first.last() == Some(&b':') {
            if let Some(v) = self.cur.as_mut() {
                field(v, first, &line[first_end..], self.ps).ok_or_else(|| bad(line))?;
            }
            return Ok(false);
        }
        // A header: `start-end perms offset dev inode [name]`.
        self.finish();
        let dash = first.iter().position(|&b| b == b'-').ok_or_else(|| bad(line))?;
        let start = parse_hex(&first[..dash]).ok_or_else(|| bad(line))?;
        let end = parse_hex(&first[dash + 1..]).ok_or_else(|| bad(line))?;
        if start >= self.hi {
            return Ok(true);
        }
        if end <= self.lo {
            return Ok(false);
        }
        let mut it = line[first_end..].split(|&b| b == b' ').filter(|s| !s.is_empty());
        let perms = it.next().ok_or_else(|| bad(line))?;
        let offset = it.next().and_then(parse_hex).ok_or_else(|| bad(line))?;
        let dev = it.next().ok_or_else(|| bad(line))?;
        let inode = it.next().and_then(parse_dec).ok_or_else(|| bad(line))?;
        let name = it.next().unwrap_or(b"");
        let colon = dev.iter().position(|&b| b == b':').ok_or_else(|| bad(line))?;
        let major = parse_hex(&dev[..colon]).ok_or_else(|| bad(line))? as u32;
        let minor = parse_hex(&dev[colon + 1..]).ok_or_else(|| bad(line))? as u32;
        let backing = if inode == 0 {
            VmaBacking::Anon
        } else if name.starts_with(b"/anon_hugepage") {
            VmaBacking::Hugetlb
        } else if name.starts_with(b"/dev/zero") {
            VmaBacking::Shmem
        } else if let Some(i) = self.files.iter().position(|f| f.major == major && f.minor == minor && f.ino == inode) {
            VmaBacking::File(i as u32)
        } else {
            VmaBacking::Foreign
        };
        let rel = |a: u64| (a.wrapping_sub(self.base) as i64).div_euclid(self.ps as i64);
        self.cur = Some(VmaObs {
            start: rel(start),
            end: rel(end),
            perms: String::from_utf8_lossy(perms).into_owned(),
            offset: offset / self.ps,
            backing,
            flags: Vec::new(),
            rss: 0,
            anon: 0,
            lazyfree: 0,
            locked: 0,
            hugetlb_shared: 0,
            hugetlb_private: 0,
            anon_huge: 0,
            swap: 0,
            pkey: None,
        });
        Ok(false)
    }

    fn finish(&mut self) {
        if let Some(v) = self.cur.take() {
            self.out.push(v);
        }
    }
}

/// Apply one `Name: value` line to the VMA being built. `None` means a line it cares about is malformed.
fn field(v: &mut VmaObs, name: &[u8], rest: &[u8], ps: u64) -> Option<()> {
    let kb = |rest: &[u8]| -> Option<u64> {
        let mut it = rest.split(|&b| b == b' ').filter(|s| !s.is_empty());
        let n = parse_dec(it.next()?)?;
        Some(n * 1024 / ps)
    };
    match name {
        b"Rss:" => v.rss = kb(rest)?,
        b"Anonymous:" => v.anon = kb(rest)?,
        b"LazyFree:" => v.lazyfree = kb(rest)?,
        b"Locked:" => v.locked = kb(rest)?,
        b"Shared_Hugetlb:" => v.hugetlb_shared = kb(rest)?,
        b"Private_Hugetlb:" => v.hugetlb_private = kb(rest)?,
        b"AnonHugePages:" => v.anon_huge = kb(rest)?,
        b"Swap:" => v.swap = kb(rest)?,
        b"ProtectionKey:" => {
            v.pkey = Some(parse_dec(rest.split(|&b| b == b' ').find(|s| !s.is_empty())?)? as u32);
        }
        b"VmFlags:" => {
            // Every mnemonic is two characters (`VmFlag`); anything else is a malformed line.
            v.flags.clear();
            for s in rest.split(|&b| b == b' ').filter(|s| !s.is_empty()) {
                v.flags.push(VmFlag::parse(s)?);
            }
        }
        _ => {}
    }
    Some(())
}

/// The shared zero pages' PFNs by address colour. Most architectures have one zero page; s390x (and
/// MIPS) have several, and `ZERO_PAGE(vaddr)` picks one by the low bits of the virtual page number
/// (`empty_zero_page + (vaddr & zero_page_mask)`) [S 7.2 arch/s390/include/asm/pgtable.h:ZERO_PAGE,
/// arch/s390/mm/init.c:setup_zero_pages]. `ZERO_COLOURS` is a power of two at least as large as any
/// architecture's count, so `vpn % ZERO_COLOURS` decides which zero page an address gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZeroPfns(Vec<u64>);

/// Address colours probed: s390x has at most 2^7 zero pages (order 7 on z196 and later).
pub const ZERO_COLOURS: u64 = 256;

impl ZeroPfns {
    pub fn is_zero(&self, vpn: u64, pfn: u64) -> bool {
        self.0[(vpn % self.0.len() as u64) as usize] == pfn
    }
}

/// The environment variable through which the runner hands its probe (`probe_zero_pfn`) to every worker
/// it starts, so a replaced worker does not fault in `ZERO_COLOURS` pages again: the zero pages are the
/// machine's, the same for every process, and the worker has the runner's credentials.
pub const ZERO_PFN_ENV: &str = "MADCHECK_ZERO_PFNS";

/// `probe_zero_pfn`'s answer as the text of `ZERO_PFN_ENV`: `none`, or the PFNs by colour in hex,
/// comma-separated (one PFN when every colour has the same zero page, as on all but s390x).
pub fn encode_zero_pfns(z: &Option<ZeroPfns>) -> String {
    match z {
        None => "none".into(),
        Some(ZeroPfns(v)) if v.iter().all(|p| Some(p) == v.first()) => format!("{:x}", v.first().copied().unwrap_or(0)),
        Some(ZeroPfns(v)) => v.iter().map(|p| format!("{p:x}")).collect::<Vec<_>>().join(","),
    }
}

/// The inverse of `encode_zero_pfns`; `None` for text it did not write (the worker then probes itself).
/// The number of PFNs must divide `ZERO_COLOURS`, so `vpn % len` picks the same colour.
pub fn decode_zero_pfns(text: &str) -> Option<Option<ZeroPfns>> {
    if text == "none" {
        return Some(None);
    }
    let v: Vec<u64> = text.split(',').map(|p| u64::from_str_radix(p, 16).ok().filter(|&p| p != 0)).collect::<Option<_>>()?;
    (!v.is_empty() && ZERO_COLOURS.is_multiple_of(v.len() as u64)).then_some(Some(ZeroPfns(v)))
}

/// This process's probe, made once (the runner's, for the workers it starts).
pub fn zero_pfns_once(ps: usize) -> Result<String, String> {
    static ONCE: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| probe_zero_pfn(ps).map(|z| encode_zero_pfns(&z))).clone()
}

/// The shared zero pages' PFNs (see [`ZeroPfns`]), or `None` when pagemap hides PFNs (no
/// CAP_SYS_ADMIN). Maps `ZERO_COLOURS` private anonymous pages outside the arena (no memory is
/// committed: a read fault maps the zero page), reads each and looks them up.
pub fn probe_zero_pfn(ps: usize) -> Result<Option<ZeroPfns>, String> {
    let n = ZERO_COLOURS as usize;
    // SAFETY: a fresh private anonymous mapping, each page read once, then unmapped.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), ps * n, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if p == libc::MAP_FAILED {
            return Err(format!("zero-page probe: mmap: {}", sys::strerror(sys::errno())));
        }
        // Not the huge zero page: a read fault in a PMD-aligned stretch of this mapping would map it
        // (THP with use_zero_page), and its PFNs are not the small zero page's. EINVAL without THP.
        libc::madvise(p, ps * n, libc::MADV_NOHUGEPAGE);
        for i in 0..n {
            std::ptr::read_volatile((p as *const u8).add(i * ps));
        }
        let r = (|| {
            let pm = Fd::open(c"/proc/self/pagemap", libc::O_RDONLY)?;
            let mut buf = vec![0u8; n * 8];
            let vpn0 = p as u64 / ps as u64;
            let got = sys::pread_full(pm.0, &mut buf, vpn0 * 8)
                .map_err(|e| format!("zero-page probe: pread pagemap: {}", sys::strerror(e)))?;
            if got != n * 8 {
                return Err("zero-page probe: short pagemap read".to_string());
            }
            let mut by_colour = vec![0u64; n];
            for i in 0..n {
                let e = u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
                if e & PM_PRESENT == 0 {
                    return Err(format!("zero-page probe: a read page is not present (pagemap entry {e:#x})"));
                }
                let pfn = e & PM_PFN_MASK;
                if pfn == 0 {
                    return Ok(None);
                }
                by_colour[((vpn0 + i as u64) % ZERO_COLOURS) as usize] = pfn;
            }
            Ok(Some(ZeroPfns(by_colour)))
        })();
        libc::munmap(p, ps * n);
        r
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_pfns_survive_the_environment() {
        let one = Some(ZeroPfns(vec![0x1234; ZERO_COLOURS as usize]));
        let text = encode_zero_pfns(&one);
        assert_eq!(text, "1234");
        let back = decode_zero_pfns(&text).unwrap();
        // One PFN for every colour answers as 256 equal ones do.
        assert!(back.as_ref().unwrap().is_zero(77, 0x1234) && !back.as_ref().unwrap().is_zero(77, 0x1235));
        let many = Some(ZeroPfns((0..ZERO_COLOURS).map(|c| 0x100 + c % 128).collect()));
        assert_eq!(decode_zero_pfns(&encode_zero_pfns(&many)), Some(many));
        assert_eq!(decode_zero_pfns("none"), Some(None));
        for bad in ["", "xyz", "0", "1,2,3"] {
            assert_eq!(decode_zero_pfns(bad), None, "{bad:?}");
        }
    }

    use super::*;
    use simulator::content::classify;

    fn reference(b: &[u8]) -> Content {
        classify(b, xxhash_rust::xxh3::xxh3_64)
    }

    /// pagemap entry of `addr` in this process.
    fn pagemap_entry(addr: usize) -> u64 {
        // SAFETY: sysconf has no preconditions.
        let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let fd = Fd::open(c"/proc/self/pagemap", libc::O_RDONLY).unwrap();
        let mut e = [0u8; 8];
        assert_eq!(sys::pread_full(fd.0, &mut e, addr as u64 / ps * 8), Ok(8));
        u64::from_ne_bytes(e)
    }

    /// smaps Rss (kB) of the VMA starting at `addr`.
    fn rss_kb(addr: usize) -> u64 {
        let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for l in text.lines() {
            if let Some((range, _)) = l.split_once(' ') {
                if let Some((lo, _)) = range.split_once('-') {
                    if let Ok(lo) = u64::from_str_radix(lo, 16) {
                        inside = lo == addr as u64;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = l.strip_prefix("Rss:") {
                    return v.trim().trim_end_matches("kB").trim().parse().unwrap();
                }
            }
        }
        panic!("no smaps record at {addr:#x}");
    }

    /// Reading a memfd through its fd shows what the file holds at pages the mapping shows absent
    /// (written then DONTNEED: the data; a hole, REMOVE, shrink+regrow: zero; past EOF: nothing), and
    /// changes neither the mapping's pagemap entries, nor its Rss, nor the file's allocated blocks.
    #[test]
    fn reading_absent_memfd_pages_through_the_fd_changes_nothing() {
        let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let n = 4;
        // SAFETY: plain syscalls on a memfd and a mapping this test owns and releases.
        unsafe {
            let fd = libc::memfd_create(c"absent".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, (n * ps) as libc::off_t), 0);
            let m = libc::mmap(std::ptr::null_mut(), n * ps, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            assert_ne!(m, libc::MAP_FAILED);
            let m = m as *mut u8;
            std::ptr::write_bytes(m, 0x5a, ps);
            assert_eq!(libc::madvise(m.cast(), ps, libc::MADV_DONTNEED), 0);
            std::ptr::write_bytes(m.add(2 * ps), 0x77, ps);
            assert_eq!(libc::madvise(m.add(2 * ps).cast(), ps, libc::MADV_REMOVE), 0);
            std::ptr::write_bytes(m.add(3 * ps), 0x33, ps);
            assert_eq!(libc::madvise(m.add(3 * ps).cast(), ps, libc::MADV_DONTNEED), 0);
            let blocks = |fd| {
                let mut st: libc::stat = std::mem::zeroed();
                assert_eq!(libc::fstat(fd, &mut st), 0);
                st.st_blocks
            };
            let absent = |p: usize| pagemap_entry(m as usize + p * ps) & (3 << 62) == 0;
            assert!((0..n).all(absent));
            let (rss0, blk0) = (rss_kb(m as usize), blocks(fd));
            let mut c = Classifier::new();
            let mut buf = Vec::new();
            let got = c.read_through_file(fd, 0, n + 1, ps, &mut buf).unwrap();
            let fill = |b| FileContent::Content(Content::Fill(b));
            let zero = FileContent::Content(Content::Zero);
            assert_eq!(got, vec![fill(0x5a), zero, zero, fill(0x33), FileContent::PastEof]);
            assert!((0..n).all(absent), "a read through the fd changed residency");
            assert_eq!((rss_kb(m as usize), blocks(fd)), (rss0, blk0), "a read through the fd changed Rss or allocated");
            // Shrink to 2 pages: page 1 (a hole) reads zero, page 2 is past EOF; regrow: page 3 reads zero.
            assert_eq!(libc::ftruncate(fd, (2 * ps) as libc::off_t), 0);
            assert_eq!(c.read_through_file(fd, 1, 2, ps, &mut buf).unwrap(), vec![zero, FileContent::PastEof]);
            assert_eq!(libc::ftruncate(fd, (n * ps) as libc::off_t), 0);
            assert_eq!(c.read_through_file(fd, 3, 1, ps, &mut buf).unwrap(), vec![zero]);
            assert!((0..n).all(absent));
            assert_eq!(c.read_through_file(-1, 0, 2, ps, &mut buf).unwrap(), vec![FileContent::Unknown; 2]);
            libc::munmap(m.cast(), n * ps);
            libc::close(fd);
        }
    }

    #[test]
    fn fast_classifier_agrees_with_simulator() {
        let ps = 4096;
        let mut c = Classifier::new();
        let mut cases: Vec<Vec<u8>> = vec![vec![0; ps], vec![7; ps], vec![255; ps]];
        for f in 0..3 {
            for p in [0u32, 1, 5, 300] {
                cases.push(file_page(f, p, ps));
                let mut m = file_page(f, p, ps);
                m[ps - 1] ^= 0x40;
                cases.push(m);
                let mut m = file_page(f, p, ps);
                m[100] = 0;
                cases.push(m);
                // A header naming another page than the pattern.
                let mut m = file_page(f, p, ps);
                m[12] = m[12].wrapping_add(1);
                cases.push(m);
            }
        }
        let mut almost = vec![9u8; ps];
        almost[ps - 1] = 8;
        cases.push(almost);
        let mut almost = vec![0u8; ps];
        almost[63] = 1;
        cases.push(almost);
        let mut magic_only = vec![0u8; ps];
        magic_only[..8].copy_from_slice(FILE_MAGIC);
        cases.push(magic_only);
        cases.push(file_page(1, 2, 100)); // a length that is not a multiple of 64
        for b in &cases {
            assert_eq!(c.classify(b), reference(b));
            // Twice, so the cached path is compared too.
            assert_eq!(c.classify(b), reference(b));
        }
    }

    #[test]
    fn smaps_parser_reads_fields() {
        let text = b"0ffff000-10000000 rw-p 00000000 00:00 0 \n\
Rss:                   4 kB\n\
VmFlags: rd wr mr mw me ac \n\
10000000-10003000 rw-s 00002000 fd:01 1234                       /tmp/x (deleted)\n\
Size:                 12 kB\n\
Rss:                   8 kB\n\
Anonymous:             4 kB\n\
Locked:                0 kB\n\
VmFlags: rd wr sh mr mw me ms rr \n\
10003000-10004000 rw-s 00000000 00:01 77                         /dev/zero (deleted)\n\
VmFlags: rd \n\
10004000-10005000 rw-p 00000000 00:00 0 \n\
VmFlags: rd \n";
        let files = [FileIdent { major: 0xfd, minor: 1, ino: 1234 }];
        let mut p = SmapsParser {
            lo: 0x1000_0000,
            hi: 0x1000_4000,
            ps: 4096,
            base: 0x1000_0000,
            files: &files,
            out: vec![],
            cur: None,
        };
        let mut stopped = false;
        for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if p.line(l).unwrap() {
                stopped = true;
                break;
            }
        }
        p.finish();
        assert!(stopped);
        assert_eq!(p.out.len(), 2);
        let v = &p.out[0];
        assert_eq!((v.start, v.end, v.perms.as_str(), v.offset, v.backing), (0, 3, "rw-s", 2, VmaBacking::File(0)));
        assert_eq!((v.rss, v.anon, v.lazyfree, v.locked), (2, 1, 0, 0));
        assert_eq!(v.flags.join(" "), "rd wr sh mr mw me ms rr");
        assert_eq!(p.out[1].backing, VmaBacking::Shmem);
        // A VmFlags token that is not two characters is a malformed line, not a flag.
        let mut v = p.out[1].clone();
        assert_eq!(field(&mut v, b"VmFlags:", b" rd ?? ac", 4096), Some(()));
        assert_eq!(v.flags.join(" "), "rd ?? ac");
        assert_eq!(field(&mut v, b"VmFlags:", b" rd wrx ac", 4096), None);
        assert_eq!(field(&mut v, b"VmFlags:", b" rd w ac", 4096), None);
    }
}

/// The whole of a /proc file kept open in `fd` (opened on first use), read from its start into `buf`.
fn reread<'b>(fd: &mut Option<Fd>, path: &std::ffi::CStr, buf: &'b mut Vec<u8>) -> Result<&'b str, String> {
    let f = match fd {
        Some(f) => f,
        None => fd.insert(Fd::open(path, libc::O_RDONLY)?),
    };
    // SAFETY: lseek on an fd we own.
    if unsafe { libc::lseek(f.0, 0, libc::SEEK_SET) } < 0 {
        return Err(format!("lseek {}: {}", path.to_string_lossy(), sys::strerror(sys::errno())));
    }
    buf.clear();
    loop {
        let len = buf.len();
        buf.resize(len + 4096, 0);
        let n = sys::read_some(f.0, &mut buf[len..]).map_err(|e| format!("read {}: {}", path.to_string_lossy(), sys::strerror(e)))?;
        buf.truncate(len + n);
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(buf).map_err(|e| format!("{}: {e}", path.to_string_lossy()))
}

/// `VmLck` of a /proc/<pid>/status text (mm->locked_vm), in kB.
pub fn parse_vm_lck(status: &str) -> Result<u64, String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no parsable VmLck line in /proc/self/status".to_string())
}
