#!/usr/bin/env python3
"""Writes the coverage cases: named cases that reach, on purpose, the coverage cells random scenarios hit
only by luck (harness/src/coverage/reach/, harness/tests/coverage.rs).

Run from the repository root: `python3 cases/corpus/make_coverage_cases.py` (not part of any build).
Those cells are a start kind followed by a VMA that decides the outcome of the walk. One case per such
terminator, which sits at pages 2-3, 6-7 and 10-11:

| family | terminator | advice | outcome it gives |
|---|---|---|---|
| sealed_ro | sealed read-only private anonymous | discard advice, GUARD_INSTALL | EPERM (mseal) |
| locked | MAP_LOCKED private anonymous | DONTNEED, FREE, REMOVE, COLD, PAGEOUT, GUARD_INSTALL | EINVAL |
| shared | shared anonymous | FREE, WIPEONFORK | EINVAL |
| private_file | private memfd mapping | REMOVE | EACCES |
| prot_none | PROT_NONE private anonymous | POPULATE_READ/WRITE | EINVAL |
| past_eof | shared memfd mapping grown past EOF by mremap | POPULATE_READ/WRITE | EFAULT |
| hole | none (from the seldom-drawn kinds only) | every generated advice and an invalid value | ENOMEM (0 for ranges that stop before it) |

Every start kind is mapped at pages 0-1 (mmap MAP_FIXED), then each advice of the family runs over
pages 0-3 (1-3 after a guard marker on page 0, so POPULATE does not stop there). Sealed starts sit at
pages 4-5 (private anonymous) and 8-9 (shared memfd, for REMOVE); a fork child and a range that starts in
a hole come last. An advice whose start VMA refuses it just shows that refusal.
"""
import json, os

# REMOVE and GUARD_INSTALL last: a later fault on a disk-file page REMOVE punched starts readahead, which
# the model does not know, and GUARD_INSTALL turns the start kind into `guarded`.
GENERATED = ["NORMAL", "RANDOM", "SEQUENTIAL", "WILLNEED", "DONTNEED", "FREE", "DONTFORK", "DOFORK",
             "MERGEABLE", "UNMERGEABLE", "HUGEPAGE", "NOHUGEPAGE", "DONTDUMP", "DODUMP", "WIPEONFORK", "KEEPONFORK",
             "COLD", "PAGEOUT", "POPULATE_READ", "POPULATE_WRITE", "DONTNEED_LOCKED", "COLLAPSE", "GUARD_REMOVE",
             5, "REMOVE", "GUARD_INSTALL"]
DISCARD = ["DONTNEED", "FREE", "REMOVE", "DONTFORK", "WIPEONFORK", "DONTNEED_LOCKED", "GUARD_INSTALL"]
POPULATE = ["POPULATE_READ", "POPULATE_WRITE"]

def amap(page, kind, prot="rw-", file=None, locked=False, pages=2, offset=0):
    m = {"page": page, "pages": pages, "prot": prot, "kind": kind}
    if file is not None: m["file"] = file; m["offset"] = offset
    if locked: m["locked"] = True
    return m

# family: (case id, what the terminator is, its map at a page (or None), setup steps per terminator page, advice)
FAMILIES = [
    ("each_discard_advice_from_each_kind_up_to_a_sealed_read_only_anon_vma",
     "a sealed read-only anonymous VMA, where mseal refuses discard advice and GUARD_INSTALL (EPERM)",
     lambda p: amap(p, "anon_private", "r--"), lambda p: [], DISCARD),
    ("each_advice_refusing_vm_locked_from_each_kind_up_to_a_locked_vma",
     "a MAP_LOCKED anonymous VMA, which DONTNEED, FREE, REMOVE, COLD, PAGEOUT and GUARD_INSTALL refuse (EINVAL)",
     lambda p: amap(p, "anon_private", locked=True), lambda p: [],
     ["DONTNEED", "FREE", "REMOVE", "COLD", "PAGEOUT", "GUARD_INSTALL"]),
    ("free_and_wipeonfork_from_each_kind_up_to_a_shared_anon_vma",
     "a shared anonymous VMA, which FREE and WIPEONFORK refuse (EINVAL)",
     lambda p: amap(p, "anon_shared"), lambda p: [], ["FREE", "WIPEONFORK"]),
    ("remove_from_each_kind_up_to_a_private_file_vma",
     "a private memfd mapping, which REMOVE refuses (EACCES)",
     lambda p: amap(p, "file_private", file=2), lambda p: [], ["REMOVE"]),
    ("populate_from_each_kind_up_to_a_prot_none_vma",
     "a PROT_NONE anonymous VMA, which POPULATE refuses (EINVAL)",
     lambda p: amap(p, "anon_private", "---"), lambda p: [], POPULATE),
    ("populate_from_each_kind_up_to_a_page_past_eof",
     "a shared memfd mapping that mremap grew past EOF, where POPULATE faults (SIGBUS: EFAULT)",
     lambda p: amap(p, "file_shared", file=2, pages=1, offset=1),
     lambda p: [{"op": "mremap", "page": p, "pages": 1, "new_pages": 2}], POPULATE),
    ("each_advice_from_each_kind_alone_and_up_to_a_hole",
     "a hole (ENOMEM), and alone (0)",
     lambda p: None, lambda p: [], GENERATED),
]

# Start kinds at pages 0-1: (map kind, prot, file, locked, guard marker on page 0).
def variants(remove_only, rare_only=False):
    base = [("file_shared", 1)] if remove_only else [("anon_private", None), ("file_shared", 1)]
    out = [] if remove_only else [("anon_private", "rw-", None, False, False), ("file_private", "rw-", 0, False, False),
                                  ("file_private", "rw-", 1, False, False)]
    out += [("anon_shared", "rw-", None, False, False), ("file_shared", "rw-", 0, False, False),
            ("file_shared", "rw-", 1, False, False)]
    for kind, f in base:
        out += [(kind, "r--", f, False, False), (kind, "---", f, False, False), (kind, "rw-", f, True, False),
                (kind, "rw-", f, False, True)]
    if rare_only:
        # Kinds random layouts seldom start a range on, and the shared ones (REMOVE works only there);
        # private ones reach 0 and ENOMEM anyway.
        out = [v for v in out if v[1] != "rw-" or v[3] or v[4] or v[0] != "anon_private" and v[0] != "file_private"]
    return out

def mad(page, n, a): return {"op": "madvise", "page": page, "len_pages": n, "advice": a}

def case(cid, what, tmap, tsetup, advice):
    hole = tmap(2) is None
    files = [{"kind": "disk", "pages": 2}, {"kind": "memfd", "pages": 2}, {"kind": "memfd", "pages": 2}]
    maps = [amap(0, "anon_private"), amap(4, "anon_private"), amap(8, "file_shared", file=1)]
    maps += [m for m in (tmap(2), tmap(6), tmap(10)) if m]
    maps.sort(key=lambda m: m["page"])
    steps = [s for p in (2, 6, 10) for s in tsetup(p)]
    # The sealed starts; with a sealed read-only terminator, it is sealed too.
    sealed_ro = "sealed" in cid
    steps += [{"op": "mseal", "page": p, "pages": 4 if sealed_ro else 2} for p in (4, 8)]
    if sealed_ro:
        steps.insert(0, {"op": "mseal", "page": 2, "pages": 2})
    remove_only = advice == ["REMOVE"]
    for kind, prot, f, locked, guarded in variants(remove_only, rare_only=hole):
        steps.append({"op": "mmap", "map": amap(0, kind, prot, f, locked)})
        first = 0
        if guarded:
            steps.append(mad(0, 1, "GUARD_INSTALL"))
            first = 1
        for a in advice:
            if hole and guarded:
                steps.append(mad(first, 2 - first, a))
            steps.append(mad(first, 4 - first, a))
    # Fork children: the terminator (re-locked: mlock is not inherited) after a private anonymous start, and
    # after a shared memfd start for REMOVE.
    for fs in (False, True):
        group = [a for a in advice if (a == "REMOVE") == fs]
        if not group:
            continue
        steps.append({"op": "mmap", "map": amap(0, "file_shared" if fs else "anon_private", "rw-", 1 if fs else None)})
        child = [{"op": "mlock", "page": 2, "pages": 2}] if "locked" in cid else []
        child += [mad(0, 4, a) for a in group]
        steps.append({"op": "fork", "child": child})
    # Ranges that start in a hole: to the terminator, and on to the sealed start behind it.
    steps.append({"op": "munmap", "page": 0, "pages": 2})
    for a in advice:
        steps += [mad(1, 3, a), mad(1, 5, a)]
    for a in advice:
        for page in ((8,) if remove_only else (4, 8)):
            if hole:
                steps.append(mad(page, 2, a))
            steps.append(mad(page, 4, a))
    desc = f"coverage: advice from each kind of VMA across {what}; also in a fork child, from a hole, and from sealed VMAs"
    lines = ["{", f'  "id": {json.dumps(cid)},', f'  "description": {json.dumps(desc)},', '  "arena_pages": 12,',
             '  "files": ' + json.dumps(files) + ',', '  "maps": [',
             ",\n".join("    " + json.dumps(m) for m in maps), "  ],", '  "steps": [',
             ",\n".join("    " + json.dumps(s) for s in steps), "  ]", "}"]
    return "\n".join(lines) + "\n", len(steps)

here = os.path.dirname(os.path.abspath(__file__))
for fam in FAMILIES:
    text, n = case(*fam)
    with open(os.path.join(here, fam[0] + ".json"), "w") as f:
        f.write(text)
    print(f"{fam[0]}: {n} steps")
