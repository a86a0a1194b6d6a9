//! Replays the fuzz targets' kept inputs (`fuzz/regressions/<target>/*`) through the same harness
//! functions the nightly targets call (`cases::fuzz`), on stable, so every crash the fuzzers found stays
//! fixed without nightly or libFuzzer. A new crasher is added by copying its artifact file into the
//! target's directory (`fuzz/README.md`).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no regression inputs in {}", dir.display());
    v
}

/// Runs `check` on every input, catching panics, and reports every failure at once.
fn replay(target: &str, check: impl Fn(&[u8]) -> Result<(), String> + std::panic::RefUnwindSafe) {
    let mut failures = Vec::new();
    let all = inputs(target);
    for p in &all {
        let data = std::fs::read(p).unwrap();
        match std::panic::catch_unwind(|| check(&data)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", p.display())),
            Err(_) => failures.push(format!("{}: panicked", p.display())),
        }
    }
    assert!(failures.is_empty(), "{} of {} {target} inputs fail:\n{}", failures.len(), all.len(), failures.join("\n"));
}

#[test]
fn load_regressions_replay() {
    replay("load", cases::fuzz::load_bytes);
}

#[test]
fn simulate_regressions_replay() {
    let models = cases::fuzz::models();
    replay("simulate", |d| cases::fuzz::simulate_bytes(d, &models));
    // The replay says something only for inputs that decode to a valid program.
    let decoded: Vec<String> = inputs("simulate")
        .iter()
        .filter(|p| cases::fuzz::program_from_bytes(&std::fs::read(p).unwrap()).is_some())
        .map(|p| p.display().to_string())
        .collect();
    assert!(decoded.len() >= 3, "only {decoded:?} decode to a program");
}
