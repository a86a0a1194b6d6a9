//! `madcheck run --format ktap` read back by the kernel's own KTAP parser
//! (`tools/testing/kunit/kunit_parser.py` from the Debian linux-source-6.12 tree), with the pass, fail and
//! skip counts checked against the run's JSON report.
//!
//! The parser is found at `$KUNIT_DIR` or `/opt/linux-kunit/tools/testing/kunit` (where `.ci/run` puts
//! it) and needs `python3`. When either is missing the test is skipped with a message naming what is
//! missing and how to install it, so `cargo xtask test` works on a machine set up only for Rust; CI sets
//! `MADCHECK_REQUIRE_ALL_TOOLS=1`, which turns the skip into a failure, so a broken CI setup cannot
//! hide behind it.

use std::path::PathBuf;
use std::process::Command;

const DEFAULT_KUNIT_DIR: &str = "/opt/linux-kunit/tools/testing/kunit";

/// The kunit directory, or why the test cannot run here.
fn kunit_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("KUNIT_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_KUNIT_DIR));
    let install = "Install them as .ci/run does:\n  apt-get install -y linux-source-6.12 python3\n  \
         mkdir -p /opt/linux-kunit && tar -xJf /usr/src/linux-source-6.12.tar.xz -C /opt/linux-kunit \
         --strip-components=1 linux-source-6.12/tools/testing/kunit\n\
         or point KUNIT_DIR at a tools/testing/kunit directory.";
    let python = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    let parser = dir.join("kunit_parser.py").is_file();
    let mut missing = Vec::new();
    if !python {
        missing.push("python3 (not on PATH)".to_string());
    }
    if !parser {
        missing.push(format!("the kernel's KTAP parser (no kunit_parser.py in {})", dir.display()));
    }
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(format!("missing: {}.\n{install}", missing.join(" and ")))
    }
}

/// Parse `ktap` with kunit_parser.parse_run_tests and return its verdicts as
/// `main_status passed failed skipped crashed errors` plus, per top-level test, `name status`.
const PARSE: &str = r#"
import sys, io, contextlib
sys.path.insert(0, sys.argv[1])
import kunit_parser
text = open(sys.argv[2]).read().splitlines(keepends=True)
with contextlib.redirect_stdout(io.StringIO()):
    t = kunit_parser.parse_run_tests(text)
c = t.counts
print("MAIN", t.status.name, c.passed, c.failed, c.skipped, c.crashed, c.errors)
for s in t.subtests:
    print("TEST", s.name, s.status.name)
"#;

#[test]
fn ktap_output_parses_with_the_kernels_kunit_parser() {
    let kunit = match kunit_dir() {
        Ok(d) => d,
        Err(why) if std::env::var_os("MADCHECK_REQUIRE_ALL_TOOLS").is_some_and(|v| v == "1") => {
            panic!("MADCHECK_REQUIRE_ALL_TOOLS=1 and the KTAP test cannot run: {why}")
        }
        Err(why) => {
            // Straight to stderr: libtest captures eprintln! of a passing test, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: ktap_output_parses_with_the_kernels_kunit_parser: {why}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("madcheck-ktap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    // A mutated model, so the run has failures as well as passes and skips.
    let out = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--generate", "1000", "--seed", "3", "--format", "ktap", "--mutate", "dontneed-keeps-anon", "--quiet"])
        .arg("--report")
        .arg(&report)
        .output()
        .expect("run madcheck");
    let ktap = String::from_utf8(out.stdout).expect("utf-8 KTAP");
    assert!(ktap.starts_with("KTAP version 1\n"), "not KTAP:\n{}", &ktap[..ktap.len().min(500)]);
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let n = |p: &str| rep.pointer(p).and_then(|v| v.as_u64()).unwrap_or_else(|| panic!("report has no {p}"));
    let (matched, diverge, expected, unsupported, poisoned, infra) = (
        n("/verdicts/match"),
        n("/verdicts/diverge"),
        n("/verdicts/expected_divergence"),
        n("/verdicts/unsupported"),
        n("/verdicts/poisoned"),
        n("/verdicts/infra_error"),
    );
    assert!(diverge > 0, "the mutated model should diverge somewhere in 1000 scenarios");
    assert_eq!(out.status.code(), Some(1), "a divergent run exits 1");

    let ktap_file = dir.join("run.ktap");
    std::fs::write(&ktap_file, &ktap).unwrap();
    let py = Command::new("python3").arg("-c").arg(PARSE).arg(&kunit).arg(&ktap_file).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "kunit_parser failed:\n{stdout}\n{}", String::from_utf8_lossy(&py.stderr));
    let main: Vec<&str> = stdout.lines().find_map(|l| l.strip_prefix("MAIN ")).expect("MAIN line").split(' ').collect();
    let num = |i: usize| main[i].parse::<u64>().unwrap();
    let (status, passed, failed, skipped, crashed, errors) = (main[0], num(1), num(2), num(3), num(4), num(5));
    // Leaves: exactly one `not ok` per divergent or broken scenario; no parse errors, nothing crashed.
    assert_eq!((failed, crashed, errors), (diverge + infra, 0, 0), "{stdout}");
    assert_eq!(status, "FAILURE");
    assert!(passed > matched, "every matching scenario has at least one passing point");
    assert!(skipped >= unsupported + poisoned);
    // Top level: one test per scenario, with the report's verdict.
    let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
    for l in stdout.lines().filter_map(|l| l.strip_prefix("TEST ")) {
        *by.entry(l.rsplit(' ').next().unwrap()).or_default() += 1;
    }
    assert_eq!(by.values().sum::<u64>(), n("/scenarios"), "{by:?}");
    assert_eq!(by.get("SUCCESS").copied().unwrap_or(0), matched + expected, "{by:?}");
    assert_eq!(by.get("FAILURE").copied().unwrap_or(0), diverge + infra, "{by:?}");
    assert_eq!(by.get("SKIPPED").copied().unwrap_or(0), unsupported + poisoned, "{by:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
