//! `cargo xtask qemu --kernel <debian-kernel-package | alias | path to an image> [--arch x86_64|aarch64]
//! [--generate N] [--seed S] [--format human|ktap] [--files ext4|tmpfs] [--config FILE] [--memory MiB]
//! [--timeout SECS] [--no-build]`: boot a kernel under qemu (TCG) with a static `madcheck` as /init and
//! pass its exit code through (0 agree, 1 divergence or failure, 2 bad usage).
//!
//! Invariant: every step is cached under `target/qemu/` and keyed by what it was made from (package file
//! name, binary), and every failure (no qemu, no package, no result marker on the console) is an error that
//! names the step; a boot that ends without the `MADCHECK-RESULT` line is exit 1, never success, because
//! qemu exits 0 after a kernel panic too. The recipes (backports qemu, PVH vmlinux + qboot, exit devices)
//! are the measured ones from `shared/spec/qemu.md`.
//!
//! With `--corpus` the named cases of cases/corpus and the recorded host goldens of the guest's
//! architecture (`golden/snapshots/<profile>/host/`, as `/madcheck/goldens/`) go into the initramfs, so the
//! guest checks its profile's goldens (and its expected unsupported set, `unsupported.json`); `cargo xtask bless --kernel` boots with `emit_goldens` instead.
//!
//! Kernel aliases, resolved to the newest installable Debian package at run time (old ABIs leave the
//! mirror): `6.1`, `6.12` (arch from `--arch`, default x86_64) and `6.12-16k` (arm64 with 16K pages).

use crate::util;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to boot and how.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kernel: String,
    pub arch: Option<String>,
    pub generate: u64,
    pub seed: u64,
    pub ktap: bool,
    pub files: Option<String>,
    pub config: Option<PathBuf>,
    pub memory_mib: u32,
    pub timeout: Duration,
    pub build: bool,
    /// Echo the guest console to stdout while it runs.
    pub echo: bool,
    /// Also run the named cases of cases/corpus (packed into the initramfs).
    pub corpus: bool,
    /// `--scenario N`: run these generated scenarios (of `seed`) instead of `generate` of them.
    pub scenarios: Vec<u64>,
    /// Have the guest print every named case's host golden (`madcheck run --emit-goldens`); used by
    /// `cargo xtask bless --kernel`. The recorded goldens are then not packed (nothing to check against).
    pub emit_goldens: bool,
    /// More `madcheck run` arguments for the guest (no commas: `madcheck.args` is comma-separated).
    pub extra_args: Vec<String>,
    /// Files packed into the initramfs as `/madcheck/extra/<name>` (a case, a model's facts, a
    /// reproducer binary), for `compare` and `bisect`.
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// `--append`: more kernel parameters, after madcheck's own.
    pub append: Vec<String>,
    /// `--cpu MODEL`: the guest CPU (`-cpu`), instead of qemu's default for the machine (x86_64: qemu64,
    /// no PKU). `max` under TCG has protection keys (PKU, OSPKE), which the pkey cases need.
    pub cpu: Option<String>,
}

impl Spec {
    /// A boot of `kernel` that runs nothing but what the caller adds (no generated scenarios, no
    /// corpus, no goldens), quiet, with the default memory and timeout, without building.
    pub fn for_kernel(kernel: &str, arch: Option<String>) -> Spec {
        Spec {
            kernel: kernel.to_string(),
            arch,
            generate: 0,
            seed: 1,
            ktap: false,
            files: None,
            config: None,
            memory_mib: 1024,
            timeout: Duration::from_secs(3600),
            build: false,
            echo: false,
            corpus: false,
            scenarios: Vec::new(),
            emit_goldens: false,
            extra_args: Vec::new(),
            extra_files: Vec::new(),
            append: Vec::new(),
            cpu: None,
        }
    }
}

/// A kernel ready to boot: everything on disk.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub label: String,
    pub arch: String,
    pub image: PathBuf,
    pub initrd: PathBuf,
    pub spec: Spec,
}

/// What a boot produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub label: String,
    /// madcheck's exit code (0/1/2); 1 when there was no result line.
    pub exit: i32,
    /// The MADCHECK-RESULT key=values (empty when missing).
    pub result: BTreeMap<String, String>,
    pub guest: BTreeMap<String, String>,
    pub report: Option<PathBuf>,
    pub log: PathBuf,
    pub elapsed: Duration,
    pub error: Option<String>,
}

pub fn usage() -> &'static str {
    "usage: cargo xtask qemu --kernel <6.1|6.12|6.12-16k|linux-image-...|PATH> [--arch x86_64|aarch64|powerpc64le|s390x|riscv64|armhf]\n\
     \x20                      [--generate N] [--seed S] [--scenario INDEX]... [--format human|ktap]\n\
     \x20                      [--files ext4|tmpfs] [--case FILE]\n\
     \x20                      [--config FILE] [--memory MiB] [--timeout SECS] [--corpus] [--no-build]\n\
     \x20                      [--destructive] [--cases DIR] [--exec STATIC-PROGRAM] [--append PARAMS] [--cpu MODEL]"
}

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut spec = Spec::for_kernel("", None);
    spec.generate = 1000;
    spec.build = true;
    spec.echo = true;
    let mut generate_given = false;
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        let flag = f.name;
        if flag == "--no-build" {
            spec.build = false;
            continue;
        }
        if flag == "--corpus" {
            spec.corpus = true;
            continue;
        }
        // The guest may run the destructive scenario classes (hugetlb with fork or mremap); madcheck
        // refuses them anywhere else.
        if flag == "--destructive" {
            spec.extra_args.push("--destructive".into());
            continue;
        }
        if flag == "-h" || flag == "--help" {
            println!("{}", usage());
            return Ok(0);
        }
        let mut value = || flags.value(&f).map_err(|e| format!("{e}\n{}", usage()));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: {v:?} is not a number"));
        match flag {
            "--kernel" => spec.kernel = value()?,
            "--arch" => spec.arch = Some(value()?),
            "--generate" => {
                spec.generate = num(value()?)?;
                generate_given = true;
            }
            "--seed" => spec.seed = num(value()?)?,
            "--scenario" => spec.scenarios.push(num(value()?)?),
            "--format" => spec.ktap = value()? == "ktap",
            "--files" => spec.files = Some(value()?),
            "--config" => spec.config = Some(PathBuf::from(value()?)),
            "--memory" => spec.memory_mib = num(value()?)? as u32,
            "--timeout" => spec.timeout = Duration::from_secs(num(value()?)?),
            "--append" => spec.append.extend(value()?.split_whitespace().map(String::from)),
            "--cpu" => spec.cpu = Some(value()?),
            // A case file for the guest (judged against the model): what `git bisect run` drives.
            "--case" => {
                let path = value()?;
                let data = std::fs::read(&path).map_err(|e| format!("--case {path}: cannot read: {e}"))?;
                let name = Path::new(&path).file_name().and_then(|n| n.to_str()).unwrap_or("case.json").to_string();
                spec.extra_args.extend(["--case".to_string(), format!("/madcheck/extra/{name}")]);
                spec.extra_files.push((name, data));
            }
            // A static program for the guest to run (a C reproducer); its exit code and output are in the
            // report (`madcheck run --exec`). Destructive reproducers belong here, never on the host.
            "--exec" => {
                let path = value()?;
                let data = std::fs::read(&path).map_err(|e| format!("--exec {path}: cannot read: {e}"))?;
                let name = Path::new(&path).file_name().and_then(|n| n.to_str()).unwrap_or("exec").to_string();
                spec.extra_args.extend(["--exec".to_string(), format!("/madcheck/extra/{name}")]);
                spec.extra_files.push((name, data));
            }
            // A directory of case files for the guest (e.g. cases/destructive, whose cases the host refuses).
            "--cases" => {
                let dir = value()?;
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| format!("--cases {dir}: cannot read: {e}"))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(format!("--cases {dir}: no case files (*.json) in it"));
                }
                for f in files {
                    let data = std::fs::read(&f).map_err(|e| format!("--cases {dir}: cannot read {}: {e}", f.display()))?;
                    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("case.json").to_string();
                    spec.extra_files.push((format!("cases/{name}"), data));
                }
                spec.extra_args.extend(["--cases".to_string(), "/madcheck/extra/cases".to_string()]);
            }
            _ => return Err(format!("unknown argument {:?}\n{}", f.raw, usage())),
        }
    }
    if spec.kernel.is_empty() {
        return Err(format!("--kernel is required\n{}", usage()));
    }
    if (!spec.scenarios.is_empty() || !spec.extra_files.is_empty()) && !generate_given {
        spec.generate = 0;
    }
    if let Some(a) = &spec.arch {
        if !["x86_64", "aarch64", "powerpc64le", "s390x", "riscv64", "armhf"].contains(&a.as_str()) {
            return Err(format!("--arch: {a:?} is not x86_64, aarch64, powerpc64le, s390x, riscv64 or armhf"));
        }
    }
    let p = match prepare(&spec) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask qemu: {e}");
            return Ok(1);
        }
    };
    let o = boot(&p);
    eprintln!();
    eprintln!("xtask qemu: {} ({}): {}", o.label, p.arch, describe(&o));
    eprintln!("xtask qemu: console log {}", o.log.display());
    if let Some(r) = &o.report {
        eprintln!("xtask qemu: report {}", r.display());
    }
    Ok(o.exit)
}

pub fn describe(o: &Outcome) -> String {
    if let Some(e) = &o.error {
        return format!("FAILED: {e}");
    }
    let g = |k: &str| o.result.get(k).cloned().unwrap_or_else(|| "?".into());
    format!(
        "exit {}, {} scenarios, {} diverge, {} expected, {} unsupported, {} infra, files on {}, {:.0}s",
        o.exit,
        g("scenarios"),
        g("diverge"),
        g("expected"),
        g("unsupported"),
        g("infra"),
        g("files"),
        o.elapsed.as_secs_f64()
    )
}

pub fn qemu_dir() -> PathBuf {
    util::target_dir().join("qemu")
}

fn run_ok(mut c: Command) -> Result<(), String> {
    let shown = format!("{c:?}");
    let st = c.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !st.success() {
        return Err(format!("{shown} failed ({st})"));
    }
    Ok(())
}

fn output(mut c: Command) -> Result<String, String> {
    let shown = format!("{c:?}");
    let o = c.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !o.status.success() {
        return Err(format!("{shown} failed ({})", o.status));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// qemu from the host release's backports (the image's preinstalled backports qemu-utils breaks bookworm's
/// qemu), plus the decompressors and mkfs the image preparation uses; through the private apt
/// configuration of [`crate::debian::install`], never the system's sources.
pub fn ensure_tools(arch: &str) -> Result<(), String> {
    let (qemu, pkg) = qemu_binary(arch);
    let mut qemu_pkgs = Vec::new();
    if !have(qemu) || (arch == "x86_64" && !Path::new("/usr/share/qemu/qboot.rom").exists()) {
        qemu_pkgs.extend(["qemu-system-x86", "qemu-system-arm"]);
        if !qemu_pkgs.contains(&pkg) {
            qemu_pkgs.push(pkg);
        }
    }
    let mut pkgs = Vec::new();
    for (tool, pkg) in [("xz", "xz-utils"), ("zstd", "zstd"), ("mkfs.ext4", "e2fsprogs"), ("depmod", "kmod"), ("dpkg-deb", "dpkg")] {
        if !have(tool) && !Path::new("/usr/sbin").join(tool).exists() && !Path::new("/sbin").join(tool).exists() {
            pkgs.push(pkg);
        }
    }
    if !pkgs.is_empty() {
        crate::debian::install(&pkgs, false)?;
    }
    if !qemu_pkgs.is_empty() {
        crate::debian::install(&qemu_pkgs, true)?;
    }
    if arch == "riscv64" && riscv_firmware().is_none() {
        // Debian's qemu does not bundle OpenSBI; the `opensbi` package holds the generic fw_dynamic.
        crate::debian::install(&["opensbi"], true)?;
        riscv_firmware().ok_or("riscv64: no OpenSBI firmware (fw_dynamic.bin) after installing opensbi")?;
    }
    Ok(())
}

/// OpenSBI's generic `fw_dynamic.bin` for `-M virt -bios`: qemu's own copy, or Debian's `opensbi` package.
fn riscv_firmware() -> Option<PathBuf> {
    ["/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin", "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// (qemu binary, Debian package holding it) for an architecture.
pub fn qemu_binary(arch: &str) -> (&'static str, &'static str) {
    match arch {
        "aarch64" => ("qemu-system-aarch64", "qemu-system-arm"),
        "powerpc64le" => ("qemu-system-ppc64", "qemu-system-ppc"),
        "s390x" => ("qemu-system-s390x", "qemu-system-s390x"),
        "riscv64" => ("qemu-system-riscv64", "qemu-system-misc"),
        "armhf" => ("qemu-system-arm", "qemu-system-arm"),
        _ => ("qemu-system-x86_64", "qemu-system-x86"),
    }
}

/// The uncompressed ELF vmlinux inside an x86 bzImage (what scripts/extract-vmlinux does): find a
/// compressed stream by its magic, decompress it with xz/zstd/gzip, keep the first result that is ELF.
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<(), String> {
    let data = std::fs::read(bzimage).map_err(|e| format!("read {}: {e}", bzimage.display()))?;
    let magics: [(&[u8], &[&str]); 3] = [
        (b"\xfd7zXZ\x00", &["xz", "-dc", "--single-stream"]),
        (b"\x28\xb5\x2f\xfd", &["zstd", "-dcq"]),
        (b"\x1f\x8b\x08", &["gzip", "-dc"]),
    ];
    for (magic, cmd) in magics {
        let mut start = 0;
        while let Some(pos) = data[start..].windows(magic.len()).position(|w| w == magic) {
            let off = start + pos;
            start = off + 1;
            let mut child = Command::new(cmd[0])
                .args(&cmd[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", cmd[0]))?;
            let mut stdin = child.stdin.take().expect("piped");
            let payload = data[off..].to_vec();
            let feeder = std::thread::spawn(move || {
                let _ = stdin.write_all(&payload);
            });
            let o = child.wait_with_output().map_err(|e| format!("{}: {e}", cmd[0]))?;
            let _ = feeder.join();
            if o.stdout.len() > 1 << 20 && o.stdout.starts_with(b"\x7fELF") {
                std::fs::write(out, &o.stdout).map_err(|e| format!("write {}: {e}", out.display()))?;
                return Ok(());
            }
        }
    }
    Err(format!("{}: no compressed ELF payload found", bzimage.display()))
}

/// Module files for `want` (by name) and their dependencies, dependencies first, from modules.dep;
/// built-in modules are skipped.
pub fn module_closure(dep: &str, builtin: &str, want: &[&str]) -> Result<Vec<String>, String> {
    fn name_of(path: &str) -> String {
        let f = path.rsplit('/').next().unwrap_or(path);
        f.split(".ko").next().unwrap_or(f).replace('-', "_")
    }
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for l in dep.lines() {
        let Some((m, rest)) = l.split_once(':') else { continue };
        deps.insert(name_of(m), (m.to_string(), rest.split_whitespace().map(String::from).collect()));
    }
    let builtin: BTreeSet<String> = builtin.lines().map(|l| name_of(l.trim())).collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(
        n: &str,
        deps: &BTreeMap<String, (String, Vec<String>)>,
        builtin: &BTreeSet<String>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        if builtin.contains(n) || !seen.insert(n.to_string()) {
            return Ok(());
        }
        let (path, ds) = deps.get(n).ok_or_else(|| format!("module {n} is neither built in nor in modules.dep"))?;
        for d in ds {
            visit(&name_of(d), deps, builtin, seen, order)?;
        }
        order.push(path.clone());
        Ok(())
    }
    for w in want {
        visit(&w.replace('-', "_"), &deps, &builtin, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// Write a newc cpio archive (what the kernel unpacks as initramfs). `entries`: (path, mode, contents);
/// directories have mode 0o040xxx and no contents.
pub fn write_cpio(out: &Path, entries: &[(String, u32, Vec<u8>)]) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut ino = 1;
    let mut push = |name: &str, mode: u32, data: &[u8], buf: &mut Vec<u8>| {
        let namesize = name.len() + 1;
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            ino, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, namesize, 0
        );
        ino += 1;
        buf.extend_from_slice(hdr.as_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        while !buf.len().is_multiple_of(4) {
            buf.push(0);
        }
        buf.extend_from_slice(data);
        while !buf.len().is_multiple_of(4) {
            buf.push(0);
        }
    };
    for (name, mode, data) in entries {
        push(name, *mode, data, &mut buf);
    }
    push("TRAILER!!!", 0, &[], &mut buf);
    std::fs::write(out, buf).map_err(|e| format!("write {}: {e}", out.display()))
}

/// An empty ext4 image in init.rs's sparse form (only non-zero 4 KiB blocks are stored).
fn sparse_ext4(out: &Path, size_mib: u64) -> Result<(), String> {
    if out.exists() {
        return Ok(());
    }
    let img = out.with_extension("img");
    let _ = std::fs::remove_file(&img);
    // No metadata checksums (they would need the crc32c crypto module at mount time) and no orphan file
    // (newer than what every kernel here mounts by default); a journal, as on the host.
    let mut c = Command::new(if have("mkfs.ext4") { "mkfs.ext4".to_string() } else { "/usr/sbin/mkfs.ext4".to_string() });
    c.args(["-q", "-F", "-b", "4096", "-m", "0", "-O", "^metadata_csum,^metadata_csum_seed,^orphan_file", "-E",
            "lazy_itable_init=1,lazy_journal_init=1"])
        .arg(&img)
        .arg(format!("{size_mib}M"));
    run_ok(c)?;
    let data = std::fs::read(&img).map_err(|e| format!("read {}: {e}", img.display()))?;
    let mut s = b"MCSPARS1".to_vec();
    s.extend((data.len() as u64).to_le_bytes());
    for (i, block) in data.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            s.extend(((i * 4096) as u64).to_le_bytes());
            s.extend((block.len() as u32).to_le_bytes());
            s.extend_from_slice(block);
        }
    }
    let _ = std::fs::remove_file(&img);
    std::fs::write(out, s).map_err(|e| format!("write {}: {e}", out.display()))
}

/// The Rust/uname architecture of a Debian one.
pub fn rust_arch(deb_arch: &str) -> Result<String, String> {
    Ok(match deb_arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "ppc64el" => "powerpc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        // 32-bit ARM keeps its Debian name: Rust's `arm` covers several ABIs, uname's `armv7l` is the
        // machine, and the matrix row is the armhf port (EABI, hard float).
        "armhf" => "armhf",
        other => return Err(format!("Debian architecture {other}: `cargo xtask qemu` boots x86_64, aarch64, powerpc64le, s390x, riscv64 and armhf")),
    }
    .to_string())
}

/// The Rust target of the static /init. rustup has no powerpc64le musl std for this toolchain (its
/// download answers 404) and s390x has no musl target at all, so both are glibc targets linked with
/// `crt-static` (see [`build_static`]); riscv64 (`riscv64gc`) is built the same way, with Debian's cross
/// gcc, as its musl target cannot make a static-pie either. armhf is `armv7-unknown-linux-gnueabihf`
/// (Debian's armhf baseline is ARMv7 with VFPv3-D16, hard float), linked the same way by
/// `gcc-arm-linux-gnueabihf`.
pub fn rust_target(arch: &str) -> String {
    if arch == "armhf" {
        return "armv7-unknown-linux-gnueabihf".into();
    }
    let triple_arch = if arch == "riscv64" { "riscv64gc" } else { arch };
    if gnu_static(arch) { format!("{triple_arch}-unknown-linux-gnu") } else { format!("{triple_arch}-unknown-linux-musl") }
}

/// The architectures whose static /init is a glibc binary (cross gcc + Debian's `libc6-dev-*-cross`).
fn gnu_static(arch: &str) -> bool {
    matches!(arch, "powerpc64le" | "s390x" | "riscv64" | "armhf")
}

/// Where a static non-PIE glibc /init is linked: 4 GiB, above the scenario arena (0x10000000, up to
/// 1,024 pages of 64 KiB = 64 MiB). rustc's powerpc64le and s390x gnu targets cannot make a static-pie
/// (no `static_position_independent_executables`), and their default link addresses (0x10000000 on
/// ppc64, 0x1000000 on s390x) are on or below the arena.
pub const GNU_TEXT_SEGMENT: u64 = 0x1_0000_0000;

/// riscv64's static glibc start files (crtbegin.o) address symbols with `lui` (R_RISCV_HI20, ±2 GiB),
/// so linked at 4 GiB the link fails ("relocation truncated to fit: R_RISCV_HI20 against
/// `__TMC_LIST__'"); 1 GiB is below that and above the arena (riscv64 has 4K pages only: 0x10000000
/// plus at most 8,192 pages is 0x12000000).
pub const RISCV_TEXT_SEGMENT: u64 = 0x4000_0000;

/// armhf's static /init: 32-bit, so 4 GiB does not exist; its default link address (0x10000) is below
/// the arena, which must be the lowest mapping. 1 GiB is above the arena (0x10000000 plus at most 8,192
/// pages of 4 KiB ends at 0x12000000) and far below the top of the 3 GiB user space (TASK_SIZE
/// 0xbf000000 with Debian's CONFIG_VMSPLIT_3G), where mmap_base and the stack are.
pub const ARMHF_TEXT_SEGMENT: u64 = 0x4000_0000;

/// Where the static glibc /init of `arch` is linked.
fn text_segment(arch: &str) -> u64 {
    match arch {
        "riscv64" => RISCV_TEXT_SEGMENT,
        "armhf" => ARMHF_TEXT_SEGMENT,
        _ => GNU_TEXT_SEGMENT,
    }
}

/// (cross gcc, Debian packages for it) of a glibc-static architecture.
fn cross_gcc(arch: &str) -> (&'static str, [&'static str; 2]) {
    match arch {
        "powerpc64le" => ("powerpc64le-linux-gnu-gcc", ["gcc-powerpc64le-linux-gnu", "libc6-dev-ppc64el-cross"]),
        "riscv64" => ("riscv64-linux-gnu-gcc", ["gcc-riscv64-linux-gnu", "libc6-dev-riscv64-cross"]),
        "armhf" => ("arm-linux-gnueabihf-gcc", ["gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross"]),
        _ => ("s390x-linux-gnu-gcc", ["gcc-s390x-linux-gnu", "libc6-dev-s390x-cross"]),
    }
}

/// Build the static madcheck for `arch` (static-pie: the arena at 0x10000000 must stay the lowest
/// mapping, and a non-PIE static binary would sit at 0x200000/0x400000 below it).
pub fn build_static(arch: &str) -> Result<PathBuf, String> {
    let target = rust_target(arch);
    let sysroot = output({
        let mut c = Command::new("rustc");
        c.args(["--print", "sysroot"]);
        c
    })?;
    let libdir = Path::new(sysroot.trim()).join("lib/rustlib").join(&target);
    if !libdir.exists() {
        eprintln!("xtask qemu: rustup target add {target}");
        let mut c = Command::new("rustup");
        c.args(["target", "add", &target]);
        run_ok(c)?;
    }
    let mut c = util::cargo();
    c.args(["build", "--release", "-p", "harness", "--bin", "madcheck", "--target", &target]);
    // Debug info makes the initramfs 13 MB instead of 4; the musl targets have their own build dir, so this
    // does not disturb the host build.
    c.env("CARGO_PROFILE_RELEASE_DEBUG", "0").env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    if arch == "aarch64" {
        // rustc's aarch64 musl target does not do static-pie by itself: link musl's rcrt1.o (which
        // relocates the binary at start) with -pie and no dynamic linker, as the x86_64 target does.
        let sc = libdir.join("lib/self-contained");
        let flags = format!(
            "-C link-self-contained=no -C link-arg=-L{0} -C link-arg={0}/rcrt1.o -C link-arg=-pie \
             -C link-arg=--no-dynamic-linker -C link-arg=-znow",
            sc.display()
        );
        c.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", flags);
    }
    if gnu_static(arch) {
        let (gcc, pkgs) = cross_gcc(arch);
        if !have(gcc) {
            crate::debian::install(&pkgs, false)?;
        }
        let var = target.to_uppercase().replace('-', "_");
        c.env(format!("CARGO_TARGET_{var}_LINKER"), gcc);
        c.env(
            format!("CARGO_TARGET_{var}_RUSTFLAGS"),
            format!("-C target-feature=+crt-static -C link-arg=-Wl,-Ttext-segment={:#x}", text_segment(arch)),
        );
    }
    let rc = util::status(c)?;
    if rc != 0 {
        return Err(format!("building madcheck for {target} failed (exit {rc})"));
    }
    let bin = util::target_dir().join(&target).join("release/madcheck");
    let elf = std::fs::read(&bin).map_err(|e| format!("read {}: {e}", bin.display()))?;
    // e_type at 16: 3 = ET_DYN (PIE), 2 = ET_EXEC (the glibc targets, linked above the arena), in the
    // target's byte order (EI_DATA at 5: 2 = big-endian). A static binary has no PT_INTERP; checked by
    // the guest running it, which prints its lowest mapping.
    let e_type = if elf.get(5) == Some(&2) { elf.get(16..18).map(|b| u16::from_be_bytes([b[0], b[1]])) } else { elf.get(16..18).map(|b| u16::from_le_bytes([b[0], b[1]])) };
    if gnu_static(arch) {
        if e_type != Some(2) {
            return Err(format!("{} is not a static executable (ET_EXEC expected)", bin.display()));
        }
    } else if e_type != Some(3) {
        return Err(format!("{} is not position independent (static-pie expected)", bin.display()));
    }
    Ok(bin)
}

/// Download, extract, build and pack everything for one kernel. Not thread-safe with itself (apt, cargo):
/// the matrix prepares kernels one after the other and boots them in parallel.
pub fn prepare(spec: &Spec) -> Result<Prepared, String> {
    let path = Path::new(&spec.kernel);
    let (label, arch, image, config, moddir) = if path.is_file() {
        let arch = match &spec.arch {
            Some(a) => a.clone(),
            None => guess_arch(path)?,
        };
        let label = path.file_name().and_then(|n| n.to_str()).unwrap_or("kernel").to_string();
        (label, arch, path.to_path_buf(), spec.config.clone(), None)
    } else {
        let mut k = crate::debian::resolve(&spec.kernel, spec.arch.as_deref())?;
        let arch = rust_arch(&k.arch)?;
        ensure_tools(&arch)?;
        eprintln!("xtask qemu: {} {} ({}, {})", k.name, k.version, k.suite, k.arch);
        // An alias (`newest`, `7.2-64k`) falls back to the other suites when the one it resolved to
        // lists a package its pool does not serve; a package name or a release never does.
        let mut excluded: Vec<String> = Vec::new();
        let b = loop {
            match crate::debian::bootable(&k) {
                Ok(b) => break b,
                Err(e) if crate::debian::is_alias(&spec.kernel) && excluded.len() < 3 => {
                    excluded.push(k.suite.clone());
                    let next = crate::debian::resolve_excluding(&spec.kernel, spec.arch.as_deref(), &excluded)
                        .map_err(|e2| format!("{e}; and without {}: {e2}", excluded.join(", ")))?;
                    eprintln!("xtask qemu: warning: {} ({}): {e}; trying {} ({}) instead", k.name, k.suite, next.name, next.suite);
                    k = next;
                }
                Err(e) => return Err(e),
            }
        };
        let (root, vmlinuz, config) = (b.root.clone(), b.vmlinuz.clone(), b.config.clone());
        let mut image = vmlinuz.clone();
        if arch == "x86_64" {
            // PVH entry: qboot boots the ELF vmlinux directly and skips the TCG-emulated decompression.
            let vmlinux = root.join("vmlinux");
            if !vmlinux.exists() {
                if let Err(e) = extract_vmlinux(&vmlinuz, &vmlinux) {
                    eprintln!("xtask qemu: warning: {e}; booting the bzImage");
                }
            }
            if vmlinux.exists() {
                image = vmlinux;
            }
        }
        (b.uname, arch, image, spec.config.clone().or(config), b.moddir)
    };
    ensure_tools(&arch)?;
    let bin = if spec.build {
        build_static(&arch)?
    } else {
        util::target_dir().join(rust_target(&arch)).join("release/madcheck")
    };
    let init = std::fs::read(&bin).map_err(|e| format!("read {}: {e}", bin.display()))?;

    let dir = qemu_dir().join("initrd");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut entries: Vec<(String, u32, Vec<u8>)> = Vec::new();
    for d in ["dev", "proc", "sys", "tmp", "scratch", "madcheck", "madcheck/modules"] {
        entries.push((d.to_string(), 0o040755, Vec::new()));
    }
    entries.push(("init".into(), 0o100755, init));
    if let Some(c) = &config {
        let text = std::fs::read(c).map_err(|e| format!("read {}: {e}", c.display()))?;
        entries.push(("madcheck/kernel.config".into(), 0o100644, text));
    }
    let expected = util::root().join("cases/expected_divergences.json");
    if let Ok(t) = std::fs::read(&expected) {
        entries.push(("madcheck/expected_divergences.json".into(), 0o100644, t));
    }
    if spec.corpus {
        entries.push(("madcheck/corpus".into(), 0o040755, Vec::new()));
        let dir = util::root().join("cases/corpus");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("read {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let data = std::fs::read(&f).map_err(|e| format!("read {}: {e}", f.display()))?;
            entries.push((format!("madcheck/corpus/{name}"), 0o100644, data));
        }
        if !spec.emit_goldens {
            pack_host_goldens(&mut entries, &arch, &label)?;
        }
    }
    if !spec.extra_files.is_empty() {
        entries.push(("madcheck/extra".into(), 0o040755, Vec::new()));
        if spec.extra_files.iter().any(|(n, _)| n.starts_with("cases/")) {
            entries.push(("madcheck/extra/cases".into(), 0o040755, Vec::new()));
        }
        for (name, data) in &spec.extra_files {
            entries.push((format!("madcheck/extra/{name}"), 0o100755, data.clone()));
        }
    }
    // A package whose modules the archive no longer holds (see debian::parts) gets tmpfs unless ext4
    // was asked for explicitly.
    let want_ext4 = match spec.files.as_deref() {
        Some("tmpfs") => false,
        None if moddir.is_none() && !path.is_file() => {
            eprintln!("xtask qemu: {label}: the packages hold no modules; scratch files on tmpfs");
            false
        }
        _ => true,
    };
    if want_ext4 {
        let Some(md) = &moddir else {
            return Err("an ext4 scratch disk needs the kernel's modules (a package, not a bare image); use --files tmpfs".into());
        };
        let dep = std::fs::read_to_string(md.join("modules.dep")).map_err(|e| format!("read modules.dep: {e}"))?;
        let builtin = std::fs::read_to_string(md.join("modules.builtin")).unwrap_or_default();
        // ext4 allocates the crc32c shash at every mount (6.1 and 6.12), and nothing names it in
        // modules.dep: it is a crypto-API soft dependency.
        let mut want = vec!["ext4", "loop"];
        if dep.lines().any(|l| l.contains("/crc32c_generic.ko")) {
            want.insert(0, "crc32c_generic");
        }
        let mods = module_closure(&dep, &builtin, &want)?;
        for (i, m) in mods.iter().enumerate() {
            let src = md.join(m);
            let data = decompress(&src)?;
            let name = m.rsplit('/').next().unwrap_or(m).split(".ko").next().unwrap_or(m);
            entries.push((format!("madcheck/modules/{i:02}-{name}.ko"), 0o100644, data));
        }
        let sparse = qemu_dir().join("ext4-256M.sparse");
        sparse_ext4(&sparse, 256)?;
        entries.push(("madcheck/disk.sparse".into(), 0o100644, std::fs::read(&sparse).map_err(|e| e.to_string())?));
    }
    let initrd = dir.join(format!("{label}.cpio"));
    write_cpio(&initrd, &entries)?;
    Ok(Prepared { label, arch, image, initrd, spec: spec.clone() })
}

/// The kernel's `uname -m` for an xtask architecture: what profile names carry
/// (`KernelModel::profile`: `linux-7.2-ppc64le-64k`, `linux-7.2-armv7l-4k`).
pub fn uname_machine(arch: &str) -> &str {
    match arch {
        "powerpc64le" => "ppc64le",
        "armhf" => "armv7l",
        a => a,
    }
}

/// The recorded host goldens a guest of this arch (and, when the label starts with one, this `major.minor`
/// version) may check against: `golden/snapshots/<profile>/host/*.snap` → `/madcheck/goldens/...`, for the
/// profiles recorded in a guest. The guest picks its own profile's directory (`madcheck run --goldens
/// /madcheck/goldens`).
fn pack_host_goldens(entries: &mut Vec<(String, u32, Vec<u8>)>, arch: &str, label: &str) -> Result<(), String> {
    let version: String = {
        let mut dots = 0;
        let v: String = label
            .chars()
            .take_while(|c| {
                if *c == '.' {
                    dots += 1;
                }
                c.is_ascii_digit() || (*c == '.' && dots < 2)
            })
            .collect();
        if v.contains('.') && !v.ends_with('.') { v } else { String::new() }
    };
    let root = util::root().join("golden/snapshots");
    let Ok(rd) = std::fs::read_dir(&root) else { return Ok(()) };
    let mut profiles: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|p| p.contains(&format!("-{}-", uname_machine(arch))) && (version.is_empty() || p.starts_with(&format!("linux-{version}-"))))
        .filter(|p| root.join(p).join("host").is_dir())
        // Only profiles recorded in a guest (`cargo xtask bless --guests` writes facts.json): the host's
        // own profile (linux-6.18-x86_64-4k, no facts.json) was recorded from a kernel no guest boots,
        // with another config (no soft-dirty, so no `sd`), and a Debian 6.18.y guest checked against it
        // had 536 of 536 goldens differ in the series run (2026-12-08) while it matched the model.
        .filter(|p| root.join(p).join("facts.json").is_file())
        .collect();
    profiles.sort();
    if profiles.is_empty() {
        return Ok(());
    }
    entries.push(("madcheck/goldens".into(), 0o040755, Vec::new()));
    for p in profiles {
        entries.push((format!("madcheck/goldens/{p}"), 0o040755, Vec::new()));
        entries.push((format!("madcheck/goldens/{p}/host"), 0o040755, Vec::new()));
        let dir = root.join(&p).join("host");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("read {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "snap"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let data = std::fs::read(&f).map_err(|e| format!("read {}: {e}", f.display()))?;
            entries.push((format!("madcheck/goldens/{p}/host/{name}"), 0o100644, data));
        }
        // The profile's expected unsupported set, checked by the guest's run like the goldens.
        let set = root.join(&p).join("unsupported.json");
        if let Ok(data) = std::fs::read(&set) {
            entries.push((format!("madcheck/goldens/{p}/unsupported.json"), 0o100644, data));
        }
    }
    Ok(())
}

fn decompress(p: &Path) -> Result<Vec<u8>, String> {
    let s = p.to_string_lossy();
    let tool: Option<&[&str]> = if s.ends_with(".xz") {
        Some(&["xz", "-dc"])
    } else if s.ends_with(".zst") {
        Some(&["zstd", "-dcq"])
    } else if s.ends_with(".gz") {
        Some(&["gzip", "-dc"])
    } else {
        None
    };
    match tool {
        None => std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display())),
        Some(t) => {
            let mut c = Command::new(t[0]);
            c.args(&t[1..]).arg(p);
            let o = c.output().map_err(|e| format!("cannot run {}: {e}", t[0]))?;
            if !o.status.success() {
                return Err(format!("{} {} failed", t[0], p.display()));
            }
            Ok(o.stdout)
        }
    }
}

fn guess_arch(p: &Path) -> Result<String, String> {
    let d = std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()))?;
    if d.len() > 0x3c && &d[0x38..0x3c] == b"ARMd" {
        return Ok("aarch64".into());
    }
    if d.len() > 20 && d.starts_with(b"\x7fELF") {
        return Ok(if u16::from_le_bytes([d[18], d[19]]) == 183 { "aarch64" } else { "x86_64" }.into());
    }
    if d.len() > 0x206 && &d[0x202..0x206] == b"HdrS" {
        return Ok("x86_64".into());
    }
    Err(format!("{}: cannot tell the architecture; pass --arch", p.display()))
}

/// The qemu command line for a prepared kernel.
pub fn qemu_command(p: &Prepared) -> Command {
    let s = &p.spec;
    let mut append = vec!["quiet".to_string(), "panic=-1".into(), format!("madcheck.generate={}", s.generate), format!("madcheck.seed={}", s.seed)];
    append.push("madcheck.jobs=1".into());
    if s.ktap {
        append.push("madcheck.format=ktap".into());
    }
    if let Some(f) = &s.files {
        append.push(format!("madcheck.files={f}"));
    }
    let mut extra: Vec<String> = Vec::new();
    if s.corpus {
        extra.extend(["--cases".into(), "/madcheck/corpus".into()]);
    }
    for i in &s.scenarios {
        extra.extend(["--scenario".into(), i.to_string()]);
    }
    if s.emit_goldens {
        extra.push("--emit-goldens".into());
    }
    extra.extend(s.extra_args.iter().cloned());
    if !extra.iter().any(|a| a == "--timeout-ms") {
        // Under TCG a guest runs 10-50x slower than the host, and slower still while the machine is busy:
        // 32-bit ARM (4 scenarios/s on the loaded 2-core machine) overran the worker's 10 s timeout with the
        // corpus's largest case, each_advice_from_each_kind_alone_and_up_to_a_hole, while goldens were
        // recorded (2026-12-07), and x86_64 7.1.13 did with collapse_in_a_prot_none_vma_succeeds twice in
        // a row during the series run (load 10-16). The timeout is there to end a hung worker, so guests
        // get 60 s.
        extra.extend(["--timeout-ms".into(), "60000".into()]);
    }
    if !extra.is_empty() {
        append.push(format!("madcheck.args={}", extra.join(",")));
    }
    let mut c;
    if p.arch == "x86_64" {
        c = Command::new("qemu-system-x86_64");
        c.args(["-accel", "tcg", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        if Path::new("/usr/share/qemu/qboot.rom").exists() {
            c.args(["-bios", "/usr/share/qemu/qboot.rom"]);
        }
        append.insert(0, "console=ttyS0".into());
        append.push("madcheck.exit=debugexit".into());
    } else if p.arch == "powerpc64le" {
        // pseries (sPAPR): the console is the hypervisor virtual terminal hvc0, which -serial stdio
        // feeds; there is no exit device, so the guest powers off (RTAS power-off, qemu exits 0) and the
        // console's MADCHECK-RESULT line is the verdict. The guest runs the hash MMU (`disable_radix`,
        // as PowerVM LPARs do on POWER9): under qemu TCG's radix MMU, a write after MADV_FREE was
        // sometimes not seen as dirty (order-dependent; the same kernel and cases under hash agree with
        // the model; that guest has no THP and no hugetlb page size), see docs/findings.md item 10.
        // `--append disable_radix=no` comes later on the command line and wins, for the radix MMU.
        c = Command::new("qemu-system-ppc64");
        c.args(["-M", "pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off", "-cpu", "power9"]);
        append.insert(0, "console=hvc0".into());
        append.insert(1, "disable_radix".into());
        append.push("madcheck.exit=poweroff".into());
    } else if p.arch == "s390x" {
        // s390-ccw-virtio: the SCLP console (ttysclp0) behind -serial stdio; SIGP stop on power-off makes
        // qemu exit 0, so as on ppc64 the console line is the verdict.
        c = Command::new("qemu-system-s390x");
        c.args(["-M", "s390-ccw-virtio", "-cpu", "max"]);
        append.insert(0, "console=ttysclp0".into());
        append.push("madcheck.exit=poweroff".into());
    } else if p.arch == "riscv64" {
        // virt with OpenSBI as firmware (qemu's copy or Debian's `opensbi` package): the
        // 16550 console ttyS0; power-off goes through SBI's system reset, qemu exits 0, so the console
        // line is the verdict, as on ppc64 and s390x.
        c = Command::new("qemu-system-riscv64");
        c.args(["-M", "virt", "-cpu", "rv64"]);
        c.arg("-bios").arg(riscv_firmware().unwrap_or_else(|| PathBuf::from("default")));
        append.insert(0, "console=ttyS0".into());
        append.push("madcheck.exit=poweroff".into());
    } else if p.arch == "armhf" {
        // virt with a Cortex-A15 (ARMv7 with LPAE and the virtualization extensions, what Debian's
        // armmp and armmp-lpae kernels both run on); qemu builds the device tree. The PL011 console
        // ttyAMA0; power-off is PSCI SYSTEM_OFF and qemu exits 0, so the console line is the verdict.
        c = Command::new("qemu-system-arm");
        c.args(["-M", "virt", "-cpu", "cortex-a15"]);
        append.insert(0, "console=ttyAMA0".into());
        append.push("madcheck.exit=poweroff".into());
    } else {
        c = Command::new("qemu-system-aarch64");
        // -cpu max: the 16K-page kernel needs a CPU with the 16K granule (cortex-a57 hangs silently).
        c.args(["-M", "virt", "-cpu", "max,pauth-impdef=on", "-semihosting-config", "enable=on,target=native,userspace=on"]);
        append.insert(0, "console=ttyAMA0".into());
        append.push("madcheck.exit=semihost".into());
    }
    append.extend(s.append.iter().cloned());
    if let Some(cpu) = &s.cpu {
        // The last -cpu wins: this replaces the machine's default or the one chosen above.
        c.args(["-cpu", cpu]);
    }
    // 64K pages: the hugetlb pool a run holds is 256 MiB (4,096 base pages, simulator::observe::
    // pool_free_unreserved), and an arena of up to 8,192 pages is 512 MiB; 1 GiB would leave the kernel
    // too little, so a 64K-page guest gets at least 2 GiB (qemu allocates it lazily on the host).
    let memory_mib = if p.label.ends_with("-64k") { s.memory_mib.max(2048) } else { s.memory_mib };
    c.args(["-m", &memory_mib.to_string(), "-smp", "1", "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"]);
    c.arg("-kernel").arg(&p.image).arg("-initrd").arg(&p.initrd).arg("-append").arg(append.join(" "));
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn kv(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace().skip(1).filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Boot, stream the console to a log (and stdout when echoing), and read the result.
pub fn boot(p: &Prepared) -> Outcome {
    let logs = qemu_dir().join("logs");
    let reports = qemu_dir().join("reports");
    let _ = std::fs::create_dir_all(&logs);
    let _ = std::fs::create_dir_all(&reports);
    let log = logs.join(format!("{}.log", p.label));
    let start = Instant::now();
    let mut o = Outcome {
        label: p.label.clone(),
        exit: 1,
        result: BTreeMap::new(),
        guest: BTreeMap::new(),
        report: None,
        log: log.clone(),
        elapsed: Duration::ZERO,
        error: None,
    };
    let mut cmd = qemu_command(p);
    let shown = format!("{cmd:?}");
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            o.error = Some(format!("cannot run {shown}: {e}"));
            return o;
        }
    };
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    // A watchdog kills qemu when the run overstays its timeout.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timeout = p.spec.timeout;
    let d2 = done.clone();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while !d2.load(std::sync::atomic::Ordering::Relaxed) {
            if t0.elapsed() > timeout {
                // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
                unsafe { libc_kill(pid as i32, 9) };
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut logf = std::fs::File::create(&log).ok();
    let mut in_report = false;
    let mut report_json = String::new();
    let mut tail: Vec<String> = Vec::new();
    let mut reader = BufReader::new(stdout);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']).to_string();
        if let Some(f) = logf.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        if line == "MADCHECK-REPORT-BEGIN" {
            in_report = true;
            continue;
        }
        if line == "MADCHECK-REPORT-END" {
            in_report = false;
            continue;
        }
        if in_report {
            report_json.push_str(&line);
            continue;
        }
        if line.starts_with("MADCHECK-RESULT ") {
            o.result = kv(&line);
        }
        if line.starts_with("MADCHECK-GUEST ") {
            o.guest = kv(&line);
        }
        if line.starts_with("MADCHECK-GOLDEN") {
            // Emitted goldens (thousands of base64 lines): only in the log, which `bless` reads.
            continue;
        }
        if p.spec.echo {
            println!("{line}");
        }
        tail.push(line);
        if tail.len() > 30 {
            tail.remove(0);
        }
    }
    let status = child.wait();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let qemu_err = err_thread.join().unwrap_or_default();
    o.elapsed = start.elapsed();
    if !report_json.is_empty() {
        let r = reports.join(format!("{}.json", p.label));
        if std::fs::write(&r, &report_json).is_ok() {
            o.report = Some(r);
        }
    }
    let rc = status.ok().map(util::code).unwrap_or(-1);
    match o.result.get("exit").and_then(|v| v.parse::<i32>().ok()) {
        Some(code) => {
            o.exit = code;
            // Cross-check the exit device: x86 isa-debug-exit gives 2*code+1, arm64 semihosting gives code,
            // a power-off (ppc64, s390x) gives 0 whatever the code.
            let want = match p.arch.as_str() {
                "x86_64" => 2 * code + 1,
                "aarch64" => code,
                _ => 0,
            };
            if rc != want {
                o.error = Some(format!("the console says exit {code} but qemu exited {rc} (expected {want})"));
                o.exit = 1;
            }
            if let Some(e) = o.result.get("error") {
                o.error = Some(format!("guest: {e}"));
            }
        }
        None => {
            let why = if o.elapsed >= timeout { format!("timed out after {}s", timeout.as_secs()) } else { format!("qemu exited {rc}") };
            o.error = Some(format!(
                "no MADCHECK-RESULT line on the console ({why}; boot failure or kernel panic); last lines:\n{}\n{}",
                tail.join("\n"),
                qemu_err.trim()
            ));
            o.exit = 1;
        }
    }
    o
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_closure_orders_dependencies_first() {
        let dep = "kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz\n\
                   kernel/fs/jbd2/jbd2.ko.xz:\nkernel/fs/mbcache.ko.xz:\nkernel/lib/crc16.ko.xz:\n\
                   kernel/drivers/block/loop.ko.xz:\n";
        let m = module_closure(dep, "kernel/lib/crc16.ko\n", &["ext4", "loop"]).unwrap();
        assert_eq!(m, ["kernel/fs/jbd2/jbd2.ko.xz", "kernel/fs/mbcache.ko.xz", "kernel/fs/ext4/ext4.ko.xz", "kernel/drivers/block/loop.ko.xz"]);
        assert!(module_closure(dep, "", &["btrfs"]).is_err());
    }

    #[test]
    fn cpio_is_newc() {
        let p = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        write_cpio(&p, &[("init".into(), 0o100755, b"hi".to_vec())]).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert!(b.starts_with(b"070701"));
        assert_eq!(b.len() % 4, 0);
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
        std::fs::remove_file(&p).unwrap();
    }
}
