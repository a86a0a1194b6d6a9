#!/usr/bin/env python3
"""Writes the coverage cases: named cases that reach the coverage cells the generated suite (seed 1) did not.

Run from the repository root: `python3 cases/corpus/make_coverage_cases.py` (not part of any build). Each
(advice, start kind, outcome) cell below was reachable on 6.18 but at zero when these cases were written
(`madcheck run --coverage`, harness/src/reach.rs). The outcome picks a terminator VMA that the range runs
into after the start VMA: a sealed read-only anonymous VMA (EPERM), a locked VMA (EINVAL), a PROT_NONE VMA
(EINVAL for POPULATE), a memfd mapping grown past EOF by mremap (EFAULT for POPULATE), or a hole (ENOMEM; 0
when the range stops before it). One case per terminator: the terminator sits at pages 2, 6 and 10; each
start kind is mapped at pages 0-1 (mmap MAP_FIXED) just before its madvise, sealed starts sit at pages 4-5
(anonymous) and 8-9 (shared memfd, for REMOVE), a fork child and a range starting in a hole come last.
"""
import json, os

CELLS = [
    ["NORMAL", "guarded", "ENOMEM"],
    ["NORMAL", "sealed", "ENOMEM"],
    ["RANDOM", "sealed", "ENOMEM"],
    ["SEQUENTIAL", "guarded", "ENOMEM"],
    ["WILLNEED", "sealed", "0"],
    ["WILLNEED", "sealed", "ENOMEM"],
    ["DONTNEED", "anon_private", "EPERM"],
    ["DONTNEED", "anon_shared", "EINVAL"],
    ["DONTNEED", "anon_shared", "EPERM"],
    ["DONTNEED", "file_private_disk", "EPERM"],
    ["DONTNEED", "file_private_memfd", "EPERM"],
    ["DONTNEED", "file_shared_disk", "EINVAL"],
    ["DONTNEED", "file_shared_disk", "EPERM"],
    ["DONTNEED", "file_shared_memfd", "EINVAL"],
    ["DONTNEED", "file_shared_memfd", "EPERM"],
    ["DONTNEED", "read_only", "EPERM"],
    ["DONTNEED", "prot_none", "EINVAL"],
    ["DONTNEED", "prot_none", "EPERM"],
    ["DONTNEED", "guarded", "EINVAL"],
    ["DONTNEED", "guarded", "EPERM"],
    ["DONTNEED", "sealed", "EPERM"],
    ["DONTNEED", "after_fork", "EINVAL"],
    ["DONTNEED", "after_fork", "EPERM"],
    ["DONTNEED", "hole_then_mapped", "EPERM"],
    ["FREE", "anon_private", "EPERM"],
    ["FREE", "read_only", "EPERM"],
    ["FREE", "prot_none", "EPERM"],
    ["FREE", "guarded", "EINVAL"],
    ["FREE", "guarded", "EPERM"],
    ["FREE", "sealed", "0"],
    ["FREE", "sealed", "EINVAL"],
    ["FREE", "sealed", "ENOMEM"],
    ["FREE", "after_fork", "EPERM"],
    ["FREE", "hole_then_mapped", "EPERM"],
    ["REMOVE", "anon_shared", "EPERM"],
    ["REMOVE", "file_shared_disk", "EPERM"],
    ["REMOVE", "file_shared_memfd", "EINVAL"],
    ["REMOVE", "file_shared_memfd", "EPERM"],
    ["REMOVE", "read_only", "EPERM"],
    ["REMOVE", "prot_none", "EPERM"],
    ["REMOVE", "guarded", "0"],
    ["REMOVE", "guarded", "ENOMEM"],
    ["REMOVE", "guarded", "EPERM"],
    ["REMOVE", "sealed", "0"],
    ["REMOVE", "sealed", "EINVAL"],
    ["REMOVE", "sealed", "ENOMEM"],
    ["REMOVE", "sealed", "EPERM"],
    ["REMOVE", "after_fork", "EPERM"],
    ["DONTFORK", "anon_private", "EPERM"],
    ["DONTFORK", "anon_shared", "EPERM"],
    ["DONTFORK", "file_private_disk", "EPERM"],
    ["DONTFORK", "file_private_memfd", "EPERM"],
    ["DONTFORK", "file_shared_disk", "EPERM"],
    ["DONTFORK", "file_shared_memfd", "EPERM"],
    ["DONTFORK", "read_only", "EPERM"],
    ["DONTFORK", "prot_none", "EPERM"],
    ["DONTFORK", "locked", "EPERM"],
    ["DONTFORK", "guarded", "EPERM"],
    ["DONTFORK", "sealed", "ENOMEM"],
    ["DONTFORK", "sealed", "EPERM"],
    ["DONTFORK", "after_fork", "EPERM"],
    ["DONTFORK", "hole_then_mapped", "EPERM"],
    ["DOFORK", "guarded", "ENOMEM"],
    ["UNMERGEABLE", "guarded", "ENOMEM"],
    ["UNMERGEABLE", "sealed", "0"],
    ["UNMERGEABLE", "sealed", "ENOMEM"],
    ["HUGEPAGE", "guarded", "ENOMEM"],
    ["HUGEPAGE", "sealed", "ENOMEM"],
    ["NOHUGEPAGE", "sealed", "ENOMEM"],
    ["DONTDUMP", "guarded", "ENOMEM"],
    ["DONTDUMP", "sealed", "ENOMEM"],
    ["DODUMP", "sealed", "ENOMEM"],
    ["WIPEONFORK", "anon_private", "EPERM"],
    ["WIPEONFORK", "read_only", "EPERM"],
    ["WIPEONFORK", "locked", "EPERM"],
    ["WIPEONFORK", "guarded", "ENOMEM"],
    ["WIPEONFORK", "guarded", "EPERM"],
    ["WIPEONFORK", "sealed", "0"],
    ["WIPEONFORK", "sealed", "ENOMEM"],
    ["WIPEONFORK", "after_fork", "EPERM"],
    ["WIPEONFORK", "hole_then_mapped", "EPERM"],
    ["KEEPONFORK", "guarded", "ENOMEM"],
    ["KEEPONFORK", "sealed", "ENOMEM"],
    ["COLD", "anon_shared", "EINVAL"],
    ["COLD", "file_private_disk", "EINVAL"],
    ["COLD", "file_shared_memfd", "EINVAL"],
    ["COLD", "read_only", "EINVAL"],
    ["COLD", "prot_none", "EINVAL"],
    ["COLD", "guarded", "EINVAL"],
    ["COLD", "guarded", "ENOMEM"],
    ["COLD", "sealed", "EINVAL"],
    ["COLD", "sealed", "ENOMEM"],
    ["COLD", "after_fork", "EINVAL"],
    ["PAGEOUT", "file_private_disk", "EINVAL"],
    ["PAGEOUT", "file_private_memfd", "EINVAL"],
    ["PAGEOUT", "file_shared_disk", "EINVAL"],
    ["PAGEOUT", "file_shared_memfd", "EINVAL"],
    ["PAGEOUT", "prot_none", "EINVAL"],
    ["PAGEOUT", "guarded", "EINVAL"],
    ["PAGEOUT", "guarded", "ENOMEM"],
    ["PAGEOUT", "sealed", "EINVAL"],
    ["PAGEOUT", "sealed", "ENOMEM"],
    ["PAGEOUT", "after_fork", "EINVAL"],
    ["POPULATE_READ", "anon_private", "EFAULT"],
    ["POPULATE_READ", "anon_shared", "EFAULT"],
    ["POPULATE_READ", "file_private_disk", "EINVAL"],
    ["POPULATE_READ", "file_private_disk", "EFAULT"],
    ["POPULATE_READ", "file_private_memfd", "EFAULT"],
    ["POPULATE_READ", "file_shared_disk", "EFAULT"],
    ["POPULATE_READ", "file_shared_memfd", "EINVAL"],
    ["POPULATE_READ", "file_shared_memfd", "EFAULT"],
    ["POPULATE_READ", "read_only", "EFAULT"],
    ["POPULATE_READ", "locked", "EFAULT"],
    ["POPULATE_READ", "guarded", "0"],
    ["POPULATE_READ", "guarded", "EINVAL"],
    ["POPULATE_READ", "sealed", "EFAULT"],
    ["POPULATE_READ", "after_fork", "EFAULT"],
    ["POPULATE_WRITE", "anon_private", "EFAULT"],
    ["POPULATE_WRITE", "anon_shared", "EFAULT"],
    ["POPULATE_WRITE", "file_private_disk", "EFAULT"],
    ["POPULATE_WRITE", "file_private_memfd", "EFAULT"],
    ["POPULATE_WRITE", "file_shared_disk", "EFAULT"],
    ["POPULATE_WRITE", "file_shared_memfd", "EINVAL"],
    ["POPULATE_WRITE", "file_shared_memfd", "EFAULT"],
    ["POPULATE_WRITE", "locked", "EFAULT"],
    ["POPULATE_WRITE", "guarded", "EINVAL"],
    ["POPULATE_WRITE", "guarded", "ENOMEM"],
    ["POPULATE_WRITE", "sealed", "0"],
    ["POPULATE_WRITE", "sealed", "EINVAL"],
    ["POPULATE_WRITE", "sealed", "ENOMEM"],
    ["POPULATE_WRITE", "sealed", "EFAULT"],
    ["POPULATE_WRITE", "after_fork", "EFAULT"],
    ["DONTNEED_LOCKED", "anon_private", "EPERM"],
    ["DONTNEED_LOCKED", "anon_shared", "EPERM"],
    ["DONTNEED_LOCKED", "file_private_disk", "EPERM"],
    ["DONTNEED_LOCKED", "file_private_memfd", "EPERM"],
    ["DONTNEED_LOCKED", "file_shared_disk", "EPERM"],
    ["DONTNEED_LOCKED", "file_shared_memfd", "EPERM"],
    ["DONTNEED_LOCKED", "read_only", "EPERM"],
    ["DONTNEED_LOCKED", "prot_none", "EPERM"],
    ["DONTNEED_LOCKED", "guarded", "EPERM"],
    ["DONTNEED_LOCKED", "sealed", "ENOMEM"],
    ["DONTNEED_LOCKED", "after_fork", "EPERM"],
    ["DONTNEED_LOCKED", "hole_then_mapped", "EPERM"],
    ["COLLAPSE", "sealed", "EINVAL"],
    ["GUARD_INSTALL", "anon_private", "EINVAL"],
    ["GUARD_INSTALL", "anon_shared", "EINVAL"],
    ["GUARD_INSTALL", "anon_shared", "EPERM"],
    ["GUARD_INSTALL", "file_private_disk", "EINVAL"],
    ["GUARD_INSTALL", "file_private_disk", "EPERM"],
    ["GUARD_INSTALL", "file_private_memfd", "EPERM"],
    ["GUARD_INSTALL", "file_shared_disk", "EPERM"],
    ["GUARD_INSTALL", "file_shared_memfd", "EINVAL"],
    ["GUARD_INSTALL", "file_shared_memfd", "EPERM"],
    ["GUARD_INSTALL", "read_only", "EINVAL"],
    ["GUARD_INSTALL", "read_only", "EPERM"],
    ["GUARD_INSTALL", "prot_none", "EPERM"],
    ["GUARD_INSTALL", "guarded", "EINVAL"],
    ["GUARD_INSTALL", "guarded", "EPERM"],
    ["GUARD_INSTALL", "sealed", "EINVAL"],
    ["GUARD_INSTALL", "sealed", "ENOMEM"],
    ["GUARD_INSTALL", "sealed", "EPERM"],
    ["GUARD_INSTALL", "after_fork", "EINVAL"],
    ["GUARD_INSTALL", "after_fork", "EPERM"],
    ["GUARD_INSTALL", "hole_then_mapped", "EPERM"]]

outdir = os.path.dirname(os.path.abspath(__file__))
def term_for(a, o):
    if o == "EPERM": return "sealed_ro"
    if o == "EINVAL": return "prot_none" if a.startswith("POPULATE") else "locked"
    if o == "EFAULT": return "guard"
    if o in ("ENOMEM", "0"): return "hole"
need = {}
for a, k, o in CELLS:
    need.setdefault(term_for(a, o), []).append((a, k, o))
TERM = {
  "sealed_ro": ("each_advice_from_each_kind_up_to_a_sealed_read_only_anon_vma", "across a sealed read-only anonymous VMA, where mseal refuses discard advice (EPERM)"),
  "locked": ("each_advice_from_each_kind_up_to_a_locked_vma", "across a locked anonymous VMA, which DONTNEED, FREE, REMOVE, COLD, PAGEOUT and GUARD_INSTALL refuse (EINVAL)"),
  "prot_none": ("populate_from_each_kind_up_to_a_prot_none_vma", "across a PROT_NONE anonymous VMA, which POPULATE refuses (EINVAL)"),
  "guard": ("populate_from_each_kind_up_to_a_page_past_eof", "across a shared memfd mapping that mremap grew past EOF, where POPULATE faults (SIGBUS: EFAULT)"),
  "hole": ("each_advice_from_guarded_and_sealed_vmas_alone_and_up_to_a_hole", "alone (0) and across a hole (ENOMEM)"),
}
def amap(page, kind, prot="rw-", file=None, locked=False):
    m = {"page": page, "pages": 2, "prot": prot, "kind": kind}
    if file is not None: m["file"] = file; m["offset"] = 0
    if locked: m["locked"] = True
    return m
def tmap(t, page):
    return {"sealed_ro": amap(page, "anon_private", "r--"), "locked": amap(page, "anon_private", locked=True),
            "prot_none": amap(page, "anon_private", "---"), "guard": {"page": page, "pages": 1, "prot": "rw-", "kind": "file_shared", "file": 2, "offset": 1}}.get(t)
def mad(page, n, a): return {"op": "madvise", "page": page, "len_pages": n, "advice": a}
def variant(a, k):
    fs = a == "REMOVE"
    base = ("file_shared", 1) if fs else ("anon_private", None)
    return {"anon_private": ("anon_private", "rw-", None, False, False), "anon_shared": ("anon_shared", "rw-", None, False, False),
            "file_private_disk": ("file_private", "rw-", 0, False, False), "file_private_memfd": ("file_private", "rw-", 1, False, False),
            "file_shared_disk": ("file_shared", "rw-", 0, False, False), "file_shared_memfd": ("file_shared", "rw-", 1, False, False),
            "read_only": (base[0], "r--", base[1], False, False), "prot_none": (base[0], "---", base[1], False, False),
            "locked": (base[0], "rw-", base[1], True, False), "guarded": (base[0], "rw-", base[1], False, True)}[k]
for t, cells in sorted(need.items()):
    cid, what = TERM[t]
    files = [{"kind": "disk", "pages": 2}, {"kind": "memfd", "pages": 2}] + ([{"kind": "memfd", "pages": 2}] if t == "guard" else [])
    maps = [amap(0, "anon_private"), amap(4, "anon_private"), amap(8, "file_shared", file=1)]
    for p in (2, 6, 10):
        m = tmap(t, p)
        if m: maps.append(m)
    maps.sort(key=lambda m: m["page"])
    steps = []
    if t == "guard":
        steps += [{"op": "mremap", "page": p, "pages": 1, "new_pages": 2} for p in (2, 6, 10)]
    if t == "sealed_ro":
        steps += [{"op": "mseal", "page": 2, "pages": 2}, {"op": "mseal", "page": 4, "pages": 4}, {"op": "mseal", "page": 8, "pages": 4}]
    else:
        steps += [{"op": "mseal", "page": 4, "pages": 2}, {"op": "mseal", "page": 8, "pages": 2}]
    reach = 2 if t == "hole" else 4
    for a, k, o in cells:
        if k in ("after_fork", "hole_then_mapped", "sealed"): continue
        kind, prot, f, locked, guarded = variant(a, k)
        steps.append({"op": "mmap", "map": amap(0, kind, prot, f, locked)})
        first = 0
        if guarded:
            steps.append(mad(0, 1, "GUARD_INSTALL")); first = 1
        steps.append(mad(first, (2 if o == "0" else 4) - first, a))
    forks = sorted({a for a, k, o in cells if k == "after_fork"})
    for fs in (False, True):
        group = [a for a in forks if (a == "REMOVE") == fs]
        if not group: continue
        steps.append({"op": "mmap", "map": amap(0, "file_shared" if fs else "anon_private", "rw-", 1 if fs else None)})
        child = [{"op": "mlock", "page": 2, "pages": 2}] if t == "locked" else []
        child += [mad(0, 4, a) for a in group]
        steps.append({"op": "fork", "child": child})
    htm = sorted({a for a, k, o in cells if k == "hole_then_mapped"})
    if htm:
        steps.append({"op": "munmap", "page": 0, "pages": 2})
        steps += [mad(1, 3, a) for a in htm]
    for a, k, o in cells:
        if k != "sealed": continue
        page = 8 if a == "REMOVE" else 4
        steps.append(mad(page, 2 if o == "0" else 4, a))
    case = {"id": cid,
            "description": f"coverage: advice from each kind of VMA {what}; also in a fork child, after a hole, and from sealed VMAs",
            "arena_pages": 12,
            "files": files,
            "maps": maps, "steps": steps}
    lines = ["{", f'  "id": {json.dumps(cid)},', f'  "description": {json.dumps(case["description"])},', '  "arena_pages": 12,',
             '  "files": ' + json.dumps(files) + ',', '  "maps": [']
    lines.append(",\n".join("    " + json.dumps(m) for m in maps)); lines.append("  ],"); lines.append('  "steps": [')
    lines.append(",\n".join("    " + json.dumps(s) for s in steps)); lines.append("  ]"); lines.append("}")
    open(os.path.join(outdir, cid + ".json"), "w").write("\n".join(lines) + "\n")
    print(cid, len(steps), len(cells))
