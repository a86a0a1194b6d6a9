//! `cargo xtask repro CASE [--expect model|FILE] [--out FILE.c] [--run] [--no-build]`: write the standalone
//! C99 reproducer of a case (`madcheck repro`), by default to `target/repro/<stem>.c`; with `--run`,
//! also compile it with `gcc -std=c99 -O2 -static` and run it, passing its exit code through (0 every
//! point matches, 1 a difference, 125 cannot test here).
//!
//! Invariant: xtask knows nothing of scenarios; the C comes from the built `madcheck`.

use crate::util;
use std::path::PathBuf;
use std::process::Command;

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut case: Option<String> = None;
    let mut out: Option<PathBuf> = None;
    let (mut run, mut build) = (false, true);
    let mut forward: Vec<String> = Vec::new();
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--run" => run = true,
            "--no-build" => build = false,
            "--out" => out = Some(PathBuf::from(flags.value(&f)?)),
            "--expect" | "--mutate" | "--profile-facts" => {
                let v = flags.value(&f)?;
                forward.extend([f.name.to_string(), v]);
            }
            n if n.starts_with("--") => return Err(format!("unknown flag {n} (usage: cargo xtask repro CASE [--expect model|FILE] [--out FILE.c] [--run])")),
            _ if case.is_none() => case = Some(f.raw.clone()),
            _ => return Err(format!("unexpected argument {:?}: one CASE file only", f.raw)),
        }
    }
    let case = case.ok_or("usage: cargo xtask repro CASE [--expect model|FILE] [--out FILE.c] [--run]")?;
    let stem = std::path::Path::new(&case).file_stem().and_then(|s| s.to_str()).unwrap_or("case").to_string();
    let out = out.unwrap_or_else(|| util::target_dir().join("repro").join(format!("{stem}.c")));
    if build {
        let mut b = util::cargo();
        b.args(["build", "--release", "-p", "harness", "--bin", "madcheck"]);
        let rc = util::status(b)?;
        if rc != 0 {
            return Ok(rc);
        }
    }
    let exe = util::target_dir().join("release").join("madcheck");
    let mut c = Command::new(&exe);
    c.args(["repro", "--case", &case, "--out"]).arg(&out).args(&forward);
    let rc = util::status(c)?;
    if rc != 0 {
        return Ok(rc);
    }
    eprintln!("xtask repro: {} (build: gcc -std=c99 -O2 -static -o repro {})", out.display(), out.display());
    if !run {
        return Ok(0);
    }
    let bin = out.with_extension("");
    let mut cc = Command::new("gcc");
    cc.args(["-std=c99", "-O2", "-static", "-o"]).arg(&bin).arg(&out);
    let rc = util::status(cc)?;
    if rc != 0 {
        return Err(format!("gcc failed on {} (exit {rc})", out.display()));
    }
    util::status(Command::new(&bin))
}
