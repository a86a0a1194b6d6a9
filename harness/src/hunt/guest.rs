//! The hunting jobs of `madcheck run` (what a qemu guest is asked to do for `cargo xtask compare` and
//! `bisect`): record observations, shrink against a model, or run a program such as a C reproducer.
//! The result goes to `--report`, which a guest prints on its console (`init.rs`).

use crate::cli::RunArgs;
use std::path::{Path, PathBuf};
use super::*;
use super::observations::record_run;
use super::shrink::guest_shrink;

/// The `run` flags that make a guest (or the host) do a hunting job instead of the judged run; the
/// result goes to `--report`, which a guest prints on its console (`init.rs`).
pub const GUEST_MODES: [&str; 3] = ["--record-observations", "--hunt-shrink", "--exec"];

/// What a hunting `run` was asked to do.
#[derive(Default)]
struct GuestJob {
    record: Option<String>,
    repeat: usize,
    shrink: bool,
    exec: Option<PathBuf>,
}

pub(super) fn cmd_guest_run(args: &[String], env: &Env) -> Result<i32, String> {
    let mut job = GuestJob { repeat: 1, ..GuestJob::default() };
    let mut rest = vec!["run".to_string()];
    let mut it = args.iter();
    while let Some(x) = it.next() {
        let (flag, inline) = match x.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (x.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or(format!("{flag} needs a value"));
        match flag {
            "--record-observations" => job.record = Some(value()?),
            "--repeat" => job.repeat = value()?.parse().map_err(|_| "--repeat: not a number".to_string())?,
            "--hunt-shrink" => job.shrink = true,
            "--exec" => job.exec = Some(PathBuf::from(value()?)),
            _ => rest.push(x.clone()),
        }
    }
    let a = match crate::cli::parse(&rest) {
        Ok(crate::cli::Command::Run(a)) => a,
        Ok(_) => return Err("run: unexpected arguments".into()),
        Err(e) => return Err(e.to_string()),
    };
    crate::host::guest::refuse_destructive_here(a.destructive)?;
    if let Some(exe) = &job.exec {
        return guest_exec(exe, &a);
    }
    if job.shrink {
        return guest_shrink(&a, env);
    }
    let full = match job.record.as_deref() {
        Some("digest") => false,
        Some("full") => true,
        other => return Err(format!("--record-observations: {other:?} is not digest or full")),
    };
    record_run(&a, env, full, job.repeat.max(1))
}

/// Run a program (a C reproducer) and report its exit code and output.
fn guest_exec(exe: &Path, a: &RunArgs) -> Result<i32, String> {
    // A reproducer with hugetlb mappings needs free huge pages (it answers 125 without them); hold the
    // pool as a run would, restored when this returns.
    let (_pool, _why) = crate::host::hugepool::HugePool::prepare(crate::host::hugepool::want_unreserved_here());
    let o = std::process::Command::new(exe).output().map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let code = o.status.code().unwrap_or(128);
    let v = serde_json::json!({
        "kind": "madcheck-exec", "exe": exe.display().to_string(), "exit": code,
        "output": format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        "kernel": crate::host::detect::detect_host().map(|f| f.release).unwrap_or_default(),
        "scenarios": 0, "exit_code": 0,
    });
    let text = v.to_string() + "\n";
    emit(a.report.as_deref(), &text)?;
    Ok(0)
}


/// `madcheck findings REPORT [--out DIR]`: write the cases of a guest's shrink report (`run
/// --hunt-shrink`) as case files, one `MADCHECK-FINDING <from> <file>` line each (for xtask, std only).
pub(super) fn cmd_findings(args: &[String]) -> Result<i32, String> {
    let (mut report, mut out) = (None, default_findings_dir());
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a value")?),
            f if f.starts_with("--") => return Err(format!("findings: unknown flag {f}")),
            f => report = Some(PathBuf::from(f)),
        }
    }
    let report = report.ok_or("findings takes a shrink report: madcheck findings REPORT [--out DIR]")?;
    let text = std::fs::read_to_string(&report).map_err(|e| format!("{}: cannot read: {e}", report.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", report.display()))?;
    let v = if v.get("report").is_some() { &v["report"] } else { &v };
    let Some(list) = v["findings"].as_array() else { return Err(format!("{}: not a shrink report (no findings)", report.display())) };
    for f in list {
        let from = f["from"].as_str().unwrap_or("?");
        match (f["id"].as_str(), f.get("case")) {
            (Some(id), Some(case)) if f["stable_runs"].as_u64() == Some(super::shrink::STABILITY_RUNS as u64) => {
                let path = out.join(format!("{id}.json"));
                write_file(&path, &(serde_json::to_string_pretty(case).unwrap_or_default() + "\n"))?;
                say!("MADCHECK-FINDING {from} {}", path.display());
            }
            (Some(_), Some(_)) => say!("{from}: flaky shrink ({} of {} re-runs), not written", f["stable_runs"], super::shrink::STABILITY_RUNS),
            _ => say!("{from}: {}", f["none"].as_str().unwrap_or("no finding")),
        }
    }
    Ok(0)
}
