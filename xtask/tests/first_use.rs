//! What a new user meets first in `cargo xtask` (issue 16): `--help`/`-h` on every command prints its
//! usage and runs nothing, an unknown command is a usage error, and a non-UTF-8 argument is exit 2 with
//! a message, not a panic. (`run` and `bench` forward `--help` to madcheck, whose own test covers it:
//! harness/tests/new_user.rs.)

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

fn xtask(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().expect("xtask runs")
}

fn s(x: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(x)
}

#[test]
fn help_on_every_command_prints_usage_and_runs_nothing() {
    let o = xtask(&[s("--help")]);
    assert_eq!(o.status.code(), Some(0));
    let top = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(top.starts_with("usage: cargo xtask <command>"), "{top}");
    let commands: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("commands:"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| !matches!(*c, "run" | "bench"))
        .collect();
    assert!(commands.len() >= 8, "{top}");
    for c in commands {
        for h in ["--help", "-h"] {
            let start = std::time::Instant::now();
            let o = xtask(&[s(c), s(h)]);
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(o.status.code(), Some(0), "{c} {h}: {out}{}", String::from_utf8_lossy(&o.stderr));
            assert!(out.starts_with(&format!("usage: cargo xtask {c}")), "{c} {h}: {out}");
            // Nothing ran: no cargo build, no qemu, no download (each of those takes seconds at least).
            assert!(o.stderr.is_empty(), "{c} {h} wrote to stderr: {}", String::from_utf8_lossy(&o.stderr));
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "{c} {h} took {:?}", start.elapsed());
        }
    }
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let o = xtask(&[s("frobnicate")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown command \"frobnicate\""));
}

#[test]
fn a_non_utf8_argument_is_exit_2_not_a_panic() {
    let o = xtask(&[s("run"), s("--case"), std::ffi::OsStr::from_bytes(b"/tmp/\xff.json")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not valid UTF-8") && !err.contains("panicked"), "{err}");
}
