#!/usr/bin/env python3
"""Writes the advice x mapping-kind grid of the named corpus: one JSON case per (advice, kind).

Not part of any build. Run it from the repository root (`python3 cases/corpus/make_grid.py`); it
(re)writes only files whose names it makes (`<advice>_<kind>_<outcome>.json`) and deletes nothing.
See cases/corpus/README.md for the layout every grid case shares.

Outcome words in the ids are what Linux 6.18 does (the madvise semantics reference, section 5); the goldens
show the actual return, so a wrong word is caught in review of the host golden.
"""
import json, os, sys

ADVICE = ["NORMAL", "RANDOM", "SEQUENTIAL", "WILLNEED", "DONTNEED", "FREE", "REMOVE", "DONTFORK",
          "DOFORK", "MERGEABLE", "UNMERGEABLE", "HUGEPAGE", "NOHUGEPAGE", "DONTDUMP", "DODUMP",
          "WIPEONFORK", "KEEPONFORK", "COLD", "PAGEOUT", "POPULATE_READ", "POPULATE_WRITE",
          "DONTNEED_LOCKED", "COLLAPSE", "HWPOISON", "SOFT_OFFLINE", "GUARD_INSTALL", "GUARD_REMOVE"]

# kind -> (files, map, steps before the advice, description words, is it anon private?)
def kinds():
    anon = lambda **kw: dict(page=1, pages=4, prot="rw-", kind="anon_private", **kw)
    touch = [dict(op="write", page=1, fill=0xa1), dict(op="write", page=2, fill=0xa2), dict(op="read", page=3)]
    out = {}
    out["anon_private"] = ([], anon(), touch, "private anonymous memory")
    out["anon_shared"] = ([], dict(page=1, pages=4, prot="rw-", kind="anon_shared"), touch, "shared anonymous memory (shmem)")
    for share in ["private", "shared"]:
        for fk in ["disk", "memfd"]:
            out[f"file_{share}_{fk}"] = ([dict(kind=fk, pages=6)],
                                         dict(page=1, pages=4, prot="rw-", kind=f"file_{share}", file=0, offset=1),
                                         touch, f"a {share} mapping of a {fk} file at file page 1")
    out["locked_anon"] = ([], anon(locked=True), touch, "MAP_LOCKED private anonymous memory")
    out["prot_none_anon"] = ([], anon(), touch[:2] + [dict(op="mprotect", page=1, pages=4, prot="---")],
                             "private anonymous memory made PROT_NONE after two writes")
    out["read_only_anon"] = ([], anon(), touch[:2] + [dict(op="mprotect", page=1, pages=4, prot="r--")],
                             "private anonymous memory made read-only after two writes")
    out["fork_child_anon"] = ([], anon(), touch[:2], "private anonymous memory, advised in a fork child")
    return out

KINDS = kinds()
FILE = lambda k: k.startswith("file_")
SHARED = lambda k: k in ("anon_shared", "file_shared_disk", "file_shared_memfd")
ANON_PRIV = lambda k: k in ("anon_private", "locked_anon", "prot_none_anon", "read_only_anon", "fork_child_anon")

def outcome(a, k):
    """(id words, description words) for what advice a does on kind k (6.18, root, no swap)."""
    lk, pn, ro = k == "locked_anon", k == "prot_none_anon", k == "read_only_anon"
    flag = dict(RANDOM="rr", SEQUENTIAL="sr", DONTFORK="dc", HUGEPAGE="hg", NOHUGEPAGE="nh", DONTDUMP="dd",
                WIPEONFORK="wf", MERGEABLE="mg")
    if a in ("HWPOISON", "SOFT_OFFLINE"):
        return "with_zero_length_touches_nothing", "with length 0 (never a real poison or offline)"
    if a in ("NORMAL", "DOFORK", "KEEPONFORK", "DODUMP", "UNMERGEABLE"):
        return "on_unset_flag_keeps_one_vma", "changes no flag that is set, so the VMA is not split"
    if a == "WIPEONFORK" and not ANON_PRIV(k):
        return "is_einval", "is refused (EINVAL): WIPEONFORK needs private anonymous memory"
    if a == "MERGEABLE" and SHARED(k):
        return "is_ignored_without_split", "is ignored on a shared VMA (no mg, no split)"
    if a in flag:
        return f"splits_off_an_{flag[a]}_vma", f"on the middle two pages splits off a VMA with {flag[a]}"
    if a == "WILLNEED":
        return "changes_no_page", "maps nothing and changes no page"
    if a in ("DONTNEED", "DONTNEED_LOCKED"):
        if lk and a == "DONTNEED":
            return "is_einval", "is refused on a locked VMA (EINVAL)"
        if k == "fork_child_anon":
            return "zaps_only_the_childs_pages", "in the child zaps the child's pages; the parent keeps its data"
        if SHARED(k):
            return "keeps_shared_contents", "unmaps the pages but the shared contents stay"
        if FILE(k):
            return "restores_file_content", "drops the private copies; the file's content comes back"
        return "reads_zero", "zaps the pages; they read back as zero"
    if a == "FREE":
        if lk or FILE(k) or SHARED(k):
            return "is_einval", "is refused (EINVAL): FREE needs unlocked private anonymous memory"
        if k == "fork_child_anon":
            return "leaves_pages_shared_with_the_parent", "in the child leaves pages still shared with the parent alone"
        return "marks_pages_lazy_free", "marks the pages lazy-free; they stay mapped until reclaim"
    if a == "REMOVE":
        if lk or ANON_PRIV(k):
            return "is_einval", "is refused (EINVAL): REMOVE needs a shared file or shmem mapping"
        if not SHARED(k):
            return "is_eacces", "is refused (EACCES) on a private file mapping"
        return "punches_a_hole_read_as_zero", "punches a hole in the object; the pages read back as zero"
    if a in ("COLD", "PAGEOUT"):
        if lk:
            return "is_einval", "is refused on a locked VMA (EINVAL)"
        if a == "COLD":
            return "changes_no_page", "deactivates pages but changes no mapping or content"
        if k in ("anon_shared", "file_shared_memfd"):
            return "unmaps_shmem_pages_keeping_contents", "unmaps shmem pages without swap; the contents stay"
        if k == "file_shared_disk":
            return "writes_back_and_unmaps", "writes back and unmaps the dirty shared file pages"
        if k == "file_private_disk":
            return "drops_clean_file_pages_keeps_copies", "drops clean file pages; private copies stay without swap"
        return "keeps_anon_pages_without_swap", "leaves anonymous pages in place without swap"
    if a in ("POPULATE_READ", "POPULATE_WRITE"):
        if pn:
            return "is_einval", "is refused on PROT_NONE (EINVAL)"
        if ro and a == "POPULATE_WRITE":
            return "is_einval", "is refused on a read-only mapping (EINVAL)"
        return "faults_pages_in", "faults every page of the range in"
    if a == "COLLAPSE":
        return "on_a_vma_smaller_than_a_pmd_is_einval", "is refused on a VMA too small for a huge page (EINVAL)"
    if a == "GUARD_INSTALL":
        if lk:
            return "is_einval", "is refused on a locked VMA (EINVAL)"
        return "zaps_and_guards_the_range", "zaps the range and installs guard markers"
    if a == "GUARD_REMOVE":
        if lk:
            return "after_a_refused_install_is_a_no_op", "after a refused install has nothing to remove"
        return "clears_the_markers", "clears guard markers so the pages fault afresh"
    raise ValueError(a)

def case(a, k):
    files, m, pre, what = KINDS[k]
    words, desc = outcome(a, k)
    adv = dict(op="madvise", page=2, len_pages=2, advice=a)
    if a in ("HWPOISON", "SOFT_OFFLINE"):
        adv = dict(op="madvise", page=2, advice=a)  # length 0: never poison or offline a real page
    steps = list(pre)
    readable = k not in ("prot_none_anon",)
    after = [dict(op="read", page=2)] if readable else []
    if a == "GUARD_INSTALL":
        after = [dict(op="read", page=1)] if readable else []  # a read of page 2 would be SIGSEGV
    if a == "GUARD_REMOVE":
        steps.append(dict(op="madvise", page=2, len_pages=2, advice="GUARD_INSTALL"))
    if k == "fork_child_anon":
        steps.append(dict(op="fork", child=[adv] + after))
        steps += after
    else:
        steps += [adv] + after
    cid = f"{a.lower()}_{k}_{words}"
    sc = dict(id=cid, description=f"MADV_{a} on the middle of {what} {desc}", arena_pages=8)
    if files:
        sc["files"] = files
    sc["maps"] = [m]
    sc["steps"] = steps
    return cid, sc

def dump(sc):
    # One step per line keeps diffs of the corpus readable.
    lines = ["{"]
    items = list(sc.items())
    for i, (key, v) in enumerate(items):
        end = "," if i + 1 < len(items) else ""
        if isinstance(v, list):
            lines.append(f'  "{key}": [')
            for j, x in enumerate(v):
                lines.append("    " + json.dumps(x) + ("," if j + 1 < len(v) else ""))
            lines.append("  ]" + end)
        else:
            lines.append(f'  "{key}": {json.dumps(v)}{end}')
    lines.append("}")
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    n = 0
    for a in ADVICE:
        for k in KINDS:
            cid, sc = case(a, k)
            with open(os.path.join(here, cid + ".json"), "w") as f:
                f.write(dump(sc))
            n += 1
    print(f"wrote {n} grid cases", file=sys.stderr)
