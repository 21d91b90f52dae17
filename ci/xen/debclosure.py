#!/usr/bin/env python3
"""Prints "name=version" for the given Debian packages and the library packages they need.

usage: apt-cache dumpavail | debclosure.py PACKAGE...

Walks Depends and Pre-Depends of each package, following only library packages (names
starting with "lib"; so not python3, debconf or the base system, which the test bed's dom0
does not run), the first alternative that exists (or a package providing it). The caller
then checks that every program it copies finds all its shared libraries in what this
selected (build-initrds.sh, with the release's own dynamic loader).
"""
import re
import sys

avail, provides = {}, {}
for rec in sys.stdin.read().split('\n\n'):
    f, key = {}, None
    for line in rec.splitlines():
        if line[:1] in (' ', '\t') and key:
            f[key] += ' ' + line.strip()
        elif ':' in line:
            key, _, v = line.partition(':')
            f[key] = v.strip()
    if 'Package' not in f:
        continue
    name = f['Package']
    if name in avail:  # keep the first record (dumpavail lists the candidate first)
        continue
    avail[name] = f
    for p in filter(None, (x.strip() for x in f.get('Provides', '').split(','))):
        provides.setdefault(re.split(r'[ (]', p)[0], []).append(name)

def deps(name):
    f = avail[name]
    for field in ('Pre-Depends', 'Depends'):
        for clause in filter(None, (c.strip() for c in f.get(field, '').split(','))):
            for alt in (a.strip() for a in clause.split('|')):
                n = re.split(r'[ (:]', alt)[0]
                if n in avail:
                    yield n
                    break
                if n in provides:
                    yield provides[n][0]
                    break

out, todo = [], list(sys.argv[1:])
while todo:
    n = todo.pop(0)
    if n in out:
        continue
    if n not in avail:
        sys.exit('debclosure: no package %s' % n)
    out.append(n)
    todo.extend(d for d in deps(n) if d.startswith(('lib', 'zlib')) and d not in out)
for n in out:
    print('%s=%s' % (n, avail[n]['Version']))
