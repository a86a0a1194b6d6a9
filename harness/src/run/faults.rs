//! Fault injection, runner side: `MADCHECK_INJECT_FAULTS=SEED` makes a real run break its own workers
//! on purpose, to show that it survives what a broken kernel or machine does to them. One worker is
//! SIGKILLed, another SIGSTOPped (a hang, ended by the timeout) and a third exits, each in the middle of
//! a scenario (after its first point), at a point of the run chosen from SEED. Every scenario still gets
//! its verdict: the runner re-runs a scenario disturbed that way once on a fresh worker, and lists it in
//! the report's `reruns` with the reason; the report's `fault_injection` says which worker took which
//! fault.
//!
//! Invariant: the tokens live in one directory of this run (`$TMPDIR/madcheck-faults-<pid>`), claimed at
//! most once each (`host::worker::faults`), and the directory and the workers' variable are gone when the
//! plan is dropped, also when the run fails.

use crate::host::FAULT_DIR_ENV;
use std::path::PathBuf;

/// The switch: the seed that places the faults.
pub const INJECT_ENV: &str = "MADCHECK_INJECT_FAULTS";

/// The faults, in the order their tokens are offered to the workers.
const KINDS: [(&str, &str); 3] = [("kill", "SIGKILL"), ("stop", "SIGSTOP (a hang)"), ("exit", "exit mid-scenario")];

pub struct FaultPlan {
    dir: PathBuf,
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FaultPlan {
    /// The plan the environment asks for, with its tokens written and the workers' variable set; `None`
    /// without `MADCHECK_INJECT_FAULTS`. A value that is not a number is bad input.
    pub fn from_env() -> Result<Option<FaultPlan>, String> {
        let Some(v) = std::env::var_os(INJECT_ENV) else { return Ok(None) };
        let Some(mut seed) = v.to_str().and_then(|s| s.trim().parse::<u64>().ok()) else {
            return Err(format!("{INJECT_ENV}={v:?}: not a seed (a non-negative integer)"));
        };
        let dir = std::env::temp_dir().join(format!("madcheck-faults-{}", std::process::id()));
        let plan = FaultPlan { dir };
        let _ = std::fs::remove_dir_all(&plan.dir);
        std::fs::create_dir(&plan.dir).map_err(|e| format!("{INJECT_ENV}: create {}: {e}", plan.dir.display()))?;
        for (name, _) in KINDS {
            // After 1-20 programs served by the worker process that takes it.
            let after = 1 + splitmix(&mut seed) % 20;
            std::fs::write(plan.dir.join(name), format!("{after}\n"))
                .map_err(|e| format!("{INJECT_ENV}: write {}: {e}", plan.dir.display()))?;
        }
        // Before any worker exists; the runner's threads start later.
        std::env::set_var(FAULT_DIR_ENV, &plan.dir);
        Ok(Some(plan))
    }

    /// Stop offering faults (later workers, e.g. the goldens', run clean) and say which worker took
    /// which fault.
    pub fn finish(&self) -> Vec<String> {
        std::env::remove_var(FAULT_DIR_ENV);
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        KINDS
            .iter()
            .map(|(name, what)| {
                let prefix = format!("{name}.claimed-");
                match names.iter().find_map(|n| n.strip_prefix(&prefix)) {
                    Some(pid) => format!("{what}: worker {pid}"),
                    None => format!("{what}: not done (the run ended first)"),
                }
            })
            .collect()
    }
}

impl Drop for FaultPlan {
    fn drop(&mut self) {
        std::env::remove_var(FAULT_DIR_ENV);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
