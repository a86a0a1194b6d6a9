//! `cargo xtask compare --kernels A,B [--arch X] [--generate N] [--seed S] [--no-build]`: the same
//! generated scenarios on two kernels (`host`, or Debian kernels under qemu as `cargo xtask qemu`
//! resolves them), compared on the kernels' own observations point by point (`madcheck compare`).
//!
//! Invariant: each kernel records an observation set (`madcheck run --record-observations`), which a
//! guest prints on its console like its report; a first pass records digests of every point, a second
//! pass records the differing scenarios in full so the table can name the fields. The comparison and
//! its explanation (the two kernels' models differ there, naming the behaviours) is madcheck's; xtask
//! only boots, copies files and passes exit codes through (0 no unexplained difference, 1 otherwise).

use crate::qemu::{self, Spec};
use crate::util;
use std::path::PathBuf;
use std::process::Command;

/// Where compare and bisect keep their observation sets and reports.
pub fn hunt_dir() -> PathBuf {
    util::target_dir().join("hunt")
}

/// A kernel to observe: `host`, or anything `cargo xtask qemu --kernel` takes.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub name: String,
    pub arch: Option<String>,
}

impl Kernel {
    pub fn label(&self) -> String {
        let base = self.name.rsplit('/').next().unwrap_or(&self.name);
        base.trim_start_matches("linux-image-").trim_end_matches("-unsigned").to_string()
    }
}

/// Run `madcheck run ARGS --report FILE` on a kernel (the guest's report is the set, wrapped), with
/// `files` in the guest's /madcheck/extra (on the host, `files` are written under target/hunt/extra and
/// the arguments' `/madcheck/extra/` prefix is rewritten). `Err` when the kernel did not boot or
/// produced no report (bisect counts it as untestable, like git bisect's 125).
pub fn observe(k: &Kernel, tag: &str, args: &[String], files: &[(String, Vec<u8>)], build: bool) -> Result<PathBuf, String> {
    let dir = hunt_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let out = dir.join(format!("{}-{tag}.json", k.label()));
    let _ = std::fs::remove_file(&out);
    if k.name == "host" {
        let extra = dir.join("extra");
        std::fs::create_dir_all(&extra).map_err(|e| e.to_string())?;
        for (name, data) in files {
            std::fs::write(extra.join(name), data).map_err(|e| e.to_string())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(extra.join(name), std::fs::Permissions::from_mode(0o755));
            }
        }
        let prefix = format!("{}/", extra.display());
        let args: Vec<String> = args.iter().map(|a| a.replace("/madcheck/extra/", &prefix)).collect();
        let mut c = Command::new(util::target_dir().join("release/madcheck"));
        c.arg("run").args(&args).arg("--report").arg(&out);
        let rc = util::status(c)?;
        if rc != 0 || !out.exists() {
            return Err(format!("madcheck on the host exited {rc} without a report"));
        }
        return Ok(out);
    }
    let mut spec = Spec::for_kernel(&k.name, k.arch.clone());
    spec.build = build;
    spec.extra_args = args.to_vec();
    spec.extra_files = files.to_vec();
    eprintln!("xtask: booting {} ({tag})", k.label());
    let p = qemu::prepare(&spec)?;
    let o = qemu::boot(&p);
    if let Some(e) = &o.error {
        return Err(format!("{}: {e} (console log {})", k.label(), o.log.display()));
    }
    let rep = o.report.ok_or(format!("{}: the guest printed no report (console log {})", k.label(), o.log.display()))?;
    std::fs::copy(&rep, &out).map_err(|e| format!("copy {}: {e}", rep.display()))?;
    eprintln!("xtask: {} ({tag}) done in {:.0}s", k.label(), o.elapsed.as_secs_f64());
    Ok(out)
}

/// `madcheck compare A B --report R`: its stdout (the table, without the machine-readable lines) and
/// exit code; [`tagged`] reads the machine-readable lines.
pub fn madcheck_compare(a: &PathBuf, b: &PathBuf, report: &PathBuf) -> Result<(String, String, i32), String> {
    let o = Command::new(util::target_dir().join("release/madcheck"))
        .arg("compare")
        .arg(a)
        .arg(b)
        .arg("--report")
        .arg(report)
        .output()
        .map_err(|e| format!("cannot run madcheck compare: {e}"))?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    if !o.status.success() && o.status.code() != Some(1) {
        return Err(format!("madcheck compare failed: {}{}", text, String::from_utf8_lossy(&o.stderr)));
    }
    let shown: String = text.lines().filter(|l| !l.starts_with("MADCHECK-")).map(|l| format!("{l}\n")).collect();
    Ok((shown, text, o.status.code().unwrap_or(1)))
}

/// The words of every `MADCHECK-<key> ...` line of madcheck's output, a line each.
pub fn tagged(text: &str, key: &str) -> Vec<Vec<String>> {
    let prefix = format!("MADCHECK-{key}");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|rest| rest.is_empty() || rest.starts_with(' '))
        .map(|rest| rest.split_whitespace().map(String::from).collect())
        .collect()
}

/// The generated scenarios `(seed, index)` of a `MADCHECK-DIFFERING` line.
pub fn differing(text: &str) -> Vec<(u64, u64)> {
    tagged(text, "DIFFERING")
        .concat()
        .iter()
        .filter_map(|x| {
            let (s, i) = x.split_once(':')?;
            Some((s.parse().ok()?, i.parse().ok()?))
        })
        .collect()
}

/// The two passes on two kernels: digests of `generate` scenarios, then the differing ones (at most
/// [`FULL_PASS_MAX`]) in full, each run `repeat` times. Returns the two full sets (or the digest sets
/// when nothing differs), the differing scenarios, and the digest pass's table header.
pub fn two_passes(ka: &Kernel, kb: &Kernel, generate: u64, seed: u64, repeat: usize, build: bool, extra: &[String]) -> Result<Passes, String> {
    let mut args: Vec<String> = ["--record-observations", "digest", "--generate", &generate.to_string(), "--seed", &seed.to_string()].map(String::from).to_vec();
    args.extend(extra.iter().cloned());
    let ra = observe(ka, &format!("digest-{seed}-{generate}"), &args, &[], build)?;
    let rb = observe(kb, &format!("digest-{seed}-{generate}"), &args, &[], false)?;
    let report = hunt_dir().join(format!("compare-{}-{}.json", ka.label(), kb.label()));
    let (digest_table, text, _) = madcheck_compare(&ra, &rb, &report)?;
    let differing = differing(&text);
    if differing.is_empty() {
        return Ok(Passes { a: ra, b: rb, differing, digest_header: digest_table.lines().next().unwrap_or("").to_string(), report });
    }
    let mut args: Vec<String> = ["--record-observations", "full", "--repeat", &repeat.to_string(), "--seed", &seed.to_string()].map(String::from).to_vec();
    args.extend(extra.iter().cloned());
    for (_, i) in differing.iter().take(FULL_PASS_MAX) {
        args.extend(["--scenario".to_string(), i.to_string()]);
    }
    let (fa, fb) = (observe(ka, "full", &args, &[], false)?, observe(kb, "full", &args, &[], false)?);
    Ok(Passes { a: fa, b: fb, differing, digest_header: digest_table.lines().next().unwrap_or("").to_string(), report })
}

pub struct Passes {
    pub a: PathBuf,
    pub b: PathBuf,
    pub differing: Vec<(u64, u64)>,
    /// `madcheck compare: A (arch) vs B (arch), N scenarios` of the digest pass: N is every scenario.
    pub digest_header: String,
    pub report: PathBuf,
}

pub fn build_host(build: bool) -> Result<(), String> {
    if !build {
        return Ok(());
    }
    let mut b = util::cargo();
    b.args(["build", "--release", "-p", "harness", "--bin", "madcheck"]);
    match util::status(b)? {
        0 => Ok(()),
        rc => Err(format!("building madcheck failed (exit {rc})")),
    }
}

/// `--destructive` for the guests when every kernel compared is a guest (the default there: guests are
/// thrown away), nothing when the host is one of them (it never runs those classes, and both sides must
/// run the same scenarios). `--destructive` given with the host is an error.
pub fn destructive_args(kernels: &[&Kernel], asked: Option<bool>) -> Result<Vec<String>, String> {
    let host = kernels.iter().any(|k| k.name == "host");
    match (asked, host) {
        (Some(true), true) => Err("--destructive: the host never runs destructive scenarios (hugetlb with fork or mremap); compare guests only".into()),
        (Some(false), _) | (None, true) => Ok(Vec::new()),
        (_, false) => Ok(vec!["--destructive".into()]),
    }
}

/// How many differing scenarios the second pass records in full (each is a `--scenario` on the kernel
/// command line, which is short).
pub const FULL_PASS_MAX: usize = 16;

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut kernels = Vec::new();
    let (mut arch, mut generate, mut seed, mut build) = (None, 200u64, 1u64, true);
    let mut destructive = None;
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--kernels" => kernels = flags.value(&f)?.split(',').map(String::from).collect(),
            "--arch" => arch = Some(flags.value(&f)?),
            "--generate" => generate = flags.value(&f)?.parse().map_err(|_| "--generate: not a number")?,
            "--seed" => seed = flags.value(&f)?.parse().map_err(|_| "--seed: not a number")?,
            "--no-build" => build = false,
            "--destructive" => destructive = Some(true),
            "--no-destructive" => destructive = Some(false),
            _ => return Err(format!("unknown argument {:?} (usage: cargo xtask compare --kernels A,B [--arch X] [--generate N] [--seed S] [--no-destructive])", f.raw)),
        }
    }
    let [a, b] = kernels.as_slice() else { return Err("--kernels takes two kernels: A,B (host or a Debian kernel)".into()) };
    let (ka, kb) = (Kernel { name: a.clone(), arch: arch.clone() }, Kernel { name: b.clone(), arch: arch.clone() });
    let extra = destructive_args(&[&ka, &kb], destructive)?;
    build_host(build)?;
    let p = two_passes(&ka, &kb, generate, seed, 1, build, &extra)?;
    let (shown, _, code) = madcheck_compare(&p.a, &p.b, &p.report)?;
    // The full pass holds only the differing scenarios; the digest pass's header counts them all.
    println!("digest pass: {}; {} differ", p.digest_header, p.differing.len());
    print!("{shown}");
    if p.differing.len() > FULL_PASS_MAX {
        println!("({} more differing scenarios are in the digest pass; only {FULL_PASS_MAX} were recorded in full)", p.differing.len() - FULL_PASS_MAX);
    }
    let report = p.report;
    println!("report: {}", report.display());
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_run_destructive_scenarios_unless_the_host_is_compared() {
        let k = |n: &str| Kernel { name: n.into(), arch: None };
        let (g1, g2, host) = (k("6.1"), k("6.12"), k("host"));
        assert_eq!(destructive_args(&[&g1, &g2], None).unwrap(), ["--destructive"]);
        assert!(destructive_args(&[&g1, &g2], Some(false)).unwrap().is_empty());
        assert!(destructive_args(&[&host, &g2], None).unwrap().is_empty());
        assert!(destructive_args(&[&host, &g2], Some(true)).is_err());
    }
}
