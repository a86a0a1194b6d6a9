//! `cargo xtask bench [args...]`: build madcheck in release and the C floor (`cc -O2`), then run
//! `madcheck bench --floor <floor> args...`, which measures the floor on every CPU right before and right
//! after madcheck and prints the ratios.
//!
//! The floor source is `../shared/spec/floor/scen_min.c` when the project's shared directory sits next
//! to the repository, else the vendored copy `bench/floor/scen_min.c` (with `bench/floor/xxhash.h`).
//! `--no-floor` skips it; an explicit `--floor EXE` is passed through unchanged.

use std::path::PathBuf;
use std::process::Command;

/// `--no-build` skips the cargo build (the binary must already exist); `--no-floor` skips the C floor;
/// everything else goes to madcheck.
pub fn main(args: &[String]) -> Result<i32, String> {
    let (mine, mut rest) = crate::args::take_switches(args, &["--no-build", "--no-floor"]);
    let build = !mine.iter().any(|a| a == "--no-build");
    let want_floor = !mine.iter().any(|a| a == "--no-floor") && !rest.iter().any(|a| a == "--floor" || a.starts_with("--floor="));
    if want_floor {
        let exe = build_floor()?;
        rest.insert(0, exe.display().to_string());
        rest.insert(0, "--floor".into());
    }
    crate::util::build_and_exec_madcheck("bench", &rest, build)
}

/// Compile the floor into `target/floor/scen_min`; its path.
fn build_floor() -> Result<PathBuf, String> {
    let root = crate::util::root();
    let vendored = root.join("bench/floor");
    let shared = root.join("../shared/spec/floor/scen_min.c");
    let src = if shared.is_file() { shared } else { vendored.join("scen_min.c") };
    if !src.is_file() {
        return Err(format!("the C floor source {} is missing", src.display()));
    }
    let out_dir = crate::util::target_dir().join("floor");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("create {}: {e}", out_dir.display()))?;
    let exe = out_dir.join("scen_min");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut c = Command::new(&cc);
    // The vendored xxhash.h comes first, so the floor builds without libxxhash-dev.
    c.arg("-O2").arg("-I").arg(&vendored).arg("-o").arg(&exe).arg(&src);
    eprintln!("xtask: building the C floor: {cc} -O2 -I {} -o {} {}", vendored.display(), exe.display(), src.display());
    let rc = crate::util::status(c).map_err(|e| format!("{e}; `cargo xtask bench --no-floor` runs without the floor"))?;
    if rc != 0 {
        return Err(format!("building the C floor failed (exit {rc}); `cargo xtask bench --no-floor` runs without it"));
    }
    Ok(exe)
}
