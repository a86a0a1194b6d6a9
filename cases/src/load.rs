//! Scenario files: one JSON object per file, the file stem is the id.
//!
//! Invariant: every error names the file and, where there is one, the JSON path of the bad field
//! (`steps[2].advice`). serde alone cannot do that for steps and maps: they are internally tagged
//! (`"op"`) or decoded through a private raw form (`MapSpec`), so serde buffers them and reports errors
//! at `steps[2]` with no field. So a light structural pass runs first and checks each step's and map's
//! fields one by one against the shape of `simulator::Step`/`MapSpec`; the real decoding is still
//! serde's (`serde_path_to_error` names the path for everything else), so the pass only ever makes an
//! error more precise, never changes what loads.

use crate::{validate, CaseError, Provenance, Scenario};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{Map, Value};
use simulator::program::{AdviceArg, FileSpec, MapSpec, PidfdTarget, Program, Prot, Step};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The file form of a scenario: `Scenario` with `id` optional (the stem) and `provenance` ignored
/// (the loader sets it). The program's fields are spelled out rather than flattened, because serde's
/// `deny_unknown_fields` does not work through `flatten`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[allow(dead_code)]
    provenance: Option<IgnoredAny>,
    arena_pages: u32,
    #[serde(default)]
    files: Vec<FileSpec>,
    maps: Vec<MapSpec>,
    steps: Vec<Step>,
    #[serde(default)]
    word_bits: Option<u32>,
}

const TOP_FIELDS: &[&str] = &["id", "description", "provenance", "arena_pages", "files", "maps", "steps", "word_bits"];

/// Reads, decodes and validates one scenario file. Only a regular file is read, and never more than
/// `MAX_CASE_BYTES` of it: a fifo would block the run forever and `/dev/zero` would fill memory.
pub fn load_scenario(path: &Path) -> Result<Scenario, CaseError> {
    use std::io::Read;
    let origin = path.display().to_string();
    let err = |msg: String| CaseError::new(&origin, "", msg);
    // "No such file or directory (os error 2)" → the part a person reads.
    let plain = |e: std::io::Error| {
        let msg = e.to_string();
        msg.split(" (os error").next().unwrap_or(&msg).to_string()
    };
    let md = fs::metadata(path).map_err(|e| err(format!("cannot read: {}", plain(e))))?;
    if md.is_dir() {
        return Err(err("cannot read: is a directory, not a case file (--cases DIR takes a directory)".into()));
    }
    if !md.is_file() {
        return Err(err("cannot read: not a regular file (a fifo, socket or device); a case is a JSON file".into()));
    }
    let max = crate::validate::MAX_CASE_BYTES;
    let too_big = |n: u64| err(format!("{n} bytes: a case file is at most {max} bytes"));
    if md.len() > max {
        return Err(too_big(md.len()));
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| err(format!("cannot read: {}", plain(e))))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        err(format!("not UTF-8 text (invalid byte at offset {at}); a case is a JSON file"))
    })?;
    load_str(&text, path)
}

/// Decodes and validates a scenario whose text is `text`, as if it had been read from `path` (which
/// gives the id and the provenance; nothing is read from disk).
pub fn load_str(text: &str, path: &Path) -> Result<Scenario, CaseError> {
    let origin = path.display().to_string();
    let err = |field: &str, msg: String| CaseError::new(&origin, field, msg);
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
        return Err(err("", "the file name has no UTF-8 stem to use as the id".into()));
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let hint = if text.starts_with('\u{feff}') { " (the file starts with a byte-order mark; save it without one)" } else { "" };
        err("", format!("not JSON: {e}{hint}"))
    })?;
    // serde_json keeps the last of two equal keys without a word; a case that says two things is refused.
    if let Some(field) = duplicate_key(text) {
        let key = field.rsplit(['.', ']']).next().unwrap_or(&field).to_string();
        return Err(err(&field, format!("duplicate field {key:?}: each key may appear once in an object")));
    }
    let Some(obj) = value.as_object() else {
        return Err(err("", "a scenario file holds one JSON object".into()));
    };
    for key in obj.keys() {
        if !TOP_FIELDS.contains(&key.as_str()) {
            return Err(err(key, unknown_field(key, TOP_FIELDS)));
        }
    }
    precheck(obj).map_err(|(field, msg)| err(&field, msg))?;

    let form: FileForm = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        err(&path, e.inner().to_string())
    })?;
    let id = match form.id {
        Some(id) if id != stem => {
            return Err(err("id", format!("id {id:?} differs from the file stem {stem:?}; the stem is the id")))
        }
        Some(id) => id,
        None => stem.to_string(),
    };
    let scenario = Scenario {
        id,
        description: form.description,
        provenance: Provenance::File { path: origin.clone() },
        program: Program {
            arena_pages: form.arena_pages,
            files: form.files,
            maps: form.maps,
            steps: form.steps,
            word_bits: form.word_bits,
        },
    };
    validate(&scenario)?;
    Ok(scenario)
}

/// Loads every `*.json` under `dir` (recursively), sorted by id. Duplicate ids are an error.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, CaseError> {
    let mut paths = Vec::new();
    collect_json(dir, &mut paths)?;
    // Sorted paths make the first error, and which duplicate is reported, the same on every run.
    paths.sort();
    let mut by_id: BTreeMap<String, Scenario> = BTreeMap::new();
    for p in paths {
        let s = load_scenario(&p)?;
        if let Some(first) = by_id.get(&s.id) {
            return Err(CaseError::new(
                s.origin(),
                "id",
                format!("duplicate id {:?} (also {})", s.id, first.origin()),
            ));
        }
        by_id.insert(s.id.clone(), s);
    }
    Ok(by_id.into_values().collect())
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CaseError> {
    let origin = dir.display().to_string();
    let entries = fs::read_dir(dir).map_err(|e| CaseError::new(&origin, "", format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| CaseError::new(&origin, "", format!("cannot list: {e}")))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| CaseError::new(path.display().to_string(), "", e.to_string()))?;
        if ty.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// The JSON path of the first repeated key in `text` (already known to be valid JSON), if any.
fn duplicate_key(text: &str) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;
    use std::collections::HashSet;

    /// Walks one value at `path`; on a repeated key it records the key's path in `found` and fails.
    struct Walk<'a> {
        path: String,
        found: &'a RefCell<Option<String>>,
    }
    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq.next_element_seed(Walk { path: format!("{}[{i}]", self.path), found: self.found })?.is_some() {
                i += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
                if !seen.insert(key) {
                    *self.found.borrow_mut() = Some(path);
                    return Err(A::Error::custom("duplicate key"));
                }
                map.next_value_seed(Walk { path, found: self.found })?;
            }
            Ok(())
        }
    }
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = Walk { path: String::new(), found: &found }.deserialize(&mut de);
    found.into_inner()
}

fn unknown_field(key: &str, known: &[&str]) -> String {
    format!("unknown field {key:?} (known: {})", known.join(", "))
}

type Problem = (String, String);

/// What a field must decode as; mirrors the field types of `simulator::Step` and `MapSpec`.
#[derive(Clone, Copy)]
enum Ty {
    I64,
    U32,
    U8,
    Bool,
    Prot,
    Advice,
    Kind,
    Map,
    Children,
    Step,
    Falloc,
    U64,
    Target,
    Iov,
    I32,
    Rights,
    Seals,
}

const IOV_FIELDS: &[(&str, Ty, bool)] =
    &[("page", Ty::I64, true), ("offset", Ty::I64, false), ("len_pages", Ty::I64, false), ("len_bytes", Ty::I64, false)];

const MAP_FIELDS: &[(&str, Ty, bool)] = &[
    ("page", Ty::U32, true),
    ("pages", Ty::U32, true),
    ("prot", Ty::Prot, true),
    ("kind", Ty::Kind, true),
    ("file", Ty::U32, false),
    ("offset", Ty::U32, false),
    ("populate", Ty::Bool, false),
    ("locked", Ty::Bool, false),
    ("noreserve", Ty::Bool, false),
];
const KINDS: &[&str] =
    &["anon_private", "anon_shared", "file_private", "file_shared", "hugetlb_private", "hugetlb_shared", "anon_droppable"];
const OPS: &[&str] =
    &[
        "madvise", "write", "read", "mprotect", "munmap", "mmap", "mlock", "munlock", "fork", "fork_live", "in_child",
        "child_exit", "mseal", "mremap", "try_write", "try_read", "ftruncate", "fallocate", "process_madvise",
        "close",
        "pkey_alloc", "pkey_free", "pkey_mprotect", "pkey_set", "seal",
    ];

fn step_fields(op: &str) -> Option<&'static [(&'static str, Ty, bool)]> {
    Some(match op {
        "madvise" => &[
            ("page", Ty::I64, true),
            ("offset", Ty::I64, false),
            ("len_pages", Ty::I64, false),
            ("len_bytes", Ty::I64, false),
            ("advice", Ty::Advice, true),
        ],
        "write" | "try_write" => &[("page", Ty::U32, true), ("fill", Ty::U8, true)],
        "read" | "try_read" => &[("page", Ty::U32, true)],
        "mprotect" => &[("page", Ty::U32, true), ("pages", Ty::U32, true), ("prot", Ty::Prot, true)],
        "munmap" | "munlock" | "mseal" => &[("page", Ty::U32, true), ("pages", Ty::U32, true)],
        "mremap" => &[
            ("page", Ty::U32, true),
            ("pages", Ty::U32, true),
            ("new_pages", Ty::U32, true),
            ("to", Ty::U32, false),
            ("dontunmap", Ty::Bool, false),
        ],
        "mlock" => &[("page", Ty::U32, true), ("pages", Ty::U32, true), ("onfault", Ty::Bool, false)],
        "ftruncate" => &[("file", Ty::U32, true), ("pages", Ty::U32, true)],
        "close" => &[("file", Ty::U32, true)],
        "seal" => &[("file", Ty::U32, true), ("seals", Ty::Seals, true)],
        "fallocate" => &[("file", Ty::U32, true), ("page", Ty::U32, true), ("pages", Ty::U32, true), ("mode", Ty::Falloc, true)],
        "mmap" => &[("map", Ty::Map, true)],
        "fork" => &[("child", Ty::Children, false)],
        "fork_live" | "child_exit" => &[],
        "in_child" => &[("step", Ty::Step, true)],
        "pkey_alloc" => &[("rights", Ty::Rights, true)],
        "pkey_free" => &[("pkey", Ty::I32, true)],
        "pkey_mprotect" => &[("page", Ty::U32, true), ("pages", Ty::U32, true), ("prot", Ty::Prot, true), ("pkey", Ty::I32, true)],
        "pkey_set" => &[("pkey", Ty::U32, true), ("rights", Ty::Rights, true)],
        "process_madvise" => &[
            ("target", Ty::Target, true),
            ("iov", Ty::Iov, true),
            ("vlen", Ty::U64, false),
            ("advice", Ty::Advice, true),
            ("flags", Ty::U32, false),
        ],
        _ => return None,
    })
}

fn precheck(obj: &Map<String, Value>) -> Result<(), Problem> {
    if let Some(Value::Array(maps)) = obj.get("maps") {
        for (i, m) in maps.iter().enumerate() {
            if let Value::Object(m) = m {
                check_fields(m, &format!("maps[{i}]"), MAP_FIELDS, "map")?;
            }
        }
    }
    if let Some(Value::Array(steps)) = obj.get("steps") {
        for (i, s) in steps.iter().enumerate() {
            precheck_step(s, &format!("steps[{i}]"))?;
        }
    }
    Ok(())
}

fn precheck_step(v: &Value, path: &str) -> Result<(), Problem> {
    let Value::Object(obj) = v else { return Ok(()) };
    let op = match obj.get("op") {
        None => return Err((path.into(), format!("missing field \"op\" (one of: {})", OPS.join(", ")))),
        Some(Value::String(op)) => op.as_str(),
        Some(_) => return Err((format!("{path}.op"), format!("op must be a string, one of: {}", OPS.join(", ")))),
    };
    let Some(fields) = step_fields(op) else {
        return Err((format!("{path}.op"), format!("unknown op {op:?} (known: {})", OPS.join(", "))));
    };
    check_fields(obj, path, fields, op)?;
    if let Some(Value::Object(map)) = obj.get("map") {
        check_fields(map, &format!("{path}.map"), MAP_FIELDS, "map")?;
    }
    if let Some(Value::Array(iov)) = obj.get("iov") {
        for (j, e) in iov.iter().enumerate() {
            let at = format!("{path}.iov[{j}]");
            let Value::Object(e) = e else {
                return Err((at, "an iovec element is an object {\"page\": N, \"offset\", \"len_pages\", \"len_bytes\"}".into()));
            };
            check_fields(e, &at, IOV_FIELDS, "iov")?;
        }
    }
    if let (Some("in_child"), Some(inner)) = (obj.get("op").and_then(Value::as_str), obj.get("step")) {
        precheck_step(inner, &format!("{path}.step"))?;
    }
    if let Some(Value::Array(child)) = obj.get("child") {
        for (j, c) in child.iter().enumerate() {
            precheck_step(c, &format!("{path}.child[{j}]"))?;
        }
    }
    Ok(())
}

fn check_fields(obj: &Map<String, Value>, path: &str, fields: &[(&str, Ty, bool)], what: &str) -> Result<(), Problem> {
    let file_backed = matches!(obj.get("kind").and_then(Value::as_str), Some("file_private" | "file_shared"));
    let allowed = |name: &str| match name {
        // file and offset belong to the file-backed kinds only.
        "file" | "offset" if what == "map" => file_backed,
        _ => true,
    };
    let is_step = !matches!(what, "map" | "iov");
    let names: Vec<&str> = fields.iter().map(|f| f.0).filter(|n| allowed(n)).chain(is_step.then_some("op")).collect();
    for (key, val) in obj {
        if key == "op" && is_step {
            continue;
        }
        let Some(&(_, ty, _)) = fields.iter().find(|f| f.0 == key && allowed(f.0)) else {
            let mut msg = unknown_field(key, &names);
            if is_step {
                msg = format!("{msg} for op {what:?}");
            }
            if what == "mmap" && MAP_FIELDS.iter().any(|f| f.0 == key) {
                msg.push_str("; an mmap step nests its mapping: {\"op\": \"mmap\", \"map\": {...}}");
            }
            return Err((format!("{path}.{key}"), msg));
        };
        check_value(val, ty).map_err(|m| (format!("{path}.{key}"), m))?;
    }
    for &(name, _, required) in fields {
        let required = required || (name == "file" && what == "map" && file_backed);
        if required && !obj.contains_key(name) {
            return Err((path.into(), format!("missing field {name:?}")));
        }
    }
    Ok(())
}

fn check_value(v: &Value, ty: Ty) -> Result<(), String> {
    fn de<T: DeserializeOwned>(v: &Value) -> Result<(), String> {
        T::deserialize(v).map(drop).map_err(|e| e.to_string())
    }
    match ty {
        Ty::I64 => de::<i64>(v),
        Ty::U32 => de::<u32>(v),
        Ty::U8 => de::<u8>(v),
        Ty::Bool => de::<bool>(v),
        Ty::Prot => de::<Prot>(v),
        Ty::Advice => de::<AdviceArg>(v),
        Ty::Kind => match v.as_str() {
            Some(k) if KINDS.contains(&k) => Ok(()),
            _ => Err(format!("unknown mapping kind {v} (known: {})", KINDS.join(", "))),
        },
        // The map's fields and each child are checked by the caller; here only the container.
        Ty::Map => de::<Map<String, Value>>(v),
        Ty::Children => de::<Vec<IgnoredAny>>(v),
        // The step itself is checked by the caller (precheck_step); here only the container.
        Ty::Step => de::<Map<String, Value>>(v),
        Ty::Falloc => de::<simulator::program::FallocMode>(v),
        Ty::Seals => match v.as_array() {
            None => Err(format!("expected an array of seal names, got {v}")),
            Some(xs) => xs.iter().try_for_each(|x| match x.as_str() {
                Some(n) if simulator::program::SealKind::ALL.iter().any(|k| k.name() == n) => Ok(()),
                _ => Err(format!(
                    "unknown seal {x} (known: {})",
                    simulator::program::SealKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                )),
            }),
        },
        Ty::U64 => de::<u64>(v),
        Ty::I32 => de::<i32>(v),
        Ty::Rights => de::<simulator::program::PkeyRights>(v),
        Ty::Target => match v.as_str() {
            Some(t) if PidfdTarget::ALL.iter().any(|k| k.name() == t) => Ok(()),
            _ => Err(format!(
                "unknown process_madvise target {v} (known: {})",
                PidfdTarget::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
            )),
        },
        // null (a NULL vector) or an array; the elements are checked by the caller.
        Ty::Iov => match v {
            Value::Null | Value::Array(_) => Ok(()),
            _ => Err("iov is an array of elements or null (a NULL vector)".into()),
        },
    }
}
