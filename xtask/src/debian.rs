//! Debian kernels from a private apt configuration: every suite that carries kernels (bookworm,
//! bookworm-updates, -security, -backports; trixie, trixie-updates, -security, -backports; sid), listed,
//! resolved by name at run time, downloaded and unpacked into something qemu can boot.
//!
//! Invariant: the system's apt configuration is never touched. The sources list, lists, caches and
//! preferences live under `target/apt/` and every apt call gets them as `-o Dir::...` options; the
//! kernel lists (all suites, the architectures asked for so far) and the host's tool lists (the host's own
//! release and its backports, host architecture only, so installing qemu never pulls packages from
//! trixie or sid) are two separate configurations. A kernel is only ever listed from the Packages
//! indices themselves (`apt-cache madison`), so every entry is downloadable: the pool keeps every file a
//! current index names.
//!
//! API for other commands (qemu, matrix, bisect): [`kernels`] lists a series oldest → newest,
//! [`resolve`] turns `--kernel` words into one package, [`bootable`] downloads and unpacks it.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// One kernel package of one suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPkg {
    /// The package holding (or, for the split layout, naming) the image: `linux-image-6.12.43+deb12-amd64`,
    /// `linux-image-6.1.0-56-amd64-unsigned`, `linux-image-7.2.13+deb14-arm64-16k`.
    pub name: String,
    /// The Debian version: `6.12.43-1~bpo12+1`.
    pub version: String,
    /// The upstream release: `6.12.43`.
    pub release: String,
    /// The ABI part of the name: `6.12.43+deb12`, `6.1.0-56`.
    pub abi: String,
    /// The suite whose index lists it: `bookworm-backports` (the first of several).
    pub suite: String,
    /// Debian architecture: amd64, arm64, ppc64el, s390x, riscv64, armhf.
    pub arch: String,
    /// Kernel flavour: amd64, arm64, arm64-16k, powerpc64le, powerpc64le-64k, s390x, riscv64, armmp, armmp-lpae.
    pub flavour: String,
}

impl KernelPkg {
    /// `uname -r` of the kernel: `6.12.43+deb12-amd64`, `6.1.0-56-arm64`.
    pub fn uname(&self) -> String {
        format!("{}-{}", self.abi, self.flavour)
    }
}

/// A kernel unpacked on disk.
#[derive(Clone, Debug)]
pub struct Bootable {
    pub root: PathBuf,
    /// The image as packaged (bzImage, arm64 Image, ...).
    pub vmlinuz: PathBuf,
    pub config: Option<PathBuf>,
    /// `<root>/.../lib/modules/<uname>` with a modules.dep made by depmod.
    pub moddir: Option<PathBuf>,
    pub uname: String,
}

/// Debian architecture of a Rust/uname architecture name (and Debian names as themselves).
pub fn deb_arch(arch: &str) -> Result<&'static str, String> {
    Ok(match arch {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "powerpc64le" | "ppc64le" | "ppc64el" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "armhf" | "arm" | "armv7" | "armv7l" => "armhf",
        other => return Err(format!("architecture {other:?}: not one of x86_64, aarch64, powerpc64le, s390x, riscv64, armhf")),
    })
}

/// The flavours Debian builds for an architecture, the default (4K-page or generic) one first.
pub fn flavours(deb_arch: &str) -> &'static [&'static str] {
    match deb_arch {
        "amd64" => &["amd64"],
        "arm64" => &["arm64", "arm64-16k"],
        "ppc64el" => &["powerpc64le", "powerpc64le-64k"],
        "s390x" => &["s390x"],
        "riscv64" => &["riscv64"],
        "armhf" => &["armmp", "armmp-lpae"],
        _ => &[],
    }
}

fn apt_dir() -> PathBuf {
    crate::util::target_dir().join("apt")
}

/// The machine's Debian mirrors (from its own sources, so a local mirror keeps being used), else
/// deb.debian.org.
fn mirrors() -> (String, String) {
    let mut main = "http://deb.debian.org/debian".to_string();
    let mut security = "http://deb.debian.org/debian-security".to_string();
    let mut text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    text += &std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for l in text.lines() {
        let l = l.trim();
        let uri = if let Some(u) = l.strip_prefix("URIs:") {
            u.split_whitespace().next()
        } else if l.starts_with("deb ") {
            l.split_whitespace().skip(1).find(|w| w.starts_with("http"))
        } else {
            None
        };
        if let Some(u) = uri {
            let u = u.trim_end_matches('/').to_string();
            if u.ends_with("-security") {
                security = u;
            } else if u.ends_with("/debian") {
                main = u;
            }
        }
    }
    (main, security)
}

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The suites with kernels; security suites come from the security mirror.
pub const KERNEL_SUITES: &[&str] = &[
    "bookworm",
    "bookworm-updates",
    "bookworm-security",
    "bookworm-backports",
    "trixie",
    "trixie-updates",
    "trixie-security",
    "trixie-backports",
    "sid",
];

/// One private apt configuration: its directory under target/apt and the architectures of its lists.
struct Config {
    dir: PathBuf,
    suites: Vec<String>,
    arches: Vec<String>,
}

impl Config {
    fn kernels(arches: &[&str]) -> Config {
        let mut a: Vec<String> = arches.iter().map(|s| s.to_string()).collect();
        // Keep what earlier runs asked for, so alternating --arch does not refetch the lists every time.
        let known = std::fs::read_to_string(apt_dir().join("kernels/architectures")).unwrap_or_default();
        a.extend(known.split_whitespace().map(String::from));
        a.sort();
        a.dedup();
        Config { dir: apt_dir().join("kernels"), suites: KERNEL_SUITES.iter().map(|s| s.to_string()).collect(), arches: a }
    }

    /// The host's own release and its backports, host architecture only (for installing qemu and tools).
    fn host() -> Config {
        let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let code = os
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
            .map(|s| s.trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "bookworm".into());
        let arch = Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "amd64".into());
        let suites = ["", "-updates", "-security", "-backports"].iter().map(|s| format!("{code}{s}")).collect();
        Config { dir: apt_dir().join("host"), suites, arches: vec![arch] }
    }

    fn sources(&self) -> String {
        let (main, security) = mirrors();
        let mut s = String::new();
        for suite in &self.suites {
            let uri = if suite.ends_with("-security") { &security } else { &main };
            s += &format!("deb [signed-by={KEYRING}] {uri} {suite} main\n");
        }
        s
    }

    /// The `-o` options that point apt at this configuration only.
    fn options(&self) -> Vec<String> {
        let d = &self.dir;
        let p = |s: &str| d.join(s).display().to_string();
        let mut o = vec![
            format!("Dir::Etc::sourcelist={}", p("sources.list")),
            format!("Dir::Etc::sourceparts={}", p("sources.list.d")),
            format!("Dir::Etc::preferences={}", p("preferences")),
            format!("Dir::Etc::preferencesparts={}", p("preferences.d")),
            format!("Dir::State::Lists={}", p("lists")),
            format!("Dir::Cache={}", p("cache")),
            format!("APT::Architectures={}", self.arches.join(",")),
            "Acquire::Languages=none".into(),
            // Only Packages indices: no AppStream metadata, icons or Contents.
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false".into(),
            "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false".into(),
            // The private directories belong to root; the _apt sandbox user could not write downloads there.
            "APT::Sandbox::User=root".into(),
            "DPkg::Lock::Timeout=600".into(),
        ];
        o = o.into_iter().flat_map(|x| ["-o".to_string(), x]).collect();
        o
    }

    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("DEBIAN_FRONTEND", "noninteractive").args(self.options());
        c
    }

    /// Write the configuration and run `apt-get update` when the lists are missing, older than `max_age`,
    /// or were fetched for other architectures (or `force`).
    fn update(&self, max_age: Duration, force: bool) -> Result<(), String> {
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"] {
            let p = self.dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
        }
        let sources = self.sources();
        let list = self.dir.join("sources.list");
        let stamp = self.dir.join("updated");
        let want_stamp = format!("{}\n{}", self.arches.join(" "), sources);
        let fresh = std::fs::read_to_string(&stamp).ok().as_deref() == Some(want_stamp.as_str())
            && std::fs::metadata(&stamp)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age < max_age);
        if fresh && !force {
            return Ok(());
        }
        std::fs::write(&list, &sources).map_err(|e| format!("write {}: {e}", list.display()))?;
        std::fs::write(self.dir.join("preferences"), "").map_err(|e| format!("write preferences: {e}"))?;
        eprintln!("xtask: apt-get update ({}; {}) into {}", self.suites.join(" "), self.arches.join(","), self.dir.display());
        let mut c = self.command("apt-get");
        c.args(["-q", "update"]).stdout(Stdio::null());
        run_ok(c)?;
        std::fs::write(&stamp, want_stamp).map_err(|e| format!("write {}: {e}", stamp.display()))?;
        std::fs::write(self.dir.join("architectures"), self.arches.join(" ")).map_err(|e| format!("write architectures: {e}"))
    }
}

fn run_ok(mut c: Command) -> Result<(), String> {
    let shown = format!("{:?}", c.get_program());
    let st = c.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !st.success() {
        return Err(format!("{shown} {:?} failed ({st})", c.get_args().filter(|a| *a != "-o").last()));
    }
    Ok(())
}

fn output(mut c: Command) -> Result<String, String> {
    let shown = format!("{:?}", c.get_program());
    let o = c.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !o.status.success() {
        return Err(format!("{shown} failed ({})", o.status));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// How old the kernel lists may be before a command refreshes them.
const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// Refresh the kernel lists for these Debian architectures (`force`: even when fresh).
pub fn update(deb_arches: &[&str], force: bool) -> Result<(), String> {
    Config::kernels(deb_arches).update(MAX_AGE, force)
}

/// Install host packages (qemu, tools) from the host's release; `backports`: prefer its backports suite
/// (`-t <release>-backports`), as qemu must be (the image's preinstalled backports qemu-utils breaks
/// bookworm's qemu).
pub fn install(pkgs: &[&str], backports: bool) -> Result<(), String> {
    let cfg = Config::host();
    cfg.update(MAX_AGE, false)?;
    eprintln!("xtask: installing {}", pkgs.join(" "));
    let mut c = cfg.command("apt-get");
    c.args(["-q", "install", "-y", "--no-install-recommends"]);
    if backports {
        c.args(["-t", &cfg.suites[3]]);
    }
    c.args(pkgs);
    run_ok(c)
}

/// Debian version order (dpkg's algorithm: epoch, then upstream and revision compared as alternating
/// non-digit runs, where `~` sorts before everything, letters before other characters, and digit runs
/// numerically).
pub fn deb_version_cmp(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rfind('-') {
            Some(i) => (epoch, &rest[..i], &rest[i + 1..]),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    fn part(a: &str, b: &str) -> Ordering {
        let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
        while !a.is_empty() || !b.is_empty() {
            loop {
                let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
                let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
                if ca.is_none() && cb.is_none() {
                    break;
                }
                let o = order(ca).cmp(&order(cb));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[1..];
                b = &b[1..];
            }
            let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
            let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
            let na: u128 = std::str::from_utf8(&a[..da]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            let nb: u128 = std::str::from_utf8(&b[..db]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            if na != nb {
                return na.cmp(&nb);
            }
            a = &a[da..];
            b = &b[db..];
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| part(ua, ub)).then_with(|| part(ra, rb))
}

/// The numbers of a release: `6.12.43` → [6, 12, 43].
fn nums(release: &str) -> Vec<u64> {
    release.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Oldest → newest: upstream release, then Debian version, then name (unsigned after signed).
pub fn pkg_cmp(a: &KernelPkg, b: &KernelPkg) -> Ordering {
    nums(&a.release)
        .cmp(&nums(&b.release))
        .then_with(|| deb_version_cmp(&a.version, &b.version))
        .then_with(|| a.name.cmp(&b.name))
}

/// `linux-image-<abi>-<flavour>[-unsigned]` → (abi, flavour), for the flavours this project boots; None
/// for metapackages (`linux-image-amd64`, `linux-image-6.12-amd64`), debug, rt and cloud images.
pub fn parse_name(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix("linux-image-")?;
    let rest = rest.strip_suffix("-unsigned").unwrap_or(rest);
    let mut parts = rest.splitn(2, '-');
    let mut abi = parts.next()?.to_string();
    let mut tail = parts.next()?.to_string();
    // 6.1's ABI is `6.1.0-56`: the number after the first dash belongs to it.
    if let Some((n, t)) = tail.split_once('-') {
        if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
            abi = format!("{abi}-{n}");
            tail = t.to_string();
        }
    }
    if abi.split(['+', '-']).next()?.split('.').count() != 3 || !abi.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let all: Vec<&str> = ["amd64", "arm64", "ppc64el", "s390x", "riscv64", "armhf"].iter().flat_map(|a| flavours(a).iter().copied()).collect();
    all.contains(&tail.as_str()).then_some((abi, tail))
}

/// Parse `apt-cache madison` lines into packages (one per name, version and arch; the first suite).
pub fn parse_madison(text: &str) -> Vec<KernelPkg> {
    let mut out: Vec<KernelPkg> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        if f.len() < 3 {
            continue;
        }
        let name = f[0].split(':').next().unwrap_or(f[0]).to_string();
        let Some((abi, flavour)) = parse_name(&name) else { continue };
        // `http://deb.debian.org/debian bookworm-backports/main amd64 Packages`
        let w: Vec<&str> = f[2].split_whitespace().collect();
        if w.len() < 4 || w[3] != "Packages" {
            continue;
        }
        let suite = w[1].split('/').next().unwrap_or(w[1]).to_string();
        let arch = w[2].to_string();
        let version = f[1].to_string();
        if out.iter().any(|k| k.name == name && k.version == version && k.arch == arch) {
            continue;
        }
        let release = version.split(['-', '~', '+']).next().unwrap_or(&version).to_string();
        out.push(KernelPkg { name, version, release, abi, suite, arch, flavour });
    }
    out
}

/// A series: `6.12` (every 6.12.x), `6.16..newest`, `6.16..7.1`, `6.12.43..6.12.90`, `all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    from: Vec<u64>,
    to: Option<Vec<u64>>,
}

impl Series {
    pub fn parse(s: &str) -> Result<Series, String> {
        let bound = |b: &str| -> Result<Vec<u64>, String> {
            let v: Result<Vec<u64>, _> = b.split('.').map(|p| p.parse::<u64>()).collect();
            v.ok().filter(|v| (1..=3).contains(&v.len())).ok_or(format!("--series {s:?}: {b:?} is not a release like 6.12 or 6.12.43"))
        };
        if s == "all" {
            return Ok(Series { from: vec![0], to: None });
        }
        match s.split_once("..") {
            None => {
                let b = bound(s)?;
                Ok(Series { from: b.clone(), to: Some(b) })
            }
            Some((a, b)) => Ok(Series { from: bound(a)?, to: if b == "newest" || b.is_empty() { None } else { Some(bound(b)?) } }),
        }
    }

    pub fn contains(&self, release: &str) -> bool {
        let r = nums(release);
        let prefix = |n: usize| r.iter().copied().chain(std::iter::repeat(0)).take(n).collect::<Vec<u64>>();
        prefix(self.from.len()) >= self.from && self.to.as_ref().is_none_or(|t| prefix(t.len()) <= *t)
    }
}

/// Every kernel image package of `series` for a Debian architecture (`flavour`: only that one), oldest →
/// newest, one entry per package name and version (the first suite that lists it).
pub fn kernels(series: &Series, deb_arch: &str, flavour: Option<&str>) -> Result<Vec<KernelPkg>, String> {
    let cfg = Config::kernels(&[deb_arch]);
    cfg.update(MAX_AGE, false)?;
    let mut c = cfg.command("apt-cache");
    c.args(["pkgnames", "linux-image-"]);
    let names: Vec<String> = output(c)?.lines().filter(|n| parse_name(n).is_some()).map(String::from).collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = cfg.command("apt-cache");
    c.arg("madison").args(&names);
    let mut v: Vec<KernelPkg> = parse_madison(&output(c)?)
        .into_iter()
        .filter(|k| k.arch == deb_arch && series.contains(&k.release) && flavour.is_none_or(|f| k.flavour == f))
        .collect();
    v.sort_by(pkg_cmp);
    Ok(v)
}

/// One package per upstream release (per flavour): the newest Debian build of it, preferring the
/// `-unsigned` package of that build (identical kernel, and what earlier runs cached).
pub fn point_releases(all: &[KernelPkg]) -> Vec<KernelPkg> {
    let mut out: Vec<KernelPkg> = Vec::new();
    for k in all {
        match out.iter_mut().find(|o| o.release == k.release && o.flavour == k.flavour) {
            Some(o) => {
                let newer = deb_version_cmp(&k.version, &o.version);
                if newer == Ordering::Greater || (newer == Ordering::Equal && k.name.ends_with("-unsigned")) {
                    *o = k.clone();
                }
            }
            None => out.push(k.clone()),
        }
    }
    out
}

/// `--kernel` words → one package. `word`: `newest`, a series (`7.2`, `6.1`), a release (`6.19.14`,
/// `6.12.43`), any of these with a flavour suffix (`6.12-16k`, `newest-16k`, `7.2-64k`, `7.2-lpae`), or a
/// package name (`linux-image-...`). `arch`: the Rust/uname architecture (default x86_64; a `-16k`
/// suffix implies aarch64, `-64k` powerpc64le).
pub fn resolve(word: &str, arch: Option<&str>) -> Result<KernelPkg, String> {
    resolve_excluding(word, arch, &[])
}

/// Is `word` a name that may resolve to several packages (`newest`, a series, with a flavour suffix),
/// rather than one package or one release?
pub fn is_alias(word: &str) -> bool {
    let base = word.rsplit_once('-').filter(|(_, s)| ["16k", "64k", "lpae"].contains(s)).map(|(b, _)| b).unwrap_or(word);
    !word.starts_with("linux-image-") && (base == "newest" || base.matches('.').count() == 1)
}

/// [`resolve`] among the packages of every suite but `exclude`: what an alias falls back to when the
/// suite it resolved to lists a package its pool does not serve (measured 2026-12-07: trixie-backports
/// lists 7.3.4 for ppc64el and riscv64, and `apt-get download` answers 404).
pub fn resolve_excluding(word: &str, arch: Option<&str>, exclude: &[String]) -> Result<KernelPkg, String> {
    if word.starts_with("linux-image-") {
        let (_, flavour) = parse_name(word).ok_or(format!("--kernel {word:?}: not a kernel image package this tool boots"))?;
        let da = ["amd64", "arm64", "ppc64el", "s390x", "riscv64", "armhf"]
            .into_iter()
            .find(|a| flavours(a).contains(&flavour.as_str()))
            .unwrap_or("amd64");
        let all = kernels(&Series::parse("all")?, da, Some(&flavour))?;
        return all
            .into_iter()
            .rev()
            .find(|k| k.name == word)
            .ok_or(format!("--kernel {word}: no suite of {} lists this package", KERNEL_SUITES.join(", ")));
    }
    let (base, suffix) = match word.rsplit_once('-') {
        Some((b, s)) if ["16k", "64k", "lpae"].contains(&s) => (b, Some(s)),
        _ => (word, None),
    };
    let arch = match (arch, suffix) {
        (Some(a), _) => a,
        (None, Some("16k")) => "aarch64",
        (None, Some("64k")) => "powerpc64le",
        (None, Some("lpae")) => "armhf",
        (None, _) => "x86_64",
    };
    let da = deb_arch(arch)?;
    let fl = flavours(da);
    let flavour = match suffix {
        None => fl[0].to_string(),
        Some(s) => fl
            .iter()
            .find(|f| f.ends_with(&format!("-{s}")))
            .map(|f| f.to_string())
            .ok_or(format!("--kernel {word}: {arch} has no -{s} flavour (it has {})", fl.join(", ")))?,
    };
    let series = if base == "newest" { Series::parse("all")? } else { Series::parse(base).map_err(|e| format!("--kernel {word}: {e}"))? };
    let all: Vec<KernelPkg> = kernels(&series, da, Some(&flavour))?.into_iter().filter(|k| !exclude.contains(&k.suite)).collect();
    let list = point_releases(&all);
    list.last().cloned().ok_or(format!(
        "--kernel {word}: no {flavour} kernel of that release in {} (cargo xtask kernels --arch {arch} lists them)",
        KERNEL_SUITES.join(", ")
    ))
}

/// `apt-get download pkg=version` into target/qemu/debs (kept: the file name carries name and version).
fn download(cfg: &Config, name: &str, version: &str, deb_arch: &str) -> Result<PathBuf, String> {
    let dir = crate::qemu::qemu_dir().join("debs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    // dpkg file names: name_version-with-epoch-colon-as-%3a_arch.deb
    let file = dir.join(format!("{name}_{}_{deb_arch}.deb", version.replace(':', "%3a")));
    if file.exists() {
        return Ok(file);
    }
    eprintln!("xtask: apt-get download {name}={version} ({deb_arch})");
    let mut c = cfg.command("apt-get");
    c.current_dir(&dir).args(["-q", "download"]).arg(format!("{name}:{deb_arch}={version}")).stdout(Stdio::null());
    run_ok(c)?;
    if file.exists() {
        Ok(file)
    } else {
        Err(format!("apt-get download {name}={version} left no {} ", file.display()))
    }
}

/// The packages that make up a kernel: the image package itself and, for the split layout (6.19+: the
/// image package is a metapackage), the `linux-base-*` (config, modules.builtin/order), `linux-binary-*`
/// (`/usr/lib/modules/<ver>/vmlinuz`) and `linux-modules-*` it depends on, at the same version.
/// trixie-backports keeps only some of them for older releases (measured 2026-12: no `linux-base-*`
/// before 7.2.6, so 6.18.y images name one that does not exist; 6.19.y-7.1.y keep only
/// `linux-binary-*`): a part the lists do not hold is left out with a warning, and `bootable` makes do
/// with what is there (the image; no config, no modules means a tmpfs scratch directory).
fn parts(cfg: &Config, k: &KernelPkg) -> Result<Vec<String>, String> {
    let mut c = cfg.command("apt-cache");
    c.args(["show", &format!("{}:{}={}", k.name, k.arch, k.version)]);
    let text = output(c)?;
    let depends = text.lines().find_map(|l| l.strip_prefix("Depends:")).unwrap_or("");
    let mut v = vec![k.name.clone()];
    for d in depends.split(',') {
        let n = d.split_whitespace().next().unwrap_or("");
        if ["linux-base-", "linux-binary-", "linux-modules-"].iter().any(|p| n.starts_with(p)) && n.ends_with(&k.uname()) {
            // `apt-cache show` of a name only referenced by a Depends exits 0 with no record.
            let mut q = cfg.command("apt-cache");
            q.args(["show", &format!("{n}:{}={}", k.arch, k.version)]).stderr(Stdio::null());
            let held = q.output().map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Package:"));
            if held.unwrap_or(false) {
                v.push(n.to_string());
            } else {
                eprintln!("xtask: warning: {} depends on {n}={}, which the lists do not hold; going without it", k.name, k.version);
            }
        }
    }
    Ok(v)
}

/// Download (cached in target/qemu/debs) and unpack a kernel (cached in target/qemu/kernels/<uname>_<version>):
/// the image, the config and the module subset ext4 and loop can need (fs, block, lib, crypto, arch), with
/// a modules.dep from depmod (the packages have none; their postinst makes it). Handles both layouts:
/// `/boot/vmlinuz-*` + `/boot/config-*`, and `/usr/lib/modules/<ver>/{vmlinuz,config}`.
pub fn bootable(k: &KernelPkg) -> Result<Bootable, String> {
    let cfg = Config::kernels(&[&k.arch]);
    cfg.update(MAX_AGE, false)?;
    let root = crate::qemu::qemu_dir().join("kernels").join(format!("{}_{}", k.uname(), k.version.replace([':', '~', '+'], "_")));
    let stamp = root.join(".extracted");
    if !stamp.exists() {
        let debs: Vec<PathBuf> = parts(&cfg, k)?.iter().map(|n| download(&cfg, n, &k.version, &k.arch)).collect::<Result<_, _>>()?;
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        for deb in &debs {
            eprintln!("xtask: extracting {}", deb.display());
            extract_members(deb, &root)?;
        }
        // Without the package holding the modules (see `parts`) there is nothing for depmod to index.
        match find_moddir(&root) {
            Some(md) => {
                let version = md.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                // depmod -b wants <base>/lib/modules/<version>; the package may use /lib or /usr/lib.
                let base = md.parent().and_then(Path::parent).and_then(Path::parent).ok_or("odd module directory")?;
                let depmod = if Path::new("/sbin/depmod").exists() { "/sbin/depmod" } else { "depmod" };
                let mut c = Command::new(depmod);
                c.arg("-b").arg(base).arg(&version);
                run_ok(c)?;
            }
            None => eprintln!("xtask: warning: {}: no modules in the packages (no ext4 scratch disk)", k.name),
        }
        std::fs::write(&stamp, b"").map_err(|e| format!("write {}: {e}", stamp.display()))?;
    }
    let moddir = find_moddir(&root);
    // ppc64el packages ship the ELF `/boot/vmlinux-*` (what qemu's pseries loads), the others a vmlinuz.
    let boot_image = find_prefixed(&root.join("boot"), "vmlinuz-").or_else(|| find_prefixed(&root.join("boot"), "vmlinux-"));
    let (vmlinuz, config) = match boot_image {
        Some(v) => (v, find_prefixed(&root.join("boot"), "config-")),
        None => {
            // The split layout; without linux-base there is no modules.builtin to find the directory by.
            let md = moddir
                .clone()
                .or_else(|| find_named(&root, "vmlinuz").and_then(|v| v.parent().map(Path::to_path_buf)))
                .ok_or(format!("{}: neither /boot/vmlinuz-* nor lib/modules/*/vmlinuz", k.name))?;
            let v = md.join("vmlinuz");
            if !v.exists() {
                return Err(format!("{}: no {} (split layout without linux-binary?)", k.name, v.display()));
            }
            let c = md.join("config");
            (v, c.exists().then_some(c))
        }
    };
    Ok(Bootable { root, vmlinuz, config, moddir, uname: k.uname() })
}

/// What a kernel package contributes: the image and config (either layout), the module index files, and
/// every module of fs/, block/, lib/, crypto/ and arch/ (what ext4 and loop can depend on).
const MEMBERS: &[&str] = &[
    "./boot/*",
    "*/modules/*/vmlinuz",
    "*/modules/*/config",
    "*/modules.builtin",
    "*/modules.order",
    "*/kernel/fs/*",
    "*/kernel/drivers/block/*",
    "*/kernel/lib/*",
    "*/kernel/crypto/*",
    "*/kernel/arch/*",
];

/// `dpkg-deb --fsys-tarfile deb | tar -x MEMBERS`: a package holding none of some patterns is fine (the
/// split layout spreads them over three packages); any other failure of either side is an error.
fn extract_members(deb: &Path, root: &Path) -> Result<(), String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(root)
        .arg("--wildcards")
        .args(MEMBERS)
        .stdin(dpkg.stdout.take().expect("piped"))
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let st = dpkg.wait().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !st.success() {
        return Err(format!("dpkg-deb --fsys-tarfile {} failed ({st})", deb.display()));
    }
    let err = String::from_utf8_lossy(&tar.stderr);
    let real: Vec<&str> =
        err.lines().filter(|l| !l.contains("Not found in archive") && !l.contains("Exiting with failure status due to previous errors")).collect();
    if !real.is_empty() || (!tar.status.success() && tar.status.code() != Some(2)) {
        return Err(format!("tar -x of {} failed ({}): {}", deb.display(), tar.status, real.join("; ")));
    }
    Ok(())
}

fn find_prefixed(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
        .collect();
    v.sort();
    v.pop()
}

/// `.../lib/modules/<version>` (the directory holding modules.builtin).
/// The first file called `name` below `dir` (depth first).
fn find_named(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(q) = find_named(&p, name) {
                return Some(q);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

pub fn find_moddir(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.join("modules.builtin").exists() {
                return Some(p);
            }
            if let Some(q) = find_moddir(&p) {
                return Some(q);
            }
        }
    }
    None
}

pub fn usage() -> &'static str {
    "usage: cargo xtask kernels [--series 6.12|6.16..newest|all] [--arch x86_64|aarch64|powerpc64le|s390x|riscv64|armhf]\n\
     \x20                         [--flavour F] [--point-releases] [--update] [--fetch]\n\
     lists every Debian kernel image package of the series, oldest to newest, from private apt lists under target/apt/;\n\
     --fetch then downloads and unpacks one package per point release into target/qemu (what `qemu`, `matrix` and\n\
     `bisect` boot), so that a later series run boots without waiting on the archive"
}

/// `cargo xtask kernels`: print the list.
pub fn main(args: &[String]) -> Result<i32, String> {
    let mut series = Series::parse("all")?;
    let mut arch = "x86_64".to_string();
    let mut flavour: Option<String> = None;
    let mut point = false;
    let mut force = false;
    let mut fetch = false;
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--series" => series = Series::parse(&flags.value(&f)?)?,
            "--arch" => arch = flags.value(&f)?,
            "--flavour" | "--flavor" => flavour = Some(flags.value(&f)?),
            "--point-releases" => point = true,
            "--update" => force = true,
            "--fetch" => fetch = true,
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(0);
            }
            _ => return Err(format!("unknown argument {:?}\n{}", f.raw, usage())),
        }
    }
    let da = deb_arch(&arch)?;
    if let Some(f) = &flavour {
        if !flavours(da).contains(&f.as_str()) {
            return Err(format!("--flavour {f}: {arch} has {}", flavours(da).join(", ")));
        }
    }
    if force {
        update(&[da], true)?;
    }
    let mut v = kernels(&series, da, flavour.as_deref())?;
    if point {
        v = point_releases(&v);
    }
    println!("{:<44} {:<22} {:<10} {:<20} {:<8} flavour", "package", "version", "release", "suite", "arch");
    for k in &v {
        println!("{:<44} {:<22} {:<10} {:<20} {:<8} {}", k.name, k.version, k.release, k.suite, k.arch, k.flavour);
    }
    let releases = point_releases(&v);
    eprintln!("{} packages, {} point releases", v.len(), releases.len());
    if !fetch {
        return Ok(0);
    }
    // One after another (the archive is the bottleneck); a kernel that fails is reported and the rest go on.
    let mut failed = Vec::new();
    for (i, k) in releases.iter().enumerate() {
        let t = std::time::Instant::now();
        match bootable(k) {
            Ok(b) => eprintln!(
                "xtask: [{}/{}] {} {}: ready in {:.0} s ({}, {})",
                i + 1,
                releases.len(),
                k.name,
                k.version,
                t.elapsed().as_secs_f64(),
                if b.config.is_some() { "config" } else { "no config" },
                if b.moddir.is_some() { "modules" } else { "no modules" }
            ),
            Err(e) => {
                eprintln!("xtask: [{}/{}] {} {}: {e}", i + 1, releases.len(), k.name, k.version);
                failed.push(k.name.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        eprintln!("xtask: {} of {} kernels could not be fetched: {}", failed.len(), releases.len(), failed.join(", "));
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_versions_order_like_dpkg() {
        assert_eq!(deb_version_cmp("6.12.118-1~deb12u1", "6.12.118-1"), Ordering::Less);
        assert_eq!(deb_version_cmp("6.12.90-2~bpo12+1", "6.12.90-1~bpo12+1"), Ordering::Greater);
        assert_eq!(deb_version_cmp("6.1.192-3", "6.1.192-10"), Ordering::Less);
        assert_eq!(deb_version_cmp("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(deb_version_cmp("7.3.4-1~bpo13+1", "7.3.4-1~bpo13+1"), Ordering::Equal);
        assert_eq!(deb_version_cmp("1.0a", "1.0+"), Ordering::Less);
    }

    #[test]
    fn aliases_may_fall_back_but_releases_and_packages_do_not() {
        for a in ["newest", "newest-16k", "7.2", "7.2-64k", "6.12-16k", "6.1", "7.2-lpae"] {
            assert!(is_alias(a), "{a}");
        }
        for w in ["7.3.4", "6.19.14", "6.12.43-16k", "linux-image-7.2.13+deb14-s390x"] {
            assert!(!is_alias(w), "{w}");
        }
    }

    #[test]
    fn names_split_into_abi_and_flavour() {
        assert_eq!(parse_name("linux-image-6.1.0-56-amd64-unsigned"), Some(("6.1.0-56".into(), "amd64".into())));
        assert_eq!(parse_name("linux-image-6.12.74+deb13+1-arm64-16k"), Some(("6.12.74+deb13+1".into(), "arm64-16k".into())));
        assert_eq!(parse_name("linux-image-7.2.13+deb14-powerpc64le-64k"), Some(("7.2.13+deb14".into(), "powerpc64le-64k".into())));
        assert_eq!(parse_name("linux-image-amd64"), None);
        assert_eq!(parse_name("linux-image-6.12-arm64-16k"), None);
        assert_eq!(parse_name("linux-image-7.2.13+deb14-rt-amd64"), None);
        assert_eq!(parse_name("linux-image-7.2.13+deb14-amd64-dbg"), None);
        assert_eq!(parse_name("linux-image-7.2.13+deb14-cloud-arm64"), None);
    }

    #[test]
    fn madison_lines_become_packages() {
        let t = "linux-image-6.12.43+deb12-amd64 | 6.12.43-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages\n\
                 linux-image-6.12.107+deb13-amd64 | 6.12.107-1 | http://deb.debian.org/debian trixie/main amd64 Packages\n\
                 linux-image-6.12.107+deb13-amd64 | 6.12.107-1 | http://deb.debian.org/debian-security trixie-security/main amd64 Packages\n\
                 linux-image-6.1.0-44-arm64:arm64 | 6.1.164-1 | http://deb.debian.org/debian-security bookworm-security/main arm64 Packages\n\
                 linux-image-amd64 | 7.2.13-1 | http://deb.debian.org/debian sid/main amd64 Packages\n";
        let v = parse_madison(t);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].release, "6.12.43");
        assert_eq!(v[0].suite, "bookworm-backports");
        assert_eq!(v[1].suite, "trixie");
        assert_eq!((v[2].arch.as_str(), v[2].release.as_str(), v[2].uname()), ("arm64", "6.1.164", "6.1.0-44-arm64".into()));
    }

    #[test]
    fn series_ranges() {
        let s = Series::parse("6.16..newest").unwrap();
        assert!(s.contains("6.16.3") && s.contains("7.3.4") && !s.contains("6.12.118") && !s.contains("6.15.9"));
        let s = Series::parse("6.12").unwrap();
        assert!(s.contains("6.12.43") && !s.contains("6.1.170") && !s.contains("6.13.1"));
        let s = Series::parse("6.12.43..6.12.90").unwrap();
        assert!(s.contains("6.12.43") && s.contains("6.12.90") && !s.contains("6.12.94"));
        let s = Series::parse("6.16..7.1").unwrap();
        assert!(s.contains("7.1.13") && !s.contains("7.2.6"));
        assert!(Series::parse("six").is_err());
    }

    #[test]
    fn one_build_per_point_release() {
        let k = |name: &str, version: &str| KernelPkg {
            name: name.into(),
            version: version.into(),
            release: version.split('-').next().unwrap().into(),
            abi: String::new(),
            suite: String::new(),
            arch: "amd64".into(),
            flavour: "amd64".into(),
        };
        let mut v = vec![
            k("linux-image-6.12.90+deb13.1-amd64", "6.12.90-2"),
            k("linux-image-6.12.90+deb12-amd64", "6.12.90-1~bpo12+1"),
            k("linux-image-6.12.94+deb12-amd64", "6.12.94-1~bpo12+1"),
            k("linux-image-6.12.90+deb13.1-amd64-unsigned", "6.12.90-2"),
        ];
        v.sort_by(pkg_cmp);
        let p = point_releases(&v);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "linux-image-6.12.90+deb13.1-amd64-unsigned");
        assert_eq!(p[1].release, "6.12.94");
    }
}
