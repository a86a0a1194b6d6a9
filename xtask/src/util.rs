//! Shared plumbing: where the workspace is, how to call cargo, how to run the built madcheck.
//!
//! Invariant: the target directory is cargo's (CARGO_TARGET_DIR when set, else `<workspace>/target`), so
//! what xtask builds is exactly what it runs.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// The workspace root (xtask lives in `<root>/xtask`).
pub fn root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}

/// The cargo that launched us (`cargo xtask` sets CARGO), else `cargo` from PATH.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        _ => root().join("target"),
    }
}

/// Exit code of a finished child; death by signal maps to 128+signal, as a shell would.
pub fn code(st: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

pub fn status(mut c: Command) -> Result<i32, String> {
    let shown = format!("{c:?}");
    c.status().map(code).map_err(|e| format!("cannot run {shown}: {e}"))
}

/// `cargo build --release -p harness --bin madcheck`, then replace this process with
/// `target/release/madcheck <sub> args...` (same cwd, so relative paths in args mean what the user meant).
pub fn build_and_exec_madcheck(sub: &str, args: &[String], build: bool) -> Result<i32, String> {
    if build {
        let mut b = cargo();
        b.args(["build", "--release", "-p", "harness", "--bin", "madcheck"]);
        let rc = status(b)?;
        if rc != 0 {
            eprintln!("xtask: building madcheck failed (exit {rc}); fix the build, then rerun");
            return Ok(rc);
        }
    }
    let exe = target_dir().join("release").join("madcheck");
    let mut c = Command::new(&exe);
    c.arg(sub).args(args);
    use std::os::unix::process::CommandExt;
    let e = c.exec();
    Err(format!("cannot run {}: {e}", exe.display()))
}

/// A JSON string literal (xtask writes its JSON reports by hand: std only).
pub fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
