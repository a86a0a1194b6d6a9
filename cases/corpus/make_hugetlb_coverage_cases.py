#!/usr/bin/env python3
"""Writes the hugetlb coverage cases: named cases that reach, on purpose, the hugetlb cells of the coverage
matrix (harness/src/coverage/reach/) that the generated hugetlb scenarios reach only by luck.

Run from the repository root: `python3 cases/corpus/make_hugetlb_coverage_cases.py` (not part of any build).
The arena is two 2 MiB huge pages (1024 4K pages; other page sizes report these cases unsupported).

* `hugetlb_coverage_from_<kind>`: a hugetlb VMA of each kind at pages 0-511, then every advice cut inside
  the huge page (EINVAL where a flag change must split it, DONTNEED from an unaligned start), over the whole
  huge page (0), and on into a hole (ENOMEM); then the ranges run on into one terminator VMA at a time at
  pages 512-519: private anonymous memory (REMOVE: EINVAL), a private memfd mapping (REMOVE: EACCES),
  PROT_NONE (POPULATE: EINVAL), a guard marker (POPULATE: EFAULT) and, last, a sealed read-only VMA
  (discard advice: EPERM). Flag advice first sets the opposite flag on the whole VMA, so the cut really
  changes flags.
* `hugetlb_coverage_into_a_hugetlb_vma_from_each_kind`: each ordinary start kind at pages 504-511 with a
  MAP_HUGETLB VMA behind it at 512-1023; every flag-changing advice over 504-512 (one page into the huge
  page: the split there is refused, EINVAL) and GUARD_REMOVE (hugetlb refuses it), also from a hole.
"""
import json, os

HP = 512
GENERATED = ["NORMAL", "RANDOM", "SEQUENTIAL", "WILLNEED", "DONTNEED", "FREE", "DONTFORK", "DOFORK",
             "MERGEABLE", "UNMERGEABLE", "HUGEPAGE", "NOHUGEPAGE", "DONTDUMP", "DODUMP", "WIPEONFORK", "KEEPONFORK",
             "COLD", "PAGEOUT", "POPULATE_READ", "POPULATE_WRITE", "DONTNEED_LOCKED", "COLLAPSE", "GUARD_INSTALL",
             "GUARD_REMOVE", 5, "REMOVE"]
# The flag each flag-changing advice flips, as the advice that sets the opposite state first.
OPPOSITE = {"NORMAL": "RANDOM", "RANDOM": "NORMAL", "SEQUENTIAL": "NORMAL", "DONTFORK": "DOFORK",
            "DOFORK": "DONTFORK", "HUGEPAGE": "NOHUGEPAGE", "NOHUGEPAGE": "HUGEPAGE", "DONTDUMP": "DODUMP",
            "DODUMP": "DONTDUMP"}
DISCARD = ["DONTNEED", "FREE", "REMOVE", "DONTFORK", "WIPEONFORK", "DONTNEED_LOCKED", "GUARD_INSTALL"]
POPULATE = ["POPULATE_READ", "POPULATE_WRITE"]


def mad(page, n, a):
    return {"op": "madvise", "page": page, "len_pages": n, "advice": a}


def amap(page, pages, kind, prot="rw-", file=None, offset=0, locked=False):
    m = {"page": page, "pages": pages, "prot": prot, "kind": kind}
    if file is not None:
        m["file"] = file
        m["offset"] = offset
    if locked:
        m["locked"] = True
    return m


def write(cid, desc, files, maps, steps):
    lines = ["{", f'  "id": {json.dumps(cid)},', f'  "description": {json.dumps(desc)},', f'  "arena_pages": {2 * HP},']
    if files:
        lines.append('  "files": ' + json.dumps(files) + ",")
    lines += ['  "maps": [', ",\n".join("    " + json.dumps(m) for m in maps), "  ],", '  "steps": [',
              ",\n".join("    " + json.dumps(s) for s in steps), "  ]", "}"]
    with open(os.path.join(HERE, cid + ".json"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{cid}: {len(steps)} steps")


def from_hugetlb(kind):
    files = [{"kind": "hugetlb", "pages": 2 * HP}, {"kind": "memfd", "pages": 8}]
    start = {"hugetlb_private": amap(0, HP, "hugetlb_private"), "hugetlb_shared": amap(0, HP, "hugetlb_shared"),
             "file_private_hugetlb": amap(0, HP, "file_private", file=0),
             "file_shared_hugetlb": amap(0, HP, "file_shared", file=0)}[kind]
    steps = []
    for a in GENERATED:
        if a in OPPOSITE:
            steps.append(mad(0, HP, OPPOSITE[a]))
        steps += [mad(1, 1, a), mad(0, 1, a), mad(0, HP + 8, a), mad(0, HP, a)]
    terminators = [
        (amap(HP, 8, "anon_private"), [], ["REMOVE"]),
        (amap(HP, 8, "file_private", file=1), [], ["REMOVE"]),
        (amap(HP, 8, "anon_private", "---"), [], POPULATE),
        (amap(HP, 8, "anon_private"), [mad(HP, 1, "GUARD_INSTALL")], POPULATE),
        (amap(HP, 8, "anon_private", "r--"), [{"op": "mseal", "page": HP, "pages": 8}], DISCARD),
    ]
    for tmap, setup, advice in terminators:
        steps.append({"op": "mmap", "map": tmap})
        steps += setup
        steps += [mad(0, HP + 8, a) for a in advice]
    write(f"hugetlb_coverage_from_{kind}",
          f"coverage: every advice on a {kind.replace('_', ' ')} VMA cut inside its huge page, whole, and on into a "
          "hole, then into private anonymous memory, a private memfd mapping, PROT_NONE, a guard marker and a "
          "sealed read-only VMA",
          files, [start], steps)


def into_hugetlb():
    files = [{"kind": "disk", "pages": 8}, {"kind": "memfd", "pages": 8}]
    variants = [amap(504, 8, "anon_private"), amap(504, 8, "anon_shared"), amap(504, 8, "file_private", file=0),
                amap(504, 8, "file_private", file=1), amap(504, 8, "file_shared", file=0),
                amap(504, 8, "file_shared", file=1), amap(504, 8, "anon_private", "r--"),
                amap(504, 8, "anon_private", "---"), amap(504, 8, "anon_private", locked=True), "guarded", "hole",
                "sealed"]
    advice = list(OPPOSITE) + ["GUARD_REMOVE"]
    steps = []
    for v in variants:
        first, n = 504, 9
        if v == "guarded":
            steps += [{"op": "mmap", "map": amap(504, 8, "anon_private")}, mad(504, 1, "GUARD_INSTALL")]
        elif v == "hole":
            steps.append({"op": "munmap", "page": 496, "pages": 16})
            first, n = 500, 13
        elif v == "sealed":
            steps += [{"op": "mmap", "map": amap(504, 8, "anon_private")}, {"op": "mseal", "page": 504, "pages": 8}]
        else:
            steps.append({"op": "mmap", "map": v})
        for a in advice:
            if a in OPPOSITE:
                steps.append(mad(HP, HP, OPPOSITE[a]))
            steps.append(mad(first, n, a))
    write("hugetlb_coverage_into_a_hugetlb_vma_from_each_kind",
          "coverage: flag-changing advice and GUARD_REMOVE from each kind of VMA (and from a hole) on into a "
          "MAP_HUGETLB VMA, ending one page into its huge page: the split there is refused (EINVAL)",
          files, [amap(HP, HP, "hugetlb_private")], steps)


HERE = os.path.dirname(os.path.abspath(__file__))
for k in ["hugetlb_private", "hugetlb_shared", "file_private_hugetlb", "file_shared_hugetlb"]:
    from_hugetlb(k)
into_hugetlb()
