//! `cargo xtask bless [args...]`: record or update the goldens of the named corpus for this kernel's
//! profile (`golden/snapshots/<profile>/{host,sim}/`), remove snapshots no case produces any more, then
//! check them the way CI does. Extra args go to the golden test binary (e.g. a test name).
//!
//! `cargo xtask bless --kernel <6.1|6.12|6.12-16k|package|image> [--arch x86_64|aarch64] [--files ext4|tmpfs]
//! [--no-build]`: record the goldens of another kernel. The kernel boots under qemu (as `cargo xtask qemu
//! --corpus`) and its guest madcheck prints every named case's host golden body and the detected
//! `KernelFacts` on the console (`madcheck run --emit-goldens`: base64 lines, each block ending in its
//! length and FNV-1a hash, so serial noise is detected, never recorded). They are saved under
//! `target/qemu/goldens/<kernel>/` and the golden test writes them with `GOLDEN_RECORDED=<that dir>`:
//! the guest's bodies as `host/`, the simulator's answers for the guest's facts as `sim/`, and the facts as
//! `golden/snapshots/<profile>/facts.json`. Then everything is checked as CI does.
//!
//! `cargo xtask bless --recorded target/qemu/goldens/<kernel>` records from an earlier boot's saved output
//! without booting again.
//!
//! Invariant: bless and check are one function (`golden_test`) with different environments, so what is
//! recorded is exactly what CI compares.

use crate::qemu::{self, Spec};
use crate::util;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Run the golden test binary. `bless`: `INSTA_UPDATE=always INSTA_FORCE_PASS=1 GOLDEN_BLESS=1` (write
/// every snapshot, delete unreferenced ones); otherwise `INSTA_UPDATE=no` (compare only, as CI).
/// `recorded`: a guest's emitted goldens (`GOLDEN_RECORDED`), recorded for the guest's profile.
fn golden_test(bless: bool, recorded: Option<&Path>, args: &[String]) -> Result<i32, String> {
    let mut c = crate::util::cargo();
    c.args(["test", "--release", "-p", "harness", "--test", "goldens", "--"]).args(args);
    if bless {
        c.env("INSTA_UPDATE", "always").env("INSTA_FORCE_PASS", "1").env("GOLDEN_BLESS", "1");
        // Recording a whole profile writes hundreds of new snapshots; insta would print each in full.
        if recorded.is_some() && std::env::var_os("INSTA_OUTPUT").is_none() {
            c.env("INSTA_OUTPUT", "minimal");
        }
    } else {
        c.env("INSTA_UPDATE", "no").env_remove("INSTA_FORCE_PASS").env_remove("GOLDEN_BLESS");
    }
    match recorded {
        Some(d) => c.env("GOLDEN_RECORDED", d),
        None => c.env_remove("GOLDEN_RECORDED"),
    };
    crate::util::status(c)
}

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut kernel = None;
    let mut arch = None;
    let mut files = None;
    let mut build = true;
    let mut rest = Vec::new();
    let mut recorded_dir = None;
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--kernel" => kernel = Some(flags.value(&f)?),
            "--arch" => arch = Some(flags.value(&f)?),
            "--files" => files = Some(flags.value(&f)?),
            "--no-build" => build = false,
            "--recorded" => {
                let d = PathBuf::from(flags.value(&f)?);
                // The golden test runs in harness/; make the directory absolute.
                recorded_dir = Some(d.canonicalize().map_err(|e| format!("--recorded {}: {e}", d.display()))?);
            }
            _ => rest.push(f.raw.clone()),
        }
    }
    let recorded = match kernel {
        None if recorded_dir.is_some() => recorded_dir,
        None => {
            if arch.is_some() || files.is_some() {
                return Err("--arch and --files need --kernel".into());
            }
            None
        }
        Some(k) => match record_guest(&k, arch, files, build) {
            Ok(dir) => Some(dir),
            Err(e) => {
                eprintln!("xtask bless: {e}");
                return Ok(1);
            }
        },
    };
    let rc = golden_test(true, recorded.as_deref(), &rest)?;
    if rc != 0 {
        eprintln!("xtask bless: recording failed (exit {rc})");
        return Ok(rc);
    }
    let rc = golden_test(false, None, &rest)?;
    if rc == 0 {
        eprintln!("xtask bless: goldens recorded and checked; review them with `git diff golden/snapshots` before committing");
    } else {
        eprintln!(
            "xtask bless: the goldens are recorded, but the check still fails (exit {rc}): where the simulator's golden \
             differs from the host's, the model is wrong for that case; fix the model (or list the case in the report)"
        );
    }
    Ok(rc)
}

/// Boot the kernel with the corpus and `--emit-goldens`, and save what it printed under
/// `target/qemu/goldens/<label>/` (`facts.json`, `host/<case>.body`). Every corpus case must be there.
fn record_guest(kernel: &str, arch: Option<String>, files: Option<String>, build: bool) -> Result<PathBuf, String> {
    let spec = Spec {
        kernel: kernel.to_string(),
        arch,
        generate: 0,
        seed: 1,
        ktap: false,
        files,
        config: None,
        memory_mib: 1024,
        timeout: Duration::from_secs(3600),
        build,
        echo: true,
        corpus: true,
        scenarios: Vec::new(),
        emit_goldens: true,
        extra_args: Vec::new(),
        extra_files: Vec::new(),
        append: Vec::new(),
    };
    let p = qemu::prepare(&spec)?;
    let o = qemu::boot(&p);
    eprintln!("\nxtask bless: {} ({}): {}", o.label, p.arch, qemu::describe(&o));
    eprintln!("xtask bless: console log {}", o.log.display());
    if o.result.is_empty() {
        return Err(format!("the guest did not finish: {}", o.error.unwrap_or_default()));
    }
    if let Some(e) = o.result.get("error") {
        return Err(format!("the guest failed: {e}"));
    }
    let log = std::fs::read_to_string(&o.log).map_err(|e| format!("read {}: {e}", o.log.display()))?;
    let (facts, bodies, errors) = parse_emitted(&log);
    let want: Vec<String> = corpus_ids()?;
    let mut problems: Vec<String> = errors;
    let facts = facts.ok_or("no MADCHECK-GOLDEN-FACTS line on the console")?;
    for id in &want {
        if !bodies.contains_key(id) && !problems.iter().any(|p| p.starts_with(&format!("{id}:"))) {
            problems.push(format!("{id}: no golden on the console"));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{} of {} cases were not recorded intact (nothing written):\n  {}",
            problems.len(),
            want.len(),
            problems.join("\n  ")
        ));
    }
    let dir = qemu::qemu_dir().join("goldens").join(&o.label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("host")).map_err(|e| format!("create {}: {e}", dir.display()))?;
    std::fs::write(dir.join("facts.json"), facts).map_err(|e| format!("write facts.json: {e}"))?;
    for (id, body) in &bodies {
        std::fs::write(dir.join("host").join(format!("{id}.body")), body).map_err(|e| format!("write {id}.body: {e}"))?;
    }
    eprintln!("xtask bless: {} host goldens from {} saved in {}", bodies.len(), o.label, dir.display());
    Ok(dir)
}

fn corpus_ids() -> Result<Vec<String>, String> {
    let dir = util::root().join("cases/corpus");
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(String::from))
        .collect();
    ids.sort();
    Ok(ids)
}

/// FNV-1a 64, as `harness::out::goldens::fnv1a64`.
fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for q in b.chunks(4) {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for (i, &c) in q.iter().enumerate() {
            n |= if c == b'=' && i >= 4 - pad { 0 } else { val(c)? } << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// The facts line, the intact bodies by case id, and one problem per case that was not intact.
pub fn parse_emitted(log: &str) -> (Option<String>, BTreeMap<String, String>, Vec<String>) {
    let mut facts = None;
    let mut bodies = BTreeMap::new();
    let mut problems = Vec::new();
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    for line in log.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(f) = line.strip_prefix("MADCHECK-GOLDEN-FACTS ") {
            facts = Some(f.to_string());
        } else if let Some(id) = line.strip_prefix("MADCHECK-GOLDEN-BEGIN ") {
            open.insert(id.to_string(), String::new());
        } else if let Some(rest) = line.strip_prefix("MADCHECK-GOLDEN-ERROR ") {
            let (id, why) = rest.split_once(' ').unwrap_or((rest, ""));
            problems.push(format!("{id}: the guest could not render it: {why}"));
        } else if let Some(rest) = line.strip_prefix("MADCHECK-GOLDEN-END ") {
            let mut w = rest.split(' ');
            let id = w.next().unwrap_or_default().to_string();
            let kv: BTreeMap<&str, &str> = w.filter_map(|x| x.split_once('=')).collect();
            let Some(b64) = open.remove(&id) else {
                problems.push(format!("{id}: an end line without a begin line"));
                continue;
            };
            let body = unbase64(&b64).and_then(|b| String::from_utf8(b).ok());
            let ok = body.as_ref().is_some_and(|b| {
                kv.get("bytes") == Some(&b.len().to_string().as_str())
                    && kv.get("fnv") == Some(&format!("{:016x}", fnv1a64(b.as_bytes())).as_str())
            });
            match body {
                Some(b) if ok => {
                    bodies.insert(id, b);
                }
                _ => problems.push(format!("{id}: length or hash does not match (a console line was mangled)")),
            }
        } else if let Some(rest) = line.strip_prefix("MADCHECK-GOLDEN ") {
            if let Some((id, chunk)) = rest.split_once(' ') {
                match open.get_mut(id) {
                    Some(b) => b.push_str(chunk.trim()),
                    None => problems.push(format!("{id}: a data line outside its block")),
                }
            }
        }
    }
    for id in open.into_keys() {
        problems.push(format!("{id}: no end line"));
    }
    (facts, bodies, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_blocks_decode_and_mangled_ones_are_refused() {
        // "arena: 8 pages\n" as harness::out::goldens::emit_block writes it.
        let body = "arena: 8 pages\n";
        let good = format!(
            "noise\r\nMADCHECK-GOLDEN-FACTS {{\"a\":1}}\r\nMADCHECK-GOLDEN-BEGIN x\r\nMADCHECK-GOLDEN x YXJlbmE6IDggcGFnZXMK\r\n\
             MADCHECK-GOLDEN-END x bytes=15 fnv={:016x}\r\n",
            fnv1a64(body.as_bytes())
        );
        let (f, b, p) = parse_emitted(&good);
        assert_eq!(f.as_deref(), Some("{\"a\":1}"));
        assert_eq!(b.get("x").map(String::as_str), Some(body));
        assert!(p.is_empty(), "{p:?}");
        let bad = good.replace("YXJlbmE6IDggcGFnZXMK", "YXJlbmE6IDggcGFnZXNK");
        let (_, b, p) = parse_emitted(&bad);
        assert!(b.is_empty() && p.len() == 1, "{p:?}");
        assert_eq!(unbase64("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(unbase64("Zg=="), Some(b"f".to_vec()));
    }
}
