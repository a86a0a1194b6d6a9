//! The loader and validation: good files load, bad ones are rejected with the file and field named.

use cases::{load_dir, load_scenario, load_str, validate, CaseError, Provenance};
use rstest::rstest;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory for one test, removed again when the test ends, pass or fail (no tempfile crate:
/// std is enough for a few files). The counter keeps rstest cases, which run in parallel, out of each
/// other's directories.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("madcheck-cases-{}-{n}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = r#"{
  "arena_pages": 8,
  "files": [{ "kind": "disk", "pages": 4 }],
  "maps": [
    { "page": 0, "pages": 2, "prot": "rw-", "kind": "anon_private" },
    { "page": 3, "pages": 4, "prot": "r--", "kind": "file_shared", "file": 0, "offset": 0 }
  ],
  "steps": [
    { "op": "write", "page": 1, "fill": 9 },
    { "op": "madvise", "page": -2, "len_pages": 12, "advice": "dontneed" },
    { "op": "mmap", "map": { "page": 1, "pages": 3, "prot": "rw-", "kind": "file_private", "file": 0, "offset": 1 } },
    { "op": "fork", "child": [ { "op": "read", "page": 0 }, { "op": "madvise", "page": 0, "len_bytes": -1, "advice": 4 } ] }
  ]
}"#;

#[test]
fn a_good_file_loads_with_the_stem_as_id_and_file_provenance() {
    let dir = scratch("good");
    let p = write(&dir, "some_good_case.json", GOOD);
    let s = load_scenario(&p).unwrap();
    assert_eq!(s.id, "some_good_case");
    assert_eq!(s.provenance, Provenance::File { path: p.display().to_string() });
    assert_eq!(s.program.steps.len(), 4);
    validate(&s).unwrap();
}

fn err_for(name: &str, text: &str) -> (String, CaseError) {
    let dir = scratch(name);
    let p = write(&dir, &format!("{name}.json"), text);
    let e = load_scenario(&p).unwrap_err();
    (p.display().to_string(), e)
}

#[rstest]
#[case::unknown_advice_name(
    r#""steps": [{ "op": "madvise", "page": 0, "len_pages": 1, "advice": "DONTNEEDX" }]"#,
    "steps[0].advice", "unknown advice name \"DONTNEEDX\" (known: NORMAL")]
#[case::unknown_field_in_step(
    r#""steps": [{ "op": "write", "page": 0, "fill": 1, "colour": 2 }]"#,
    "steps[0].colour", "unknown field \"colour\"")]
#[case::unknown_op(r#""steps": [{ "op": "mremapx", "page": 0 }]"#, "steps[0].op", "unknown op \"mremapx\"")]
#[case::bad_prot(
    r#""steps": [{ "op": "mprotect", "page": 0, "pages": 1, "prot": "rwz" }]"#, "steps[0].prot", "bad protection")]
#[case::fill_out_of_range(r#""steps": [{ "op": "write", "page": 0, "fill": 256 }]"#, "steps[0].fill", "u8")]
#[case::child_field(
    r#""steps": [{ "op": "fork", "child": [{ "op": "read" }] }]"#, "steps[0].child[0]", "missing field \"page\"")]
#[case::grandchild_may_not_fork(
    r#""steps": [{ "op": "fork", "child": [{ "op": "fork", "child": [{ "op": "fork" }] }] }]"#, "steps[0].child[0].child[0]", "may not fork again")]
#[case::madvise_escapes_the_arena(
    r#""steps": [{ "op": "madvise", "page": 0, "len_pages": 100, "advice": "DONTNEED" }]"#,
    "steps[0].len_pages", "could reach the worker's own mappings")]
#[case::madvise_page_too_low(
    r#""steps": [{ "op": "madvise", "page": -65, "advice": "NORMAL" }]"#, "steps[0].page", "outside [-64, 72]")]
#[case::madvise_aligned_on_4k_only(
    r#""steps": [{ "op": "madvise", "page": 8, "offset": 262144, "len_pages": 1, "advice": "FREE" }]"#,
    "steps[0].len_pages", "with 4096-byte pages")]
#[case::write_outside(r#""steps": [{ "op": "write", "page": 8, "fill": 1 }]"#, "steps[0].page", "not inside the arena")]
#[case::try_write_outside(r#""steps": [{ "op": "try_write", "page": 8, "fill": 1 }]"#, "steps[0].page", "not inside the arena")]
#[case::try_read_extra_field(r#""steps": [{ "op": "try_read", "page": 0, "fill": 1 }]"#, "steps[0].fill", "unknown field \"fill\"")]
#[case::mmap_past_eof(
    r#""steps": [{ "op": "mmap", "map": { "page": 0, "pages": 3, "prot": "rw-", "kind": "file_shared", "file": 0, "offset": 2 } }]"#,
    "steps[0].map.offset", "past the end of files[0]")]
#[case::mmap_unknown_field(
    r#""steps": [{ "op": "mmap", "map": { "page": 0, "pages": 1, "prot": "rw-", "kind": "anon_shared", "offset": 0 } }]"#,
    "steps[0].map.offset", "unknown field \"offset\"")]
#[case::mmap_flat_is_rejected(
    r#""steps": [{ "op": "mmap", "page": 0, "pages": 1, "prot": "rw-", "kind": "anon_shared" }]"#,
    "steps[0].kind", "an mmap step nests its mapping")]
#[case::zero_pages(r#""steps": [{ "op": "munmap", "page": 0, "pages": 0 }]"#, "steps[0].pages", "at least 1")]
#[case::in_child_without_live_child(
    r#""steps": [{ "op": "in_child", "step": { "op": "read", "page": 0 } }]"#, "steps[0].op", "needs a live child")]
#[case::child_exit_without_live_child(r#""steps": [{ "op": "child_exit" }]"#, "steps[0].op", "needs a live child")]
#[case::two_live_children(r#""steps": [{ "op": "fork_live" }, { "op": "fork_live" }]"#, "steps[1]", "one at a time")]
#[case::fork_while_live(r#""steps": [{ "op": "fork_live" }, { "op": "fork" }]"#, "steps[1]", "child_exit first")]
#[case::in_child_step_field_is_checked(
    r#""steps": [{ "op": "fork_live" }, { "op": "in_child", "step": { "op": "write", "page": 0, "colour": 1 } }]"#,
    "steps[1].step.colour", "unknown field \"colour\"")]
#[case::in_child_step_is_required(r#""steps": [{ "op": "fork_live" }, { "op": "in_child" }]"#, "steps[1]", "missing field \"step\"")]
#[case::in_child_may_not_nest(
    r#""steps": [{ "op": "fork_live" }, { "op": "in_child", "step": { "op": "child_exit" } }]"#,
    "steps[1].step", "top-level step")]
#[case::fork_live_takes_no_fields(r#""steps": [{ "op": "fork_live", "child": [] }]"#, "steps[0].child", "unknown field \"child\"")]
#[case::unknown_seal(r#""steps": [{ "op": "seal", "file": 0, "seals": ["write", "exec"] }]"#, "steps[0].seals", "unknown seal \"exec\"")]
#[case::seals_not_a_list(r#""steps": [{ "op": "seal", "file": 0, "seals": "write" }]"#, "steps[0].seals", "array of seal names")]
#[case::seal_needs_seals(r#""steps": [{ "op": "seal", "file": 0 }]"#, "steps[0]", "missing field \"seals\"")]
#[case::seal_of_missing_file(r#""steps": [{ "op": "seal", "file": 2, "seals": [] }]"#, "steps[0].file", "file 2 does not exist")]
#[case::seal_in_fork_child(r#""steps": [{ "op": "fork", "child": [{ "op": "seal", "file": 0, "seals": [] }] }]"#, "steps[0].child[0]", "top-level step")]
fn bad_steps_name_the_file_and_field(#[case] steps: &str, #[case] field: &str, #[case] message: &str) {
    let text = format!(
        r#"{{ "arena_pages": 8, "files": [{{ "kind": "memfd", "pages": 4 }}],
             "maps": [{{ "page": 0, "pages": 2, "prot": "rw-", "kind": "anon_private" }}], {steps} }}"#
    );
    let (file, e) = err_for("bad_step", &text);
    assert_eq!((e.origin.as_str(), e.field.as_str()), (file.as_str(), field), "{e}");
    assert!(e.message.contains(message), "{e}");
    assert!(e.to_string().starts_with(&format!("{file}: {field}: ")), "{e}");
}

#[rstest]
#[case::overlap(
    r#""maps": [{ "page": 0, "pages": 4, "prot": "rw-", "kind": "anon_private" },
                { "page": 3, "pages": 2, "prot": "rw-", "kind": "anon_shared" }]"#,
    "maps[1].page", "overlap maps[0]")]
#[case::unknown_field_in_map(
    r#""maps": [{ "page": 0, "pages": 4, "prot": "rw-", "kind": "anon_private", "file": 0 }]"#,
    "maps[0].file", "unknown field \"file\"")]
#[case::unknown_kind(
    r#""maps": [{ "page": 0, "pages": 4, "prot": "rw-", "kind": "anon" }]"#, "maps[0].kind", "unknown mapping kind")]
#[case::locked_droppable_layout(
    r#""maps": [{ "page": 0, "pages": 4, "prot": "rw-", "kind": "anon_droppable", "locked": true }]"#, "maps[0].locked", "cannot be locked")]
#[case::droppable_with_file(
    r#""maps": [{ "page": 0, "pages": 4, "prot": "rw-", "kind": "anon_droppable", "file": 0 }]"#, "maps[0].file", "unknown field \"file\"")]
#[case::missing_file(
    r#""maps": [{ "page": 0, "pages": 1, "prot": "rw-", "kind": "file_private", "file": 3, "offset": 0 }]"#,
    "maps[0].file", "file 3 does not exist")]
#[case::file_without_file(
    r#""maps": [{ "page": 0, "pages": 1, "prot": "rw-", "kind": "file_shared", "offset": 0 }]"#,
    "maps[0]", "missing field \"file\"")]
#[case::past_eof(
    r#""maps": [{ "page": 0, "pages": 4, "prot": "rw-", "kind": "file_private", "file": 0, "offset": 1 }]"#,
    "maps[0].offset", "past the end")]
#[case::outside(r#""maps": [{ "page": 6, "pages": 3, "prot": "rw-", "kind": "anon_private" }]"#, "maps[0].page", "not inside")]
#[case::bad_file_kind(r#""files": [{ "kind": "tape", "pages": 1 }], "maps": []"#, "files[0].kind", "unknown variant")]
#[case::sealing_disk_file(r#""files": [{ "kind": "disk", "pages": 1, "sealing": true }], "maps": []"#, "files[0].sealing", "only for memfd and hugetlb")]
fn bad_layouts_name_the_file_and_field(#[case] body: &str, #[case] field: &str, #[case] message: &str) {
    let files = if body.contains("\"files\"") { "" } else { r#""files": [{ "kind": "disk", "pages": 4 }],"# };
    let text = format!(r#"{{ "arena_pages": 8, {files} {body}, "steps": [] }}"#);
    let (file, e) = err_for("bad_layout", &text);
    assert_eq!((e.origin.as_str(), e.field.as_str()), (file.as_str(), field), "{e}");
    assert!(e.message.contains(message), "{e}");
}

#[rstest]
#[case::unknown_top_field(r#"{ "arena_pages": 8, "maps": [], "steps": [], "colour": 1 }"#, "colour", "unknown field")]
#[case::missing_steps(r#"{ "arena_pages": 8, "maps": [] }"#, "", "missing field `steps`")]
#[case::arena_too_big(r#"{ "arena_pages": 8193, "maps": [], "steps": [] }"#, "arena_pages", "1..=8192")]
#[case::arena_zero(r#"{ "arena_pages": 0, "maps": [], "steps": [] }"#, "arena_pages", "1..=8192")]
#[case::arena_wrong_type(r#"{ "arena_pages": "8", "maps": [], "steps": [] }"#, "arena_pages", "invalid type")]
#[case::id_differs(r#"{ "id": "other", "arena_pages": 8, "maps": [], "steps": [] }"#, "id", "differs from the file stem")]
#[case::not_json(r#"{ "arena_pages": 8, "#, "", "not JSON")]
fn bad_files_name_the_file_and_field(#[case] text: &str, #[case] field: &str, #[case] message: &str) {
    let (file, e) = err_for("bad_file", text);
    assert_eq!((e.origin.as_str(), e.field.as_str()), (file.as_str(), field), "{e}");
    assert!(e.message.contains(message), "{e}");
}

#[test]
fn a_stem_that_is_not_snake_case_is_rejected() {
    let dir = scratch("badid");
    let p = write(&dir, "Bad-Name.json", r#"{ "arena_pages": 8, "maps": [], "steps": [] }"#);
    let e = load_scenario(&p).unwrap_err();
    assert_eq!(e.field, "id");
    assert!(e.message.contains("snake_case"), "{e}");
}

#[test]
fn a_missing_file_is_named() {
    let p = Path::new("cases/corpus/no_such_case.json");
    let e = load_scenario(p).unwrap_err();
    assert_eq!(e.to_string(), "cases/corpus/no_such_case.json: cannot read: No such file or directory");
}

#[test]
fn load_dir_walks_the_tree_sorts_by_id_and_rejects_duplicates() {
    let dir = scratch("dir");
    let min = r#"{ "arena_pages": 8, "maps": [], "steps": [] }"#;
    write(&dir, "zeta.json", min);
    write(&dir, "sub/alpha.json", min);
    write(&dir, "sub/deeper/mid.json", min);
    write(&dir, "notes.txt", "not a scenario");
    let ids: Vec<String> = load_dir(&dir).unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["alpha", "mid", "zeta"]);

    write(&dir, "other/alpha.json", min);
    let e = load_dir(&dir).unwrap_err();
    assert_eq!(e.field, "id");
    assert!(e.message.contains("duplicate id \"alpha\""), "{e}");
    assert!(e.to_string().contains("alpha.json"), "{e}");
}

#[test]
fn load_dir_reports_the_first_bad_file() {
    let dir = scratch("dirbad");
    write(&dir, "a.json", r#"{ "arena_pages": 8, "maps": [], "steps": [{ "op": "read", "page": 99 }] }"#);
    let e = load_dir(&dir).unwrap_err();
    assert!(e.to_string().ends_with("a.json: steps[0].page: pages [99, 100) are not inside the arena [0, 8)"), "{e}");
}

#[test]
fn the_corpus_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    // git keeps no empty directories: until the first case lands, a fresh clone has no corpus/.
    if !dir.exists() {
        return;
    }
    for s in load_dir(&dir).unwrap() {
        validate(&s).unwrap();
    }
}

/// Every ```json block in FORMAT.md is a complete scenario that loads and validates.
#[test]
fn format_md_examples_load() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("FORMAT.md")).unwrap();
    let mut n = 0;
    for block in text.split("```json\n").skip(1) {
        let body = block.split("```").next().unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let id = v["id"].as_str().unwrap();
        let s = load_str(body, Path::new(&format!("FORMAT.md/{id}.json"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.id, id);
        n += 1;
    }
    assert!(n >= 3, "FORMAT.md has {n} examples");
}

