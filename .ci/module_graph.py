#!/usr/bin/env python3
"""The crate's module graph: which modules of src/ import which (`crate::…` and `super::…`
paths, outside comments and the test code at the end of each file), at the top level and one
level down. Prints both and exits non-zero when two modules import each other or when
`model` imports `backend`, `diffusion` or `engine` (model/ holds data only).

    python3 .ci/module_graph.py [SRC_DIR]
"""
import collections
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "src"


def module_of(path):
    parts = os.path.relpath(path, root)[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts  # e.g. ["backend", "gpu", "forward"]


top_edges = collections.defaultdict(set)
sub_edges = collections.defaultdict(set)
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        mod = module_of(path)
        if mod[0] in ("lib", "bin"):
            continue
        src = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
        src = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("//"))
        targets = [p.split("::") for p in re.findall(r"crate((?:::\w+)+)", src)]
        targets = [t[1:] for t in targets]
        # `super::x` in module a::b::c names a::b::x; each further `super` goes one up
        for p in re.findall(r"(?<![\w:])super((?:::\w+)+)", src):
            rest = p.split("::")[1:]
            ups = 1
            while rest and rest[0] == "super":
                ups, rest = ups + 1, rest[1:]
            targets.append(mod[: len(mod) - ups] + rest)
        for t in targets:
            if not t:
                continue
            if t[0] != mod[0] and t[0][0].islower():
                top_edges[mod[0]].add(t[0])
            elif len(mod) >= 2 and len(t) >= 2 and t[1] != mod[1] and t[1][0].islower():
                sub_edges["::".join(mod[:2])].add("::".join(t[:2]))

failures = []
for title, edges in (("top level", top_edges), ("one level down", sub_edges)):
    print(f"{title}:")
    for m in sorted(edges):
        print(f"  {m:22} -> {', '.join(sorted(edges[m]))}")
    mutual = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
    for a, b in mutual:
        failures.append(f"{a} and {b} import each other")
for bad in ("backend", "diffusion", "engine"):
    if bad in top_edges.get("model", ()):
        failures.append(f"model imports {bad}")
for f in failures:
    print("module graph:", f)
sys.exit(1 if failures else 0)
