//! PID 1 mode: `madcheck` as `/init` of a bare initramfs under qemu (see docs/qemu.md).
//!
//! Invariant: PID 1 never runs scenarios itself and never returns. It sets the machine up (consoles,
//! /dev (devtmpfs), /proc, /sys, /tmp, and an ext4 scratch disk when the initramfs carries the modules for one), runs the
//! ordinary `madcheck run` as a child process (whose workers re-execute /init, and are not PID 1), then
//! prints the report between markers on the console and powers the machine off with an exit status the
//! host can read. Any failure along the way still ends in the markers and a non-zero status, because qemu
//! itself exits 0 after a poweroff and after a kernel panic alike.
//!
//! Console contract (the host strips `\r`):
//! ```text
//! MADCHECK-GUEST kernel=6.1.0-57-amd64 kernel_version=6.1.192 ...  (one line, key=value)
//! ...the run's own stdout: the human report, or KTAP with `madcheck.format=ktap`...
//! MADCHECK-REPORT-BEGIN
//! {"guest":{...},"report":{...the JSON report...}}         (one line)
//! MADCHECK-REPORT-END
//! MADCHECK-RESULT exit=0 scenarios=2001 diverge=0 ...      (one line, key=value; always last)
//! ```
//! The exit status is 0 (all agree), 1 (divergence or failure) or 2 (bad input), as for `madcheck run`.
//! With `madcheck.exit=debugexit` (x86_64, `-device isa-debug-exit,iobase=0xf4,iosize=0x04`) qemu exits
//! with `2*status+1`; with `madcheck.exit=semihost` (arm64, `-semihosting-config
//! enable=on,target=native,userspace=on`) with `status`. Otherwise the machine powers off (qemu exit 0),
//! and the host must read MADCHECK-RESULT.
//!
//! Kernel command line options (all optional): `madcheck.generate=N`, `madcheck.seed=S`,
//! `madcheck.format=human|ktap`, `madcheck.jobs=N`, `madcheck.timeout_ms=MS`,
//! `madcheck.exit=debugexit|semihost|poweroff`, `madcheck.files=ext4|tmpfs` (default ext4 when the
//! initramfs has `/madcheck/disk.sparse`), and `madcheck.args=a,b,c` for any further `run` arguments.
//!
//! Initramfs layout the host provides (all optional but /init): `/madcheck/kernel.config` (the kernel's
//! `.config`, since Debian kernels have no /proc/config.gz), `/madcheck/expected_divergences.json`,
//! `/madcheck/modules/NN-name.ko` (uncompressed, loaded in name order: the ext4 and loop modules with
//! their dependencies, taken from the same kernel package), `/madcheck/disk.sparse` (an empty ext4 image
//! in the sparse form below), `/madcheck/goldens/<profile>/host/<case>.snap` (recorded host goldens, passed
//! to the run as `--goldens /madcheck/goldens`, so named cases are checked against this kernel's profile).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

const CONFIG: &str = "/madcheck/kernel.config";
const EXPECTED: &str = "/madcheck/expected_divergences.json";
const MODULES: &str = "/madcheck/modules";
const SPARSE: &str = "/madcheck/disk.sparse";
const GOLDENS: &str = "/madcheck/goldens";
const REPORT: &str = "/tmp/madcheck-report.json";
const SCRATCH: &str = "/scratch";

/// Magic of the sparse disk image: then u64 LE image size, then records of (u64 offset, u32 length,
/// bytes) until end of file. Only non-zero blocks are stored, so a 256 MiB ext4 image costs ~100 KiB.
pub const SPARSE_MAGIC: &[u8; 8] = b"MCSPARS1";

/// Options from the kernel command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GuestOptions {
    pub run_args: Vec<String>,
    pub exit: String,
    pub files: Option<String>,
}

/// Turn `/proc/cmdline` into `madcheck run` arguments and the exit/files choices.
pub fn parse_cmdline(cmdline: &str) -> Result<GuestOptions, String> {
    let mut o = GuestOptions { exit: "poweroff".into(), ..GuestOptions::default() };
    for w in cmdline.split_ascii_whitespace() {
        let Some(rest) = w.strip_prefix("madcheck.") else { continue };
        let (k, v) = rest.split_once('=').ok_or_else(|| format!("kernel command line: {w:?} has no value"))?;
        match k {
            "generate" | "seed" | "jobs" | "format" => o.run_args.extend([format!("--{k}"), v.to_string()]),
            "timeout_ms" => o.run_args.extend(["--timeout-ms".to_string(), v.to_string()]),
            "args" => o.run_args.extend(v.split(',').filter(|a| !a.is_empty()).map(String::from)),
            "exit" if matches!(v, "debugexit" | "semihost" | "poweroff") => o.exit = v.to_string(),
            "files" if matches!(v, "ext4" | "tmpfs") => o.files = Some(v.to_string()),
            _ => return Err(format!("kernel command line: unknown or bad option {w:?}")),
        }
    }
    Ok(o)
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in paths")
}

fn errno_str() -> String {
    std::io::Error::last_os_error().to_string()
}

fn mount(src: &str, dir: &str, fstype: &str, data: &str) -> Result<(), String> {
    let _ = std::fs::create_dir_all(dir);
    let (s, d, t, o) = (cstr(src), cstr(dir), cstr(fstype), cstr(data));
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(s.as_ptr(), d.as_ptr(), t.as_ptr(), 0, o.as_ptr().cast()) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(format!("mount {fstype} on {dir}: {e}"));
        }
    }
    Ok(())
}

/// devtmpfs on /dev, once. Every guest needs it, whatever its scratch disk: the loop device of the ext4
/// disk, and /dev/null, which `std::process::Command::output` opens as the child's stdin (so without it
/// `run --exec` failed with ENOENT before the program ran; seen in every tmpfs-scratch guest, which
/// includes every 6.19.y-7.1.y kernel, whose packages carry no modules). The initramfs's own /dev (the
/// kernel's built-in /dev/console only) has no /dev/null.
fn dev() -> Result<(), String> {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    mount("devtmpfs", "/dev", "devtmpfs", "")
}

/// fds 0-2 on the console: the kernel opens /dev/console for init when the initramfs has it (Debian's
/// built-in initramfs does); otherwise mount devtmpfs and open it ourselves.
fn console() {
    // SAFETY: fcntl/open/dup2 on plain integers and a NUL-terminated path.
    unsafe {
        if libc::fcntl(1, libc::F_GETFD) >= 0 && libc::fcntl(2, libc::F_GETFD) >= 0 {
            return;
        }
        let _ = dev();
        let fd = libc::open(cstr("/dev/console").as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            for t in 0..3 {
                libc::dup2(fd, t);
            }
        }
    }
}

/// Load every module in /madcheck/modules, in name order. A module that is already there is fine.
fn load_modules() -> Result<usize, String> {
    let mut names: Vec<_> = match std::fs::read_dir(MODULES) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return Ok(0),
    };
    names.sort();
    for p in &names {
        let f = std::fs::File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?;
        let params = cstr("");
        // SAFETY: finit_module(fd, params, flags) with a valid fd and a NUL-terminated parameter string.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(format!("finit_module {}: {e}", p.display()));
            }
        }
    }
    Ok(names.len())
}

/// Write the sparse image out as a (sparse) file.
fn unpack_sparse(src: &str, dst: &str) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let data = std::fs::read(src).map_err(|e| format!("read {src}: {e}"))?;
    if data.len() < 16 || &data[..8] != SPARSE_MAGIC {
        return Err(format!("{src}: not a sparse disk image"));
    }
    let size = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let f = std::fs::File::create(dst).map_err(|e| format!("create {dst}: {e}"))?;
    f.set_len(size).map_err(|e| format!("truncate {dst}: {e}"))?;
    let mut i = 16;
    while i < data.len() {
        let off = u64::from_le_bytes(data.get(i..i + 8).ok_or("truncated record")?.try_into().unwrap());
        let len = u32::from_le_bytes(data.get(i + 8..i + 12).ok_or("truncated record")?.try_into().unwrap()) as usize;
        let bytes = data.get(i + 12..i + 12 + len).ok_or("truncated record")?;
        f.write_all_at(bytes, off).map_err(|e| format!("write {dst}: {e}"))?;
        i += 12 + len;
    }
    Ok(())
}

/// An ext4 scratch disk on a loop device, so disk-file scenarios see ext4 as on the host (rootfs is
/// tmpfs/ramfs, whose files are shmem and behave differently under REMOVE, PAGEOUT and readahead).
fn ext4_scratch() -> Result<String, String> {
    let n = load_modules()?;
    unpack_sparse(SPARSE, "/disk.img")?;
    const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
    const LOOP_SET_FD: libc::c_ulong = 0x4C00;
    let ctl = std::fs::OpenOptions::new().read(true).write(true).open("/dev/loop-control")
        .map_err(|e| format!("open /dev/loop-control: {e}"))?;
    // SAFETY: ioctl on an fd we own, no argument.
    let nr = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
    if nr < 0 {
        return Err(format!("LOOP_CTL_GET_FREE: {}", errno_str()));
    }
    let dev = format!("/dev/loop{nr}");
    // devtmpfs creates the node asynchronously.
    let mut tries = 0;
    let loopf = loop {
        match std::fs::OpenOptions::new().read(true).write(true).open(&dev) {
            Ok(f) => break f,
            Err(e) if tries < 200 => {
                let _ = e;
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(format!("open {dev}: {e}")),
        }
    };
    let img = std::fs::OpenOptions::new().read(true).write(true).open("/disk.img").map_err(|e| format!("open /disk.img: {e}"))?;
    // SAFETY: ioctl on fds we own; the argument is the backing fd.
    if unsafe { libc::ioctl(loopf.as_raw_fd(), LOOP_SET_FD as _, img.as_raw_fd()) } != 0 {
        return Err(format!("LOOP_SET_FD {dev}: {}", errno_str()));
    }
    mount(&dev, SCRATCH, "ext4", "")?;
    Ok(format!("ext4 (loop device, {n} modules from the kernel package)"))
}

fn kv_line(tag: &str, kv: &[(&str, String)]) -> String {
    let mut s = tag.to_string();
    for (k, v) in kv {
        s.push_str(&format!(" {k}={}", v.replace(char::is_whitespace, "_")));
    }
    s
}

/// The PID 1 program. Never returns.
pub fn pid1_main() -> ! {
    console();
    let mut setup_errors = Vec::new();
    if let Err(e) = dev() {
        setup_errors.push(e);
    }
    for (src, dir, fs) in [("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("tmpfs", "/tmp", "tmpfs")] {
        if let Err(e) = mount(src, dir, fs, "") {
            setup_errors.push(e);
        }
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    match parse_cmdline(&cmdline) {
        Ok(opts) => run_guest(&opts, &mut setup_errors),
        Err(e) => {
            println!("madcheck init: {e}");
            finish(2, &[("error", e)], &GuestOptions { exit: exit_from(&cmdline), ..Default::default() })
        }
    }
}

fn exit_from(cmdline: &str) -> String {
    cmdline.split_ascii_whitespace().find_map(|w| w.strip_prefix("madcheck.exit=")).unwrap_or("poweroff").to_string()
}

fn run_guest(opts: &GuestOptions, setup_errors: &mut Vec<String>) -> ! {
    let want_ext4 = match opts.files.as_deref() {
        Some("tmpfs") => false,
        Some(_) => true,
        None => Path::new(SPARSE).exists(),
    };
    let files = if want_ext4 {
        match ext4_scratch() {
            Ok(s) => s,
            Err(e) => {
                // Asked for ext4 and did not get it: a setup failure, not a silent tmpfs run.
                setup_errors.push(format!("ext4 scratch disk: {e}"));
                "none (ext4 setup failed)".into()
            }
        }
    } else {
        mount("tmpfs", SCRATCH, "tmpfs", "").map(|_| "tmpfs (no disk filesystem: disk-file scenarios are unsupported)".to_string())
            .unwrap_or_else(|e| { setup_errors.push(e); "none".into() })
    };
    // tmpfs files by path (`kind: tmpfs`) live in /dev/shm, as on a host; the guest's /dev (devtmpfs, or
    // the initramfs's own) has none. Should this fail, detection answers those scenarios Unsupported with
    // the reason (`KernelFacts::tmpfs_files_unavailable`).
    let _ = std::fs::create_dir_all(crate::host::detect::TMPFS_DIR);
    let _ = mount("tmpfs", crate::host::detect::TMPFS_DIR, "tmpfs", "");
    let (release, uname_v, machine) = uname();
    let ps = crate::host::sys::page_size();
    // The upstream version the run's model will use (Debian 6.1 releases carry it only in `uname -v`;
    // see KernelFacts::upstream_version): shown so a console log says which 6.1.y it booted.
    let (maj, min, sub) = simulator::kernel::KernelFacts::upstream_version(&release, &uname_v);
    let guest_kv = vec![
        ("kernel", release.clone()),
        ("kernel_version", format!("{maj}.{min}.{sub}")),
        ("arch", machine.clone()),
        ("page_size", ps.to_string()),
        // The byte order and word size this binary was built for, which is the guest's (it runs as
        // /init): the matrix's endian and word columns.
        ("endian", if cfg!(target_endian = "big") { "big" } else { "little" }.to_string()),
        ("word_bits", usize::BITS.to_string()),
        ("files", files.split(' ').next().unwrap_or("").to_string()),
        ("kernel_config", Path::new(CONFIG).exists().to_string()),
        // The workers (this binary) need the arena at 0x10000000 to be their lowest mapping, so the
        // early-stop smaps read sees it first: a static-pie binary loads high, a non-PIE one would not.
        ("lowest_mapping", lowest_mapping()),
        // How workers read their own PROT_NONE pages (`host::procmem`): `self` or `ptrace-helper`.
        ("proc_mem", crate::host::procmem::choose(ps).map(|(p, _)| p.name().to_string()).unwrap_or_else(|e| format!("error:{e}"))),
    ];
    println!("{}", kv_line("MADCHECK-GUEST", &guest_kv));
    if !setup_errors.is_empty() {
        for e in setup_errors.iter() {
            println!("madcheck init: setup error: {e}");
        }
        finish(1, &[("error", format!("setup: {}", setup_errors.join("; ")))], opts);
    }

    let exe = std::env::current_exe().unwrap_or_else(|_| "/init".into());
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(opts.run_args.iter().cloned());
    if Path::new(CONFIG).exists() {
        args.extend(["--kernel-config".into(), CONFIG.into()]);
    }
    if Path::new(EXPECTED).exists() {
        args.extend(["--expected".into(), EXPECTED.into()]);
    }
    if Path::new(GOLDENS).is_dir() {
        args.extend(["--goldens".into(), GOLDENS.into()]);
    }
    // A guest's report carries the unsupported set it would record (`cargo xtask bless --kernel` writes
    // it as the profile's expected set); guest runs are small, so the full list costs little.
    args.extend(["--report".into(), REPORT.into(), "--quiet".into(), "--record-unsupported".into()]);
    println!("madcheck init: {} {}", exe.display(), args.join(" "));
    let _ = std::io::stdout().flush();
    let status = std::process::Command::new(&exe).args(&args).env("TMPDIR", SCRATCH).status();
    let code = match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            println!("madcheck init: cannot run {}: {e}", exe.display());
            1
        }
    };
    let report: Option<serde_json::Value> = std::fs::read_to_string(REPORT).ok().and_then(|t| serde_json::from_str(&t).ok());
    let mut kv: Vec<(&str, String)> = Vec::new();
    match &report {
        Some(r) => {
            let num = |p: &str| r.pointer(p).map(|v| v.to_string()).unwrap_or_else(|| "?".into());
            kv.extend([
                ("scenarios", num("/scenarios")),
                ("planned", num("/scenarios_planned")),
                ("match", num("/verdicts/match")),
                ("diverge", num("/verdicts/diverge")),
                ("expected", num("/verdicts/expected_divergence")),
                ("unsupported", num("/verdicts/unsupported")),
                ("poisoned", num("/verdicts/poisoned")),
                ("infra", num("/verdicts/infra_error")),
                ("elapsed_s", num("/elapsed_s")),
                ("golden_checked", num("/golden_checked")),
                ("golden_mismatches", num("/golden_mismatches")),
                ("profile", r.pointer("/profile").and_then(|v| v.as_str()).unwrap_or("?").to_string()),
            ]);
            let guest: serde_json::Map<String, serde_json::Value> =
                guest_kv.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
            let mut g = guest;
            g.insert("files".into(), serde_json::Value::String(files.clone()));
            let whole = serde_json::json!({ "guest": g, "report": r });
            println!("MADCHECK-REPORT-BEGIN");
            println!("{whole}");
            println!("MADCHECK-REPORT-END");
        }
        None => kv.push(("error", "no report was written".into())),
    }
    kv.extend(guest_kv);
    finish(code, &kv, opts)
}

fn lowest_mapping() -> String {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split('-').next()).map(|a| format!("0x{a}")))
        .unwrap_or_else(|| "?".into())
}

/// `uname -r`, `uname -v`, `uname -m`.
fn uname() -> (String, String, String) {
    // SAFETY: a zeroed utsname is a valid out-parameter; the kernel NUL-terminates every field.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        let s = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        (s(&u.release), s(&u.version), s(&u.machine))
    }
}

/// Print the result line, flush, and leave the machine with `code`.
fn finish(code: i32, kv: &[(&str, String)], opts: &GuestOptions) -> ! {
    let mut all = vec![("exit", code.to_string())];
    all.extend(kv.iter().cloned());
    println!("{}", kv_line("MADCHECK-RESULT", &all));
    let _ = std::io::stdout().flush();
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    match opts.exit.as_str() {
        "debugexit" => debug_exit(code as u32),
        "semihost" => semihost_exit(code as u32),
        _ => {}
    }
    // SAFETY: PID 1 powering the machine off is the point.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    // PID 1 exiting panics the kernel; with panic=-1 and -no-reboot qemu still exits.
    std::process::exit(code)
}

/// x86: qemu's isa-debug-exit at port 0xf4 makes qemu exit with (code << 1) | 1.
#[cfg(target_arch = "x86_64")]
fn debug_exit(code: u32) {
    // SAFETY: ioperm grants the port; the out instruction only talks to the qemu device.
    unsafe {
        if libc::ioperm(0xf4, 4, 1) != 0 {
            println!("madcheck init: ioperm: {}", errno_str());
            return;
        }
        std::arch::asm!("out dx, eax", in("dx") 0xf4u16, in("eax") code);
    }
}
#[cfg(not(target_arch = "x86_64"))]
fn debug_exit(_code: u32) {}

/// arm64: semihosting SYS_EXIT with ADP_Stopped_ApplicationExit makes qemu exit with `code`. Only used
/// when the command line asks for it: without `-semihosting-config ...,userspace=on` it is SIGILL.
#[cfg(target_arch = "aarch64")]
fn semihost_exit(code: u32) {
    let block: [u64; 2] = [0x20026, code as u64];
    // SAFETY: the semihosting trap reads `block` (x1) and ends the VM.
    unsafe {
        std::arch::asm!("hlt #0xf000", inout("x0") 0x18u64 => _, in("x1") block.as_ptr(), options(nostack));
    }
}
#[cfg(not(target_arch = "aarch64"))]
fn semihost_exit(_code: u32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_becomes_run_arguments() {
        let o = parse_cmdline("console=ttyS0 quiet madcheck.generate=300 madcheck.seed=3 madcheck.format=ktap \
                               madcheck.exit=debugexit madcheck.args=--timeout-ms,5000 madcheck.files=tmpfs\n")
            .unwrap();
        assert_eq!(o.run_args, ["--generate", "300", "--seed", "3", "--format", "ktap", "--timeout-ms", "5000"]);
        assert_eq!((o.exit.as_str(), o.files.as_deref()), ("debugexit", Some("tmpfs")));
        assert!(parse_cmdline("madcheck.bogus=1").is_err());
        assert!(parse_cmdline("madcheck.exit=reboot").is_err());
        assert_eq!(parse_cmdline("root=/dev/sda").unwrap().exit, "poweroff");
    }

    #[test]
    fn sparse_images_unpack() {
        let dir = std::env::temp_dir().join(format!("madcheck-sparse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("s");
        let mut b = SPARSE_MAGIC.to_vec();
        b.extend(1u64.wrapping_shl(20).to_le_bytes());
        b.extend(8192u64.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend(b"abc");
        std::fs::write(&src, &b).unwrap();
        let dst = dir.join("d");
        unpack_sparse(src.to_str().unwrap(), dst.to_str().unwrap()).unwrap();
        let d = std::fs::read(&dst).unwrap();
        assert_eq!(d.len(), 1 << 20);
        assert_eq!(&d[8192..8195], b"abc");
        assert!(d[..8192].iter().all(|&x| x == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
