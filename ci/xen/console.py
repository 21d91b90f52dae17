#!/usr/bin/env python3
"""Runs the test-bed QEMU, watches its serial console, and decides the result.

usage: console.py --log FILE --timeout SECONDS -- qemu-system-x86_64 ARGS...

Every console line goes to FILE prefixed with host seconds since QEMU started. Lines that
start with "XE2E " (the contract of ci/xen/dom0/init and the scenarios) are also copied to
stdout as they arrive; when dom0 reports DOM0-READY a "XE2E STEP dom0-boot" line with the
host-side boot time is added. pvfs's warnings and errors (Xen's console lines
"(dN) pvfs: [WARN] ..." and "[ERROR]") are copied as "XE2E LOG <line>", and when no result
line comes (timeout, or QEMU ended) the last console lines follow as "XE2E TAIL <line>", so
that stdout alone says where a run stopped. Exit status: 0 only when "XE2E RESULT PASS" was seen; 1 on
"XE2E RESULT FAIL"; 2 on timeout; 3 when QEMU ended without a result line.
"""
import argparse
import collections
import os
import re
import select
import signal
import subprocess
import sys
import time

CONTRACT = re.compile(r"^\s*(XE2E [A-Z][A-Z0-9-]*\b.*)$")
RESULT = re.compile(r"XE2E RESULT (PASS|FAIL)\b")
PVFS_LOG = re.compile(r"\(d\d+\) pvfs: \[(WARN|ERROR)\]")
# console lines kept for "XE2E TAIL" (the end of the log, when no result line came)
TAIL_LINES = 30
# after the result line dom0 powers off and Xen halts the machine; allow that much time
GRACE = 30.0


def emit(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no QEMU command")

    t0 = time.monotonic()
    log = open(a.log, "w", encoding="utf-8")
    log.write("# %s\n# %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(cmd)))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    fd = proc.stdout.fileno()
    buf = b""
    result = None
    result_at = None
    last = ""
    tail = collections.deque(maxlen=TAIL_LINES)
    eof = False

    def handle(raw):
        nonlocal result, result_at, last
        line = raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
        el = time.monotonic() - t0
        log.write("[%8.2f] %s\n" % (el, line))
        log.flush()
        if line.strip():
            last = line.strip()
            tail.append(last)
        m = CONTRACT.match(line)
        if not m and PVFS_LOG.search(line):
            emit("XE2E LOG " + line.strip()[:300])
        if m:
            emit(m.group(1))
            if m.group(1).startswith("XE2E DOM0-READY"):
                emit("XE2E STEP dom0-boot %.2fs Xen + dom0 booted (QEMU start to DOM0-READY)" % el)
        r = RESULT.search(line)
        if r and result is None:
            if not m:
                emit(r.group(0))
            result = r.group(1)
            result_at = time.monotonic()

    hit_deadline = False
    while not eof:
        now = time.monotonic()
        deadline = t0 + a.timeout
        if result_at is not None:
            deadline = min(deadline, result_at + GRACE)
        if now >= deadline:
            hit_deadline = True
            break
        ready, _, _ = select.select([fd], [], [], min(1.0, deadline - now))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            eof = True
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            handle(raw)
    if buf:
        handle(buf)

    timed_out = hit_deadline and result is None
    if eof:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    el = time.monotonic() - t0
    log.write("# QEMU ended after %.2f s, status %s\n" % (el, proc.returncode))
    log.close()

    if result == "PASS":
        return 0
    if result == "FAIL":
        return 1
    for t in tail:
        emit("XE2E TAIL " + t[:300])
    if timed_out:
        emit("XE2E FAIL harness: timed out after %.0fs (last console line: %s)" % (a.timeout, last[:200]))
        emit("XE2E RESULT FAIL")
        return 2
    emit("XE2E FAIL harness: QEMU exited (status %s) after %.1fs without a result line (last console line: %s)"
         % (proc.returncode, el, last[:200]))
    emit("XE2E RESULT FAIL")
    return 3


if __name__ == "__main__":
    sys.exit(main())
