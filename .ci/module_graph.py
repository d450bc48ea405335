#!/usr/bin/env python3
"""The crate's module graph: which modules of src/ import which (`crate::…` and `super::…`
paths, outside comments and the test code at the end of each file), at the top level and one
level down, and checks every file against every other: it exits non-zero when two modules
import each other, when files import each other round a circle (`cpu/matmul.rs` → `cpu/panels.rs`
→ `cpu/matmul.rs`, even inside one module), or when `model` imports `backend`, `diffusion` or
`engine` (model/ holds data only).

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
# file level: "backend::cpu::matmul" -> {"backend::cpu::panels", …}
modules = set()
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".rs"):
            modules.add("::".join(module_of(os.path.join(d, f))))
file_edges = collections.defaultdict(set)


def file_of(path):
    """The longest module (file) that a path such as backend::cpu::panels::matmul_new names."""
    for n in range(len(path), 0, -1):
        m = "::".join(path[:n])
        if m in modules:
            return m
    return None


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
        me = "::".join(mod)
        for t in targets:
            if not t:
                continue
            other = file_of(t)
            # a child naming its parent module's own items (`super::map_indices`) is how Rust
            # shares a folder's helpers; a parent naming its child is the same arrow reversed
            if other and other != me and not me.startswith(other + "::") and not other.startswith(me + "::"):
                file_edges[me].add(other)
            if t[0] != mod[0] and t[0][0].islower():
                top_edges[mod[0]].add(t[0])
            elif len(mod) >= 2 and len(t) >= 2 and t[1] != mod[1] and "::".join(t[:2]) in modules:
                sub_edges["::".join(mod[:2])].add("::".join(t[:2]))

failures = []
for title, edges in (("top level", top_edges), ("one level down", sub_edges)):
    print(f"{title}:")
    for m in sorted(edges):
        print(f"  {m:22} -> {', '.join(sorted(edges[m]))}")
    mutual = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())})
    for a, b in mutual:
        failures.append(f"{a} and {b} import each other")


def circles(edges):
    """The strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


file_circles = circles(file_edges)
print(f"file level: {len(modules)} files, {sum(len(v) for v in file_edges.values())} arrows, "
      f"{len(file_circles)} circle(s)")
for c in file_circles:
    failures.append("files import each other round a circle: " + " <-> ".join(c))
for bad in ("backend", "diffusion", "engine"):
    if bad in top_edges.get("model", ()):
        failures.append(f"model imports {bad}")
for f in failures:
    print("module graph:", f)
sys.exit(1 if failures else 0)
