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
//! `cargo xtask bless --guests` records every guest profile of the default matrix (`matrix::
//! DEFAULT_KERNELS`: x86_64 and arm64 6.1 and 6.12, arm64 6.12-16K, and the newest kernel of each
//! architecture), one boot after another, then checks everything once; `--guests=arch:kernel,...` records
//! a subset (the `--kernels` syntax of `cargo xtask matrix`). This is the one command that re-records the
//! guests' goldens after new named cases were added.
//!
//! Bless also records the profile's expected unsupported set, `golden/snapshots/<profile>/unsupported.json`
//! (see `harness::run::unsupported`): on the host from the default suite (10,000 scenarios of seed 1 and
//! the corpus), for `--kernel` from the guest's run (the corpus and 300 scenarios of seed 1, the reduced
//! matrix of `.ci/run`). `--unsupported-from REPORT` records it from any madcheck report that was run with
//! `--record-unsupported` (every guest report is). Review it with `git diff` like the goldens.
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
    let mut unsupported_from = None;
    let mut guests: Option<Vec<(String, String)>> = None;
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--kernel" => kernel = Some(flags.value(&f)?),
            "--arch" => arch = Some(flags.value(&f)?),
            "--files" => files = Some(flags.value(&f)?),
            "--no-build" => build = false,
            "--unsupported-from" => unsupported_from = Some(PathBuf::from(flags.value(&f)?)),
            // `--guests`: the default matrix's guests; `--guests=arch:kernel,...`: a subset, as `matrix
            // --kernels`.
            "--guests" if f.raw.contains('=') => guests = Some(crate::matrix::parse_kernels(&flags.value(&f)?)?),
            "--guests" => {
                guests = Some(crate::matrix::DEFAULT_KERNELS.iter().map(|(a, k)| (a.to_string(), k.to_string())).collect());
            }
            "--recorded" => {
                let d = PathBuf::from(flags.value(&f)?);
                // The golden test runs in harness/; make the directory absolute.
                recorded_dir = Some(d.canonicalize().map_err(|e| format!("--recorded {}: {e}", d.display()))?);
            }
            _ => rest.push(f.raw.clone()),
        }
    }
    if let Some(r) = unsupported_from {
        return record_unsupported(&r).map(|_| 0);
    }
    if let Some(list) = guests {
        return bless_guests(&list, build, &rest);
    }
    let host = kernel.is_none() && recorded_dir.is_none();
    let recorded = match kernel {
        None if recorded_dir.is_some() => recorded_dir,
        None => {
            if arch.is_some() || files.is_some() {
                return Err("--arch and --files need --kernel".into());
            }
            None
        }
        Some(k) => match record_guest(&k, arch, files, build) {
            Ok((dir, report)) => {
                if let Err(e) = record_unsupported(&report) {
                    eprintln!("xtask bless: {e}");
                    return Ok(1);
                }
                Some(dir)
            }
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
    if host && rest.is_empty() {
        if let Err(e) = record_host_unsupported() {
            eprintln!("xtask bless: {e}");
            return Ok(1);
        }
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

/// Record the goldens of every kernel in `list` (arch, kernel), one boot at a time, each written with its
/// own golden test run; then check all profiles once. A kernel that cannot be recorded is reported and
/// the others still are; the exit code is 1 if any failed.
fn bless_guests(list: &[(String, String)], build: bool, rest: &[String]) -> Result<i32, String> {
    let mut failed = Vec::new();
    let mut built = std::collections::BTreeSet::new();
    for (arch, k) in list {
        eprintln!("xtask bless: recording {arch} {k}");
        let b = build && built.insert(arch.clone());
        let r = record_guest(k, Some(arch.clone()), None, b).and_then(|(dir, report)| {
            record_unsupported(&report)?;
            match golden_test(true, Some(&dir), rest)? {
                0 => Ok(()),
                rc => Err(format!("recording failed (exit {rc})")),
            }
        });
        if let Err(e) = r {
            eprintln!("xtask bless: {arch} {k}: {e}");
            failed.push(format!("{arch}:{k}"));
        }
    }
    let rc = golden_test(false, None, rest)?;
    if !failed.is_empty() {
        eprintln!("xtask bless: not recorded: {}", failed.join(", "));
        return Ok(1);
    }
    if rc == 0 {
        eprintln!("xtask bless: goldens of {} guests recorded and checked; review them with `git diff golden/snapshots`", list.len());
    }
    Ok(rc)
}

/// Run the default suite on the host with `--record-unsupported` and record the profile's set from it.
fn record_host_unsupported() -> Result<(), String> {
    let report = util::target_dir().join("bless/host-unsupported-report.json");
    let _ = std::fs::create_dir_all(report.parent().expect("has a parent"));
    let _ = std::fs::remove_file(&report);
    let corpus = util::root().join("cases/corpus");
    let mut c = std::process::Command::new(util::target_dir().join("release/madcheck"));
    c.args(["run", "--generate", "10000", "--seed", "1", "--cases"]).arg(&corpus);
    c.args(["--record-unsupported", "--allow-unsupported", "--quiet", "--report"]).arg(&report);
    c.stdout(std::process::Stdio::null());
    eprintln!("xtask bless: recording the expected unsupported set from the default suite");
    let rc = util::status(c)?;
    if !report.exists() {
        return Err(format!("the default suite wrote no report (exit {rc})"));
    }
    record_unsupported(&report)
}

/// Write `golden/snapshots/<profile>/unsupported.json` from a report's `unsupported_record`.
fn record_unsupported(report: &Path) -> Result<(), String> {
    let json = std::fs::read_to_string(report).map_err(|e| format!("--unsupported-from {}: {e}", report.display()))?;
    let set = json_value(&json, "unsupported_record").ok_or_else(|| {
        format!("{}: no `unsupported_record` (run madcheck with --record-unsupported)", report.display())
    })?;
    let profile = json_value(&set, "profile")
        .map(|p| p.trim_matches('"').to_string())
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| format!("{}: unsupported_record has no profile", report.display()))?;
    let dir = util::root().join("golden/snapshots").join(&profile);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let path = dir.join("unsupported.json");
    std::fs::write(&path, pretty(&set) + "\n").map_err(|e| format!("write {}: {e}", path.display()))?;
    let entries = set.matches("\"scenario\"").count();
    eprintln!("xtask bless: {} ({entries} expected unsupported scenarios)", path.display());
    Ok(())
}

/// The raw text of the first value of `"key":` in JSON text (an object or array matched by brackets,
/// outside strings; else up to the next `,` or newline). Enough for madcheck's reports without a JSON
/// crate (xtask is std only).
fn json_value(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let start = json.find(&pat)? + pat.len();
    let rest = json[start..].trim_start();
    let open = rest.chars().next()?;
    if open != '{' && open != '[' {
        let end = rest.find([',', '\n']).unwrap_or(rest.len());
        return Some(rest[..end].trim().to_string());
    }
    let (mut depth, mut string) = (0i32, InString::default());
    for (i, ch) in rest.char_indices() {
        if string.feed(ch) {
            continue;
        }
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(rest[..=i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a scan of JSON text is inside a string literal, so brackets and commas in strings are text.
#[derive(Default)]
struct InString {
    open: bool,
    escaped: bool,
}

impl InString {
    /// Feed the next character: true when it belongs to a string literal (its quotes included).
    fn feed(&mut self, ch: char) -> bool {
        if !self.open {
            self.open = ch == '"';
            return self.open;
        }
        match ch {
            _ if self.escaped => self.escaped = false,
            '\\' => self.escaped = true,
            '"' => self.open = false,
            _ => {}
        }
        true
    }
}

/// Re-indent JSON text (compact or pretty) two spaces per level, one member or element per line, so the
/// recorded file diffs well. Strings are copied as they are.
fn pretty(v: &str) -> String {
    let (mut o, mut depth, mut string) = (String::new(), 0usize, InString::default());
    let mut chars = v.chars().peekable();
    let newline = |o: &mut String, depth: usize| {
        o.push('\n');
        o.push_str(&"  ".repeat(depth));
    };
    while let Some(ch) = chars.next() {
        if string.feed(ch) {
            o.push(ch);
            continue;
        }
        match ch {
            '{' | '[' => {
                o.push(ch);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    o.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(&mut o, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut o, depth);
                o.push(ch);
            }
            ',' => {
                o.push(ch);
                newline(&mut o, depth);
            }
            ':' => o.push_str(": "),
            c if c.is_whitespace() => {}
            c => o.push(c),
        }
    }
    o
}

/// Boot the kernel with the corpus and `--emit-goldens`, and save what it printed under
/// `target/qemu/goldens/<label>/` (`facts.json`, `host/<case>.body`). Every corpus case must be there.
/// Also returns the guest's report (for its unsupported set).
fn record_guest(kernel: &str, arch: Option<String>, files: Option<String>, build: bool) -> Result<(PathBuf, PathBuf), String> {
    let spec = Spec {
        kernel: kernel.to_string(),
        arch,
        generate: 300,
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
        cpu: None,
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
    let report = o.report.clone().ok_or("the guest printed no report")?;
    Ok((dir, report))
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
    fn a_reports_unsupported_record_is_found_and_pretty_printed() {
        let compact = r#"{"report":{"x":1,"unsupported_record":{"entries":[{"reason":"a {b}, \"c\"","scenario":"gen-1-2"}],"profile":"p","scope":{"cases":[],"generated":300,"seed":1}},"y":2}}"#;
        let v = json_value(compact, "unsupported_record").unwrap();
        assert!(v.starts_with('{') && v.ends_with("}}"), "{v}");
        assert_eq!(json_value(&v, "profile").as_deref(), Some("\"p\""));
        let p = pretty(&v);
        assert!(p.contains("\n  \"entries\": [\n    {\n      \"reason\": \"a {b}, \\\"c\\\"\",\n"), "{p}");
        assert!(p.contains("\"cases\": [],"), "{p}");
    }

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
