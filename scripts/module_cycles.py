#!/usr/bin/env python3
"""Module dependency cycles inside one crate's src/, from `use` lines and inline
`crate::`/`super::`/`self::` paths (test code excluded). Prints edges child->ancestor
and every strongly connected component with more than one module.

Usage: module_cycles.py <crate>/src [--check]
With --check, exits 1 when a module imports an ancestor module that imports it back (the
rule of docs/architecture.md: shared types live in a child module both can import, never in
the parent that also uses the child). Other cycles are listed, not refused."""
import os, re, sys
from collections import defaultdict

src = sys.argv[1]
check = '--check' in sys.argv[2:]
mods = {}  # module path -> file
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith('.rs'):
            continue
        p = os.path.join(root, f)
        rel = os.path.relpath(p, src)[:-3].split(os.sep)
        if rel == ['lib'] or rel == ['main']:
            m = ('crate',)
        elif rel[-1] == 'mod':
            m = ('crate',) + tuple(rel[:-1])
        else:
            m = ('crate',) + tuple(rel)
        mods[m] = p

def strip_tests(text):
    i = re.search(r'#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod \w+\s*\{', text)
    return text[:i.start()] if i else text

def expand(tree):
    """Expand a use tree like a::{b, c::{d, self}} into paths."""
    tree = tree.strip()
    if '{' not in tree:
        return [tree]
    i = tree.index('{')
    prefix = tree[:i].rstrip(':').strip()
    inner = tree[i+1:tree.rindex('}')]
    parts, depth, cur = [], 0, ''
    for ch in inner:
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
            continue
        depth += ch == '{'
        depth -= ch == '}'
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        for e in expand(p):
            out.append(prefix if e == 'self' else (prefix + '::' + e if prefix else e))
    return out

def resolve(m, path):
    segs = path.split(' as ')[0].strip().split('::')
    if segs[0] == 'crate':
        cur = ('crate',); segs = segs[1:]
    elif segs[0] in ('super', 'self'):
        cur = m
        while segs and segs[0] in ('super', 'self'):
            if segs[0] == 'super':
                cur = cur[:-1]
            segs = segs[1:]
    elif m + (segs[0],) in mods:
        cur = m
    else:
        return None
    full = cur + tuple(s for s in segs if s != '*')
    # longest module prefix
    for n in range(len(full), 0, -1):
        if full[:n] in mods:
            return full[:n]
    return None

edges = defaultdict(set)
for m, p in mods.items():
    if m[-1] == 'tests':
        continue
    text = strip_tests(open(p).read())
    paths = []
    for u in re.finditer(r'^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);', text, re.M):
        paths += expand(u.group(1))
    body = re.sub(r'^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+[^;]+;', '', text, flags=re.M)
    body = re.sub(r'//.*', '', body)
    paths += re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', body)
    children = [c[-1] for c in mods if c[:-1] == m]
    if children:
        paths += re.findall(r'(?<![:\w])((?:%s)(?:::\w+)+)' % '|'.join(children), body)
    for path in paths:
        d = resolve(m, path)
        if d and d != m and d != ('crate',):
            edges[m].add(d)

# Tarjan SCC
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in list(mods):
    if v not in index:
        strong(v)
name = lambda m: '::'.join(m)
up = [(a, b) for a in edges for b in edges[a] if a[:len(b)] == b]
print('child -> ancestor imports:')
violations = 0
for a, b in sorted(up):
    back = [c for c in edges.get(b, ()) if c[:len(b)+1] == a[:len(b)+1]]
    violations += bool(back)
    print(f'  {name(a)} -> {name(b)}' + ('   <-- ancestor imports back: ' + ', '.join(map(name, back)) if back else ''))
print('cycles:')
n = 0
for c in sccs:
    if len(c) > 1:
        n += 1
        print('  ' + ' <-> '.join(sorted(map(name, c))))
        for a in sorted(c):
            for b in sorted(edges[a]):
                if b in c:
                    print(f'      {name(a)} -> {name(b)}')
print(f'{n} cycle(s)')
if check and violations:
    print(f'{src}: {violations} module(s) import an ancestor that imports them back')
    sys.exit(1)
