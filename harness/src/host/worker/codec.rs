//! The binary encoding of `Frame` (worker → runner, fork and live child → worker). serde_json of an
//! observation spelled every page out as `{"res":"Present","content":{"Fill":3}}`, and encoding it in the
//! worker and decoding it in the runner was 11% of a run's CPU (perf of `madcheck run --generate 2000
//! --seed 1`); this writes the same values in a few bytes each and reads them back exactly.
//!
//! Invariant: `decode(encode(f)) == f` for every frame, and every field of `Observation` and its parts is
//! written. Encoding destructures each struct completely, so a field added to `Observation`, `VmaObs`,
//! `PageObs`, `HugeDelta` or `StepId` (or a variant added to one of their enums) fails to compile here
//! until it is encoded and decoded too. Decoding refuses trailing bytes, short input and unknown tags.
//!
//! Layout (little-endian, no padding): a frame is a tag byte, 0 = `Point`, 1 = `Done`.
//! - `Point`: step u32, child (u8 0/1 + u32), grandchild (u8 0/1 + u32), then the observation: ret, vmas (u32 count), pages (u32
//!   count), hugetlb (u8 0/1 + 3 × i64), locked_vm (u8 0/1 + u64).
//! - ret: u8 0 Ok | 1 Err + errno | 2 Signal + signal | 3 Bytes + u64; errno and signal are a u8 index
//!   of the named variant, or 255 + i32 for `Other`.
//! - vma: start i64, end i64, perms (str), offset u64, backing (u8 0 Anon | 1 Shmem | 2 File + u32 |
//!   3 Hugetlb | 4 Foreign), flags (u32 count of str), rss, anon, lazyfree, locked, hugetlb_shared,
//!   hugetlb_private, anon_huge (u64 each). A str is a u32 length and its UTF-8 bytes.
//! - page: one byte `res | content << 2` (res 0 Absent, 1 Present, 2 ZeroPage, 3 Swap; content 0 none,
//!   1 Zero, 2 Fill + u8, 3 FilePage + u32 file + u32 page, 4 Hash + u64).
//! - `Done`: poisoned (u8 0/1 + str), error (u8 0/1 + str), exiting u8.

use super::protocol::Frame;
use simulator::observe::{Content, Errno, HugeDelta, Observation, PageObs, Residency, Ret, Signal, VmFlag, VmaBacking, VmaObs};
use simulator::program::StepId;

/// `frame` as a length-prefixed frame (u32 little-endian body length, then the body).
pub fn encode_framed(frame: &Frame) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    encode_into(frame, &mut out);
    let len = u32::try_from(out.len() - 4).map_err(|_| "frame too large".to_string())?;
    out[..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// Append the body of `frame` to `out`.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    let mut w = W(out);
    match frame {
        Frame::Point { id, obs } => {
            w.u8(0);
            let StepId { step, child, grandchild } = *id;
            w.u32(step);
            w.opt(child, |w, c| w.u32(c));
            w.opt(grandchild, |w, c| w.u32(c));
            w.obs(obs);
        }
        Frame::Done { poisoned, error, exiting } => {
            w.u8(1);
            w.opt(poisoned.as_deref(), |w, s| w.str(s));
            w.opt(error.as_deref(), |w, s| w.str(s));
            w.u8(*exiting as u8);
        }
    }
}

/// The frame in `body` (without its length prefix).
pub fn decode(body: &[u8]) -> Result<Frame, String> {
    let mut r = R { b: body, pos: 0 };
    let f = match r.u8()? {
        0 => {
            let step = r.u32()?;
            let child = r.opt(|r| r.u32())?;
            let grandchild = r.opt(|r| r.u32())?;
            Frame::Point { id: StepId { step, child, grandchild }, obs: r.obs()? }
        }
        1 => {
            let poisoned = r.opt(|r| r.string())?;
            let error = r.opt(|r| r.string())?;
            let exiting = r.bool()?;
            Frame::Done { poisoned, error, exiting }
        }
        t => return Err(format!("unknown frame tag {t}")),
    };
    if r.pos != body.len() {
        return Err(format!("{} trailing bytes after a frame of {}", body.len() - r.pos, r.pos));
    }
    Ok(f)
}

struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x)
            }
        }
    }

    fn obs(&mut self, o: &Observation) {
        let Observation { ret, vmas, pages, hugetlb, locked_vm } = o;
        self.ret(*ret);
        self.u32(vmas.len() as u32);
        for v in vmas {
            self.vma(v);
        }
        self.u32(pages.len() as u32);
        for p in pages {
            self.page(*p);
        }
        self.opt(*hugetlb, |w, h| {
            let HugeDelta { free, rsvd, surp } = h;
            w.i64(free);
            w.i64(rsvd);
            w.i64(surp);
        });
        self.opt(*locked_vm, |w, n| w.u64(n));
    }

    fn ret(&mut self, r: Ret) {
        match r {
            Ret::Ok => self.u8(0),
            Ret::Err(e) => {
                self.u8(1);
                match e {
                    Errno::Other(n) => {
                        self.u8(255);
                        self.i32(n)
                    }
                    named => self.u8(errno_index(named)),
                }
            }
            Ret::Signal(s) => {
                self.u8(2);
                match s {
                    Signal::Other(n) => {
                        self.u8(255);
                        self.i32(n)
                    }
                    named => self.u8(signal_index(named)),
                }
            }
            Ret::Bytes(n) => {
                self.u8(3);
                self.u64(n)
            }
            Ret::Key(k) => {
                self.u8(4);
                self.u32(k)
            }
        }
    }

    fn vma(&mut self, v: &VmaObs) {
        let VmaObs { start, end, perms, offset, backing, flags, rss, anon, lazyfree, locked, hugetlb_shared, hugetlb_private, anon_huge, swap, pkey } =
            v;
        self.i64(*start);
        self.i64(*end);
        self.str(perms);
        self.u64(*offset);
        match backing {
            VmaBacking::Anon => self.u8(0),
            VmaBacking::Shmem => self.u8(1),
            VmaBacking::File(i) => {
                self.u8(2);
                self.u32(*i)
            }
            VmaBacking::Hugetlb => self.u8(3),
            VmaBacking::Foreign => self.u8(4),
        }
        self.u32(flags.len() as u32);
        for f in flags {
            self.str(f.as_str());
        }
        for n in [rss, anon, lazyfree, locked, hugetlb_shared, hugetlb_private, anon_huge, swap] {
            self.u64(*n);
        }
        self.opt(*pkey, |w, k| w.u32(k));
    }

    fn page(&mut self, p: PageObs) {
        let PageObs { res, content } = p;
        let res = match res {
            Residency::Absent => 0,
            Residency::Present => 1,
            Residency::ZeroPage => 2,
            Residency::Swap => 3,
        };
        match content {
            None => self.u8(res),
            Some(Content::Zero) => self.u8(res | 1 << 2),
            Some(Content::Fill(b)) => {
                self.u8(res | 2 << 2);
                self.u8(b)
            }
            Some(Content::FilePage { file, page }) => {
                self.u8(res | 3 << 2);
                self.u32(file);
                self.u32(page)
            }
            Some(Content::Hash(h)) => {
                self.u8(res | 4 << 2);
                self.u64(h)
            }
        }
    }
}

/// The named errnos in wire order (index = byte); `Errno::Other` is 255.
const ERRNOS: [Errno; 16] = [
    Errno::EPERM,
    Errno::ESRCH,
    Errno::EINTR,
    Errno::EIO,
    Errno::EBADF,
    Errno::EAGAIN,
    Errno::ENOMEM,
    Errno::EACCES,
    Errno::EFAULT,
    Errno::EBUSY,
    Errno::EEXIST,
    Errno::EINVAL,
    Errno::ENOSPC,
    Errno::ENOSYS,
    Errno::EOPNOTSUPP,
    Errno::EHWPOISON,
];

fn errno_index(e: Errno) -> u8 {
    // An exhaustive match, so a new named errno fails to compile until it is in `ERRNOS`.
    match e {
        Errno::EPERM
        | Errno::ESRCH
        | Errno::EINTR
        | Errno::EIO
        | Errno::EBADF
        | Errno::EAGAIN
        | Errno::ENOMEM
        | Errno::EACCES
        | Errno::EFAULT
        | Errno::EBUSY
        | Errno::EEXIST
        | Errno::EINVAL
        | Errno::ENOSPC
        | Errno::ENOSYS
        | Errno::EOPNOTSUPP
        | Errno::EHWPOISON => ERRNOS.iter().position(|&x| x == e).map_or(254, |i| i as u8),
        Errno::Other(_) => 255,
    }
}

const SIGNALS: [Signal; 5] = [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGABRT, Signal::SIGKILL, Signal::SIGILL];

fn signal_index(s: Signal) -> u8 {
    match s {
        Signal::SIGSEGV | Signal::SIGBUS | Signal::SIGABRT | Signal::SIGKILL | Signal::SIGILL => {
            SIGNALS.iter().position(|&x| x == s).map_or(254, |i| i as u8)
        }
        Signal::Other(_) => 255,
    }
}

struct R<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            format!("frame ends after {} bytes, {n} more needed at offset {}", self.b.len(), self.pos)
        })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("bad boolean byte {b} at offset {}", self.pos - 1)),
        }
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    /// A str's bytes (u32 length, then the bytes), borrowed from the frame.
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let at = self.pos;
        let s = self.take(n)?;
        std::str::from_utf8(s).map(str::to_owned).map_err(|e| format!("string at offset {at}: {e}"))
    }
    /// A count of items that take at least `min` bytes each: checked against what is left, so a corrupt
    /// count cannot make a huge allocation.
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() - self.pos {
            return Err(format!("count {n} at offset {} exceeds the frame", self.pos - 4));
        }
        Ok(n)
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<Option<T>, String> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    fn obs(&mut self) -> Result<Observation, String> {
        let ret = self.ret()?;
        let n = self.count(8 + 8 + 4 + 8 + 1 + 4 + 7 * 8)?;
        let mut vmas = Vec::with_capacity(n);
        for _ in 0..n {
            vmas.push(self.vma()?);
        }
        let n = self.count(1)?;
        let mut pages = Vec::with_capacity(n);
        for _ in 0..n {
            pages.push(self.page()?);
        }
        let hugetlb = self.opt(|r| Ok(HugeDelta { free: r.i64()?, rsvd: r.i64()?, surp: r.i64()? }))?;
        let locked_vm = self.opt(|r| r.u64())?;
        Ok(Observation { ret, vmas, pages, hugetlb, locked_vm })
    }

    fn ret(&mut self) -> Result<Ret, String> {
        Ok(match self.u8()? {
            0 => Ret::Ok,
            1 => Ret::Err(match self.u8()? {
                255 => Errno::Other(self.i32()?),
                i => *ERRNOS.get(i as usize).ok_or_else(|| format!("unknown errno index {i}"))?,
            }),
            2 => Ret::Signal(match self.u8()? {
                255 => Signal::Other(self.i32()?),
                i => *SIGNALS.get(i as usize).ok_or_else(|| format!("unknown signal index {i}"))?,
            }),
            3 => Ret::Bytes(self.u64()?),
            4 => Ret::Key(self.u32()?),
            t => return Err(format!("unknown ret tag {t}")),
        })
    }

    fn vma(&mut self) -> Result<VmaObs, String> {
        let start = self.i64()?;
        let end = self.i64()?;
        let perms = self.string()?;
        let offset = self.u64()?;
        let backing = match self.u8()? {
            0 => VmaBacking::Anon,
            1 => VmaBacking::Shmem,
            2 => VmaBacking::File(self.u32()?),
            3 => VmaBacking::Hugetlb,
            4 => VmaBacking::Foreign,
            t => return Err(format!("unknown backing tag {t}")),
        };
        let n = self.count(4)?;
        let mut flags = Vec::with_capacity(n);
        for _ in 0..n {
            let b = self.bytes()?;
            flags.push(VmFlag::parse(b).ok_or_else(|| format!("VmFlags mnemonic {:?} is not two printable characters", String::from_utf8_lossy(b)))?);
        }
        Ok(VmaObs {
            start,
            end,
            perms,
            offset,
            backing,
            flags,
            rss: self.u64()?,
            anon: self.u64()?,
            lazyfree: self.u64()?,
            locked: self.u64()?,
            hugetlb_shared: self.u64()?,
            hugetlb_private: self.u64()?,
            anon_huge: self.u64()?,
            swap: self.u64()?,
            pkey: self.opt(|r| r.u32())?,
        })
    }

    fn page(&mut self) -> Result<PageObs, String> {
        let b = self.u8()?;
        let res = match b & 3 {
            0 => Residency::Absent,
            1 => Residency::Present,
            2 => Residency::ZeroPage,
            _ => Residency::Swap,
        };
        let content = match b >> 2 {
            0 => None,
            1 => Some(Content::Zero),
            2 => Some(Content::Fill(self.u8()?)),
            3 => Some(Content::FilePage { file: self.u32()?, page: self.u32()? }),
            4 => Some(Content::Hash(self.u64()?)),
            t => return Err(format!("unknown content tag {t} at offset {}", self.pos - 1)),
        };
        Ok(PageObs { res, content })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(backing: VmaBacking, flags: &[&str], n: u64) -> VmaObs {
        VmaObs {
            start: -3 + n as i64,
            end: 1 << 40,
            perms: "rw-p".into(),
            offset: u64::MAX - n,
            backing,
            flags: flags.iter().map(|s| VmFlag::named(s)).collect(),
            rss: n,
            anon: n + 1,
            lazyfree: n + 2,
            locked: n + 3,
            hugetlb_shared: n + 4,
            hugetlb_private: n + 5,
            anon_huge: n + 6,
            swap: n + 7,
            pkey: (n % 2 == 1).then_some(n as u32 % 16),
        }
    }

    /// Every variant of every enum in a frame, and every field set to something other than its default.
    fn frames() -> Vec<Frame> {
        let rets: Vec<Ret> = ERRNOS
            .iter()
            .map(|&e| Ret::Err(e))
            .chain([Ret::Err(Errno::Other(-7)), Ret::Err(Errno::Other(4095))])
            .chain(SIGNALS.iter().map(|&s| Ret::Signal(s)))
            .chain([Ret::Signal(Signal::Other(31)), Ret::Ok, Ret::Bytes(0), Ret::Bytes(u64::MAX), Ret::Key(0), Ret::Key(15)])
            .collect();
        let contents = [None, Some(Content::Zero), Some(Content::Fill(0xff)), Some(Content::FilePage { file: 3, page: 1 << 31 }), Some(Content::Hash(0x0123_4567_89ab_cdef))];
        let mut pages = Vec::new();
        for res in [Residency::Absent, Residency::Present, Residency::ZeroPage, Residency::Swap] {
            for c in contents {
                pages.push(PageObs { res, content: c });
            }
        }
        let vmas = vec![
            vma(VmaBacking::Anon, &["rd", "wr", "mr", "mw", "me", "ac"], 0),
            vma(VmaBacking::Shmem, &[], 1),
            vma(VmaBacking::File(7), &["sd"], 2),
            vma(VmaBacking::Hugetlb, &["ht", "dd"], 3),
            vma(VmaBacking::Foreign, &["??"], 4),
        ];
        let mut out = Vec::new();
        for (i, ret) in rets.into_iter().enumerate() {
            let obs = Observation {
                ret,
                vmas: if i % 2 == 0 { vmas.clone() } else { vec![] },
                pages: if i % 3 == 0 { pages.clone() } else { vec![PageObs::ABSENT] },
                hugetlb: (i % 2 == 1).then_some(HugeDelta { free: -1, rsvd: 2, surp: i64::MIN }),
                locked_vm: (i % 4 == 1).then_some(512),
            };
            out.push(Frame::Point { id: StepId { step: i as u32, child: (i % 3 == 1).then_some(i as u32 * 7), grandchild: (i % 6 == 1).then_some(i as u32 * 3) }, obs });
        }
        out.push(Frame::Done { poisoned: None, error: None, exiting: false });
        out.push(Frame::Done { poisoned: Some("reclaim by someone else".into()), error: Some(String::new()), exiting: true });
        out
    }

    fn same(a: &Frame, b: &Frame) -> bool {
        // Frame has no PartialEq; its JSON is a faithful rendering of every field.
        serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
    }

    #[test]
    fn every_variant_round_trips() {
        for f in frames() {
            let framed = encode_framed(&f).unwrap();
            let len = u32::from_le_bytes(framed[..4].try_into().unwrap()) as usize;
            assert_eq!(len, framed.len() - 4);
            let back = decode(&framed[4..]).unwrap();
            assert!(same(&f, &back), "{f:?} came back as {back:?}");
        }
    }

    #[test]
    fn corrupt_frames_are_errors_not_panics() {
        for f in frames() {
            let framed = encode_framed(&f).unwrap();
            let body = &framed[4..];
            for cut in 0..body.len() {
                assert!(decode(&body[..cut]).is_err(), "a frame cut at {cut} of {} decoded", body.len());
            }
            let mut long = body.to_vec();
            long.push(0);
            assert!(decode(&long).unwrap_err().contains("trailing"));
        }
        assert!(decode(&[9]).unwrap_err().contains("frame tag"));
        // A page byte with an unknown content tag, and a count larger than the frame.
        assert!(decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5 << 2, 0, 0]).unwrap_err().contains("content tag"));
        assert!(decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap_err().contains("exceeds"));
        // A VmFlags mnemonic that is not two printable characters (the kernel prints only those).
        let f = &frames()[0];
        let body = encode_framed(f).unwrap()[4..].to_vec();
        let at = body.windows(6).position(|w| w == [2, 0, 0, 0, b'r', b'd']).expect("the rd flag is encoded");
        for bad in [&b"r"[..], b"rdx", "ü".as_bytes(), b"r "] {
            let mut b = body[..at].to_vec();
            b.extend_from_slice(&(bad.len() as u32).to_le_bytes());
            b.extend_from_slice(bad);
            b.extend_from_slice(&body[at + 6..]);
            assert!(decode(&b).unwrap_err().contains("VmFlags mnemonic"), "{bad:?}");
        }
    }

    #[test]
    fn an_observation_is_smaller_than_its_json() {
        let f = &frames()[0];
        let bin = encode_framed(f).unwrap().len();
        let json = serde_json::to_vec(f).unwrap().len();
        assert!(bin * 2 < json, "binary {bin} bytes, JSON {json} bytes");
    }
}
