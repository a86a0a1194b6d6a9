//! `cargo xtask matrix [--generate N] [--seed S] [--kernels LIST | --series RANGE [--arch A]] [--no-host] [--jobs VMS]
//! [--no-corpus]`: the same generated scenarios on the host and on eleven Debian kernels under qemu
//! ([`DEFAULT_KERNELS`]), or on every point release of a series range (`--series 6.16..newest --arch
//! x86_64`), two VMs at a time; one table on stdout
//! (with each kernel's page size, byte order and word size, as its /init reports them), the same rows as
//! JSON in `target/matrix.json`.
//!
//! Invariant: kernels are prepared (apt, cargo) one after another and only the boots run in parallel;
//! the exit code is 1 when any row has a divergence that no expected-divergence entry covers, an
//! infrastructure error, or no result at all, else 0. `--kernels` takes `arch:kernel` items (e.g.
//! `x86_64:6.1,aarch64:6.12-16k`), so CI can run a reduced matrix with the same code. Every kernel's run
//! also runs the named cases of cases/corpus and checks them against the host goldens of its profile
//! (packed into the guest's initramfs): the golden column is `mismatches/checked` (`0/368`), `n.a.` where
//! the profile has no goldens; `--no-corpus` leaves the named cases out.

use crate::qemu::{self, Outcome, Spec};
use crate::util::{self, json_str};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The guests of the default matrix (issue 11): x86_64 and arm64 6.1 and 6.12, arm64 6.12 with 16K pages,
/// and the newest Debian kernel on x86_64, arm64 4K and 16K (resolved at run time), powerpc64le 64K,
/// s390x and riscv64. For the last three the newest kernel the archive serves is sid's 7.2: trixie-
/// backports' Packages indexes list 7.3.4 for ppc64el and riscv64 too, but the pool answers 404 for them
/// (measured 2026-12-07), so those rows name the 7.2 series. riscv64's missing `sd` (no Svrsw60t59b under
/// qemu) is a run-time fact (KernelFacts::vma_soft_dirty), and its lazy-free THP PAGEOUT is docs/findings.md
/// item 13.
/// 32-bit armhf (`armhf:7.2`, Debian's armmp flavour, no LPAE) runs a 32-bit /init on a 32-bit
/// kernel: little-endian, word size 32 (docs/qemu.md, "Other architectures").
pub const DEFAULT_KERNELS: &[(&str, &str)] = &[
    ("x86_64", "6.1"),
    ("x86_64", "6.12"),
    ("aarch64", "6.1"),
    ("aarch64", "6.12"),
    ("aarch64", "6.12-16k"),
    ("x86_64", "newest"),
    ("aarch64", "newest"),
    ("aarch64", "newest-16k"),
    ("powerpc64le", "7.2-64k"),
    ("s390x", "7.2"),
    ("riscv64", "7.2"),
    ("armhf", "7.2"),
];

/// `arch:kernel,...` (`x86_64:6.1,aarch64:6.12-16k`) as (arch, kernel) pairs.
pub fn parse_kernels(list: &str) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .map(|i| i.split_once(':').map(|(a, k)| (a.to_string(), k.to_string())).ok_or(format!("--kernels: {i:?} is not arch:kernel")))
        .collect()
}

/// `--series RANGE --arch A`: every point release of the range for the architecture's default flavour,
/// oldest first, each as its package name (the newest Debian build of that release).
fn series_kernels(range: &str, arch: &str) -> Result<Vec<(String, String)>, String> {
    let da = crate::debian::deb_arch(arch)?;
    let flavour = crate::debian::flavours(da).first().copied();
    let series = crate::debian::Series::parse(range).map_err(|e| format!("--series {range}: {e}"))?;
    let list = crate::debian::point_releases(&crate::debian::kernels(&series, da, flavour)?);
    if list.is_empty() {
        return Err(format!("--series {range}: no {arch} kernel in that range (cargo xtask kernels --series {range} --arch {arch})"));
    }
    Ok(list.into_iter().map(|k| (arch.to_string(), k.name)).collect())
}

#[derive(Clone, Debug)]
struct Row {
    kernel: String,
    arch: String,
    page_size: String,
    /// Byte order (`little`/`big`) and word size in bits, as the guest's /init reports them (the host's:
    /// xtask's own build).
    endian: String,
    word_bits: String,
    scenarios: String,
    divergences: String,
    expected: String,
    /// Golden mismatches of the named cases, `n.a.` when none was checked.
    golden: String,
    /// Named cases checked against a golden (`?` when unknown).
    golden_checked: String,
    unsupported: String,
    files: String,
    time_s: f64,
    exit: i32,
    error: Option<String>,
    report: String,
    /// The command that reruns the first divergent generated scenario on this kernel.
    replay: String,
}

/// A top-level value of a pretty-printed JSON object (`  "key": value,`); enough for madcheck's report,
/// without a JSON crate (xtask is std only).
fn top_level(json: &str, key: &str) -> Option<String> {
    let pat = format!("\n  \"{key}\": ");
    let i = json.find(&pat)? + pat.len();
    let rest = &json[i..];
    let end = rest.find(",\n").or_else(|| rest.find('\n')).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('"').to_string())
}

fn nested(json: &str, obj: &str, key: &str) -> Option<String> {
    let pat = format!("\n  \"{obj}\": {{");
    let i = json.find(&pat)? + pat.len();
    let body = &json[i..i + json[i..].find("\n  }")?];
    let pat = format!("\"{key}\": ");
    let j = body.find(&pat)? + pat.len();
    let rest = &body[j..];
    let end = rest.find([',', '\n']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

fn host_row(generate: u64, seed: u64, corpus: bool) -> Row {
    let t0 = Instant::now();
    let report = qemu::qemu_dir().join("reports/host.json");
    let _ = std::fs::create_dir_all(report.parent().unwrap());
    let _ = std::fs::remove_file(&report);
    let exe = util::target_dir().join("release/madcheck");
    let mut c = std::process::Command::new(&exe);
    c.args(["run", "--generate", &generate.to_string(), "--seed", &seed.to_string(), "--quiet", "--report"])
        .arg(&report)
        .stdout(std::process::Stdio::null());
    if corpus {
        c.arg("--cases").arg(util::root().join("cases/corpus"));
    }
    let rc = util::status(c).unwrap_or(1);
    let json = std::fs::read_to_string(&report).unwrap_or_default();
    let g = |k: &str| top_level(&json, k).unwrap_or_else(|| "?".into());
    let v = |k: &str| nested(&json, "verdicts", k).unwrap_or_else(|| "?".into());
    let golden = match top_level(&json, "golden_checked").as_deref() {
        Some(n) if n != "0" => g("golden_mismatches"),
        _ => "n.a.".into(),
    };
    Row {
        kernel: g("kernel"),
        arch: g("arch"),
        page_size: g("page_size"),
        endian: if cfg!(target_endian = "big") { "big" } else { "little" }.into(),
        word_bits: usize::BITS.to_string(),
        scenarios: g("scenarios"),
        divergences: v("diverge"),
        expected: v("expected_divergence"),
        golden,
        golden_checked: g("golden_checked"),
        unsupported: v("unsupported"),
        files: "host".into(),
        time_s: t0.elapsed().as_secs_f64(),
        exit: rc,
        error: if json.is_empty() { Some(format!("{} wrote no report", exe.display())) } else { None },
        replay: first_divergent(&json).map(|i| format!("cargo xtask run --seed {seed} --scenario {i}")).unwrap_or_default(),
        report: report.display().to_string(),
    }
}

/// The index of the first divergent generated scenario in a report (`"scenario": "gen-S-N"` after
/// `"divergences"`), pretty or compact.
fn first_divergent(json: &str) -> Option<u64> {
    const KEY: &str = "\"divergences\"";
    let d = &json[json.find(KEY)? + KEY.len()..];
    let d = d.trim_start().strip_prefix(':')?.trim_start().strip_prefix('[')?;
    if d.trim_start().starts_with(']') {
        return None;
    }
    // The first entry's first field is its scenario id.
    let d = &d[d.find("\"scenario\"")? + "\"scenario\"".len()..];
    let id = d.trim_start().strip_prefix(':')?.trim_start().strip_prefix("\"gen-")?;
    let id = &id[id.find('-')? + 1..];
    id[..id.find('"')?].parse().ok()
}

fn guest_row(o: &Outcome, arch: &str, alias: &str, seed: u64) -> Row {
    let r = |k: &str| o.result.get(k).cloned().unwrap_or_else(|| "?".into());
    let json = o.report.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    Row {
        kernel: o.result.get("kernel").cloned().unwrap_or_else(|| format!("{alias} ({})", o.label)),
        arch: arch.to_string(),
        page_size: r("page_size"),
        endian: r("endian"),
        word_bits: r("word_bits"),
        scenarios: r("scenarios"),
        divergences: r("diverge"),
        expected: r("expected"),
        golden: match o.result.get("golden_checked").map(String::as_str) {
            Some(n) if n != "0" && n != "?" => r("golden_mismatches"),
            _ => "n.a.".into(),
        },
        golden_checked: r("golden_checked"),
        unsupported: r("unsupported"),
        files: r("files"),
        time_s: o.elapsed.as_secs_f64(),
        exit: o.exit,
        error: o.error.clone(),
        replay: first_divergent(&json)
            .map(|i| format!("cargo xtask qemu --kernel {alias} --arch {arch} --seed {seed} --scenario {i}"))
            .unwrap_or_default(),
        report: o.report.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    }
}

fn json_num_or_null(s: &str) -> String {
    if s.parse::<f64>().is_ok() {
        s.to_string()
    } else {
        "null".into()
    }
}

fn write_json(path: &Path, rows: &[Row], generate: u64, seed: u64, total: f64) -> Result<(), String> {
    let mut s = format!("{{\n  \"generate\": {generate},\n  \"seed\": {seed},\n  \"total_time_s\": {total:.1},\n  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        s += &format!(
            "    {{\"kernel\": {}, \"arch\": {}, \"page_size\": {}, \"endian\": {}, \"word_bits\": {}, \"scenarios\": {}, \"divergences\": {}, \
             \"expected_divergences\": {}, \"golden_mismatches\": {}, \"golden_checked\": {}, \"unsupported\": {}, \"files\": {}, \
             \"time_s\": {:.1}, \"exit\": {}, \"error\": {}, \"report\": {}}}{}\n",
            json_str(&r.kernel),
            json_str(&r.arch),
            json_num_or_null(&r.page_size),
            json_str(&r.endian),
            json_num_or_null(&r.word_bits),
            json_num_or_null(&r.scenarios),
            json_num_or_null(&r.divergences),
            json_num_or_null(&r.expected),
            json_num_or_null(&r.golden),
            json_num_or_null(&r.golden_checked),
            json_num_or_null(&r.unsupported),
            json_str(&r.files),
            r.time_s,
            r.exit,
            r.error.as_deref().map(json_str).unwrap_or_else(|| "null".into()),
            json_str(&r.report),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    s += "  ]\n}\n";
    std::fs::write(path, s).map_err(|e| format!("write {}: {e}", path.display()))
}

fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<30} {:<11} {:>6} {:<6} {:>4} {:>9} {:>11} {:>8} {:>7} {:>11} {:<6} {:>7}\n",
        "kernel", "arch", "page", "endian", "word", "scenarios", "divergences", "expected", "golden", "unsupported", "files", "time"
    );
    for r in rows {
        let page = r.page_size.parse::<u64>().map(|p| format!("{}K", p / 1024)).unwrap_or_else(|_| r.page_size.clone());
        s += &format!(
            "{:<30} {:<11} {:>6} {:<6} {:>4} {:>9} {:>11} {:>8} {:>7} {:>11} {:<6} {:>6.0}s{}\n",
            r.kernel,
            r.arch,
            page,
            r.endian,
            r.word_bits,
            r.scenarios,
            r.divergences,
            r.expected,
            if r.golden == "n.a." { r.golden.clone() } else { format!("{}/{}", r.golden, r.golden_checked) },
            r.unsupported,
            r.files,
            r.time_s,
            if r.error.is_some() || r.exit != 0 { "  FAIL" } else { "" }
        );
    }
    s
}

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut generate = 2000u64;
    let mut seed = 1u64;
    let mut kernels: Vec<(String, String)> = DEFAULT_KERNELS.iter().map(|(a, k)| (a.to_string(), k.to_string())).collect();
    let mut host = true;
    let mut vms = 2usize;
    let mut build = true;
    let mut corpus = true;
    // Guests are thrown away, so they also run the destructive scenario classes (hugetlb with fork or
    // mremap); the host never does.
    let mut destructive = true;
    let mut series: Option<String> = None;
    let mut series_arch = "x86_64".to_string();
    let mut flags = crate::args::Flags::new(args);
    while let Some(f) = flags.next() {
        match f.name {
            "--generate" => generate = flags.value(&f)?.parse().map_err(|_| "--generate: not a number")?,
            "--seed" => seed = flags.value(&f)?.parse().map_err(|_| "--seed: not a number")?,
            "--jobs" => vms = flags.value(&f)?.parse::<usize>().map_err(|_| "--jobs: not a number")?.max(1),
            "--no-host" => host = false,
            "--no-build" => build = false,
            "--corpus" => corpus = true,
            "--no-corpus" => corpus = false,
            "--destructive" => destructive = true,
            "--no-destructive" => destructive = false,
            "--kernels" => kernels = parse_kernels(&flags.value(&f)?)?,
            "--series" => series = Some(flags.value(&f)?),
            "--arch" => series_arch = flags.value(&f)?,
            _ => return Err(format!(
                "unknown argument {:?}\nusage: cargo xtask matrix [--generate N] [--seed S] [--kernels arch:kernel,... | --series 6.16..newest [--arch A]] [--no-host] [--jobs VMS] [--no-corpus] [--no-destructive] [--no-build]",
                f.raw
            )),
        }
    }
    if let Some(range) = &series {
        kernels = series_kernels(range, &series_arch)?;
        eprintln!("xtask matrix: series {range} on {series_arch}: {} point releases", kernels.len());
    }
    let t0 = Instant::now();
    let mut rows = Vec::new();
    if host {
        if build {
            let mut b = util::cargo();
            b.args(["build", "--release", "-p", "harness", "--bin", "madcheck"]);
            let rc = util::status(b)?;
            if rc != 0 {
                return Err(format!("building madcheck failed (exit {rc})"));
            }
        }
        eprintln!("xtask matrix: host, {generate} scenarios (seed {seed})");
        rows.push(host_row(generate, seed, corpus));
        eprintln!("{}", table(&rows[rows.len() - 1..]).lines().nth(1).unwrap_or(""));
    }
    // Prepare sequentially (apt and cargo take locks), then boot `vms` at a time.
    let mut prepared = Vec::new();
    let mut failed_prep: Vec<Row> = Vec::new();
    let mut built = BTreeMap::new();
    for (arch, k) in &kernels {
        let spec = Spec {
            kernel: k.clone(),
            arch: Some(arch.clone()),
            generate,
            seed,
            ktap: false,
            files: None,
            config: None,
            memory_mib: 1024,
            timeout: Duration::from_secs(3 * 3600),
            build: build && !built.contains_key(arch),
            echo: false,
            corpus,
            scenarios: Vec::new(),
            emit_goldens: false,
            extra_args: if destructive { vec!["--destructive".into()] } else { Vec::new() },
            extra_files: Vec::new(),
            append: Vec::new(),
            cpu: None,
        };
        eprintln!("xtask matrix: preparing {arch} {k}");
        match qemu::prepare(&spec) {
            Ok(p) => {
                built.insert(arch.clone(), ());
                prepared.push((arch.clone(), k.clone(), p));
            }
            Err(e) => failed_prep.push(Row {
                kernel: k.clone(),
                arch: arch.clone(),
                page_size: "?".into(),
                endian: "?".into(),
                word_bits: "?".into(),
                scenarios: "?".into(),
                divergences: "?".into(),
                expected: "?".into(),
                golden: "n.a.".into(),
                golden_checked: "?".into(),
                unsupported: "?".into(),
                files: "?".into(),
                time_s: 0.0,
                exit: 1,
                error: Some(format!("prepare: {e}")),
                report: String::new(),
                replay: String::new(),
            }),
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<(usize, Row)>> = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..vms.min(prepared.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((arch, k, p)) = prepared.get(i) else { break };
                eprintln!("xtask matrix: booting {arch} {} ({k})", p.label);
                let o = qemu::boot(p);
                eprintln!("xtask matrix: {arch} {}: {}", p.label, qemu::describe(&o).lines().next().unwrap_or(""));
                results.lock().unwrap().push((i, guest_row(&o, arch, k, seed)));
            });
        }
    });
    let mut guest_rows = results.into_inner().unwrap();
    guest_rows.sort_by_key(|(i, _)| *i);
    rows.extend(guest_rows.into_iter().map(|(_, r)| r));
    rows.extend(failed_prep);
    let total = t0.elapsed().as_secs_f64();
    println!("madcheck matrix: {generate} generated scenarios (seed {seed}) per kernel, {total:.0}s in total");
    print!("{}", table(&rows));
    for r in rows.iter().filter(|r| r.error.is_some()) {
        println!("{} {}: {}", r.arch, r.kernel, r.error.as_deref().unwrap_or(""));
    }
    for r in rows.iter().filter(|r| r.divergences != "0" && !r.replay.is_empty()) {
        println!("{} {}: first divergence: {}", r.arch, r.kernel, r.replay);
    }
    let json = util::target_dir().join("matrix.json");
    write_json(&json, &rows, generate, seed, total)?;
    println!("table: {}; per-kernel reports: {}", json.display(), qemu::qemu_dir().join("reports").display());
    let bad = rows.iter().any(|r| r.exit != 0 || r.error.is_some() || r.divergences != "0" || (r.golden != "n.a." && r.golden != "0"));
    if bad {
        println!("matrix: FAIL (a kernel diverged from its model or from its recorded goldens, or did not report); see the reports above");
    }
    Ok(i32::from(bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_level_report_fields() {
        let j = "{\n  \"kernel\": \"6.18\",\n  \"scenarios\": 12,\n  \"verdicts\": {\n    \"match\": 10,\n    \"diverge\": 2\n  },\n  \"x\": 1\n}";
        assert_eq!(top_level(j, "kernel").as_deref(), Some("6.18"));
        assert_eq!(top_level(j, "scenarios").as_deref(), Some("12"));
        assert_eq!(nested(j, "verdicts", "diverge").as_deref(), Some("2"));
        assert_eq!(nested(j, "verdicts", "match").as_deref(), Some("10"));
        let r = r#"{"report":{"x":"gen-1-1","divergences":[{"scenario":"gen-3-980","step":"5"}]}}"#;
        assert_eq!(first_divergent(r), Some(980));
        assert_eq!(first_divergent(r#"{"divergences": [], "expected_divergences": [{"scenario": "gen-1-2"}]}"#), None);
        assert_eq!(first_divergent("{\n  \"divergences\": [\n    {\n      \"scenario\": \"gen-3-7\",\n"), Some(7));
    }
}
