//! The acceptance test of the coverage matrix: the default suite (the named corpus plus 10,000 generated
//! scenarios, seed 1, as `cargo xtask run` runs it) reaches every cell this kernel can reach, and reaches
//! no cell the rules in `harness::reach` call unreachable (which would mean a reason is wrong).
//!
//! It holds while another madcheck run is on the machine: the test starts one itself, which owns the
//! hugetlb pool when the suite starts, and the suite waits for the pool (`--wait-for-hugepool`) instead
//! of running its hugetlb scenarios as unsupported (which left 372 reachable cells at zero).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn default_suite_reaches_every_reachable_cell_and_no_unreachable_one() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/corpus");
    let cov = std::env::temp_dir().join(format!("madcheck-coverage-{}.json", std::process::id()));
    // Another run, holding the pool when the suite starts.
    let mut other = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--generate", "3000", "--seed", "5", "--quiet", "--findings", "none", "--cases"])
        .arg(&corpus)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("madcheck starts");
    let held = support::wait_until_it_holds_the_pool(&mut other, Duration::from_secs(60));
    let o = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--generate", "10000", "--seed", "1", "--quiet", "--cases"])
        .arg(&corpus)
        .args(["--wait-for-hugepool", &support::POOL_WAIT.as_secs().to_string()])
        .arg("--coverage")
        .arg(&cov)
        .output()
        .expect("madcheck runs");
    let other = other.wait_with_output().expect("the other run ends");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Read and remove the matrix before any assertion, so a failing run leaves nothing in /tmp.
    let text = std::fs::read_to_string(&cov);
    let _ = std::fs::remove_file(&cov);
    let other_err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(0), "the concurrent run failed:\n{other_err}");
    // Where the other run could take the pool (root, or enough free huge pages), the suite waited for it.
    let err = String::from_utf8_lossy(&o.stderr);
    if held {
        assert!(err.contains("another madcheck run holds the huge page pool; waiting"), "the suite did not wait:\n{err}");
    }
    assert!(!err.contains("huge page pool (flock"), "the suite ran without the pool:\n{err}");
    let text = text.unwrap_or_else(|e| panic!("no coverage JSON ({e}); stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr)));
    let v: serde_json::Value = serde_json::from_str(&text).expect("the matrix is JSON");
    let list = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is a list"))
            .iter()
            .map(|c| format!("{} on {} -> {} {}", c["advice"], c["kind"], c["outcome"], c["reason"].as_str().unwrap_or("")))
            .collect()
    };
    let zero = list("reachable_at_zero");
    let wrong = list("unreachable_reached");
    let outside = list("outside_the_space");
    assert!(
        zero.is_empty(),
        "{} reachable cells are at zero (improve cases/src/generate.rs or add a named case, or classify the cell \
         unreachable in harness/src/coverage/reach/ with a reason):\n{}",
        zero.len(),
        zero.join("\n")
    );
    assert!(wrong.is_empty(), "cells classified unreachable were reached (the reason is wrong):\n{}", wrong.join("\n"));
    assert!(outside.is_empty(), "reached cells outside the cell space (extend reach::OUTCOMES or KINDS):\n{}", outside.join("\n"));
    let s = &v["summary"];
    assert_eq!(s["reachable"], s["reached"], "{s}");
    assert!(s["reachable"].as_u64().unwrap() > 0 && s["unreachable"].as_u64().unwrap() > 0, "{s}");
    // A wrong classification fails the run itself too.
    assert_ne!(o.status.code(), Some(2), "stdout:\n{stdout}");
}
