//! The ptrace-helper path for pages of unreadable VMAs (`harness/src/host/procmem.rs`), forced with
//! `MADCHECK_PROC_MEM=ptrace` on a kernel whose /proc/self/mem would do: the observation set of a
//! generated run must be identical, point by point, to the one the normal path records, and the run
//! must have read unreadable pages, in the worker and in fork children, for the comparison to mean
//! anything.

use serde_json::Value;
use std::process::Command;

fn madcheck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_madcheck"))
}

fn record(path_env: Option<&str>, out: &std::path::Path) -> Value {
    let mut c = madcheck();
    // Another madcheck run holding the hugetlb pool would make hugetlb scenarios skipped in one
    // recording and not the other: wait for the pool instead.
    c.args(["run", "--record-observations", "full", "--generate", "2000", "--seed", "1", "--quiet"]);
    c.args(["--wait-for-hugepool", "600", "--report"]).arg(out);
    c.env_remove("MADCHECK_PROC_MEM");
    if let Some(v) = path_env {
        c.env("MADCHECK_PROC_MEM", v);
    }
    let o = c.output().expect("madcheck runs");
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out).expect("report written")).expect("report is JSON")
}

/// (present pages read in unreadable VMAs, of which in fork children).
fn unreadable_reads(set: &Value) -> (u64, u64) {
    let (mut n, mut child) = (0, 0);
    for sc in set["observations"].as_array().expect("observations") {
        // A scenario this host cannot run (`skipped` with the reason, e.g. pkey_set without PKU) has no
        // points; both recordings must skip it alike, which the comparison below checks.
        let Some(points) = sc["points"].as_array() else {
            assert!(sc["skipped"].is_string(), "a scenario with neither points nor a skip reason: {sc}");
            continue;
        };
        for pt in points {
            let obs = &pt["obs"];
            let pages = obs["pages"].as_array().expect("pages");
            for v in obs["vmas"].as_array().expect("vmas") {
                if v["perms"].as_str().is_some_and(|p| p.starts_with('r')) {
                    continue;
                }
                let (s, e) = (v["start"].as_i64().unwrap_or(0).max(0), v["end"].as_i64().unwrap_or(0));
                for p in s..e {
                    if pages.get(p as usize).is_some_and(|pg| pg["res"] == "Present") {
                        n += 1;
                        if !pt["id"]["child"].is_null() {
                            child += 1;
                        }
                    }
                }
            }
        }
    }
    (n, child)
}

#[test]
fn ptrace_helper_reads_what_proc_self_mem_reads() {
    let dir = std::env::temp_dir().join(format!("madcheck-procmem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let normal = record(None, &dir.join("normal.json"));
    let helper = record(Some("ptrace"), &dir.join("helper.json"));
    let _ = std::fs::remove_dir_all(&dir);
    let (n, child) = unreadable_reads(&helper);
    // Seed 1's first 2,000 scenarios read 130 such pages, 15 of them in fork children (on 6.18.44).
    assert!(n >= 50 && child >= 5, "too few unreadable pages read to test the helper: {n} ({child} in children)");
    let (a, b) = (normal["observations"].as_array().unwrap(), helper["observations"].as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            continue;
        }
        // The one field the kernel itself answers differently from run to run on the same path: smaps
        // LazyFree lags behind the per-CPU folio batches (the model allows a range there; gen-1-559 step 11
        // shows 0 or 1 across six runs of /proc/self/mem alone). Its digests differ with it, so the points
        // are compared with it masked; every other field, page residency and contents included, must agree.
        assert_eq!(x["id"], y["id"]);
        assert_eq!(x["skipped"], y["skipped"], "scenario {} ran in one recording only", x["id"]);
        assert!(x["points"].is_array(), "scenario {} differs but has no points: {x}", x["id"]);
        assert_eq!(
            without_lazyfree(&x["points"]),
            without_lazyfree(&y["points"]),
            "scenario {} differs between /proc/self/mem and the ptrace helper",
            x["id"]
        );
    }
}

/// `points` with every VMA's `lazyfree` count removed.
fn without_lazyfree(points: &Value) -> Value {
    let mut points = points.clone();
    for pt in points.as_array_mut().expect("points") {
        if let Some(vmas) = pt["obs"]["vmas"].as_array_mut() {
            for v in vmas {
                if let Some(o) = v.as_object_mut() {
                    o.remove("lazyfree");
                }
            }
        }
    }
    points
}

#[test]
fn detect_names_the_path_and_a_bad_value_is_bad_input() {
    let o = madcheck().arg("detect").env("MADCHECK_PROC_MEM", "ptrace").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["proc_mem"]["path"], "ptrace-helper", "{v}");
    let o = madcheck().arg("detect").env_remove("MADCHECK_PROC_MEM").output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["proc_mem"]["path"] == "self" || v["proc_mem"]["path"] == "ptrace-helper", "{v}");
    let o = madcheck().arg("detect").env("MADCHECK_PROC_MEM", "sideways").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("MADCHECK_PROC_MEM"));
}
