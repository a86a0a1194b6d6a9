//! `cargo xtask test [args...]`: the test suite as CI runs it: `cargo test --workspace --release` (all
//! test binaries, no fail-fast, so one failure does not hide the others) with
//! `INSTA_UPDATE=no`, so a changed snapshot fails instead of being written. Extra args go to cargo test.
//! The test binaries' output passes through line by line; at the end one line adds up every binary's
//! `test result:` line (`tests: N passed, N failed, N ignored`), since cargo's own last line is the
//! summary of an empty doc-test binary.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut c = crate::util::cargo();
    c.args(["test", "--workspace", "--release", "--no-fail-fast"]).args(args).env("INSTA_UPDATE", "no");
    c.stdout(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot run cargo test: {e}"))?;
    let mut totals = Totals::default();
    let out = std::io::stdout();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("reading cargo test's output: {e}"))?;
        totals.add(&line);
        let mut o = out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }
    let rc = crate::util::code(child.wait().map_err(|e| format!("waiting for cargo test: {e}"))?);
    println!("tests: {} passed, {} failed, {} ignored", totals.passed, totals.failed, totals.ignored);
    if rc != 0 {
        eprintln!("xtask test: failed (exit {rc}); rerun with `cargo xtask test`, or one crate with `cargo test --release -p <crate>`");
    } else if totals.passed == 0 {
        eprintln!("xtask test: cargo test exited 0 but no test passed");
        return Ok(1);
    }
    Ok(rc)
}

/// Sums of the `test result: ok. 17 passed; 0 failed; 2 ignored; ...` lines (libtest's and the golden
/// test's `golden test result:`).
#[derive(Default, Debug, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some((_, rest)) = line.split_once("test result: ") else { return };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn result_lines_add_up() {
        let mut t = Totals::default();
        t.add("test result: ok. 17 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.35s");
        t.add("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s");
        t.add("golden test result: ok. 5 passed; 0 failed");
        t.add("running 17 tests");
        assert_eq!(t, Totals { passed: 25, failed: 1, ignored: 2 });
    }
}
