#!/usr/bin/env python3
"""sites_e2e.py --tool PERSIST --shim LIBPERSIST --prog SITES_E2E [--interval N] [--total BYTES]
— the end-to-end test of PERSIST_SITES and `persist sites` (tests/tools/CMakeLists.txt runs it).

sites_e2e (sites_e2e.c) runs under the shim with PERSIST_SITES=N: alloc_a, alloc_b and alloc_c
allocate 50 %, 30 % and 20 % of the bytes and keep them live; a and b's blocks are chained from
roots, c's from nothing. It prints what each allocated and the variance of the sampling estimate
of it. Then:
  - `persist sites --json` must name the three functions (as the top frame, with `main` further
    up, in the program's module with its build-id), each function's estimated bytes (summed over
    its sites: the compiler may call it from several places) within 5 standard deviations of what
    it allocated, and its share of the three within 5 standard deviations of the true share (delta
    method: Var(A/T) ~ ((1-s)^2 Var(A) + s^2 (Var(B) + Var(C))) / T^2);
  - the text output names them too; --top 1 lists one site;
  - `persist sites --leaks --json` must leave out a and b (a root reaches them) and estimate c's
    bytes within 5 standard deviations; what else it lists is small;
  - `persist check` finds the heap consistent (sample flags and records are part of the format).
5 standard deviations: a false failure about once in 1.7 million runs per check.
Exit status 0 when every check passed; the failed checks are listed otherwise.
PERSIST_TEST_KEEP=1 keeps the temporary directory.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAILURES = []
SIGMAS = 5.0


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print('FAIL: ' + what)
    else:
        print('ok:   ' + what)
    return cond


def run(args, env=None, timeout=300):
    p = subprocess.run([str(a) for a in args], capture_output=True, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def by_function(report):
    """Sums the sites by their top frame's symbol: {symbol: (bytes, sites)}."""
    out = {}
    for s in report['sites']:
        frames = s['frames']
        sym = frames[0]['symbol'] if frames and frames[0]['symbol'] else None
        if sym is None:
            continue
        b, n, sites = out.get(sym, (0, 0, []))
        out[sym] = (b + s['estimated_bytes'], n + 1, sites + [s])
    return out


def build_id_of(path):
    if not shutil.which('readelf'):
        return None
    rc, out, _ = run(['readelf', '-n', path])
    m = re.search(r'Build ID: ([0-9a-f]+)', out)
    return m.group(1) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tool', required=True)
    ap.add_argument('--shim', required=True)
    ap.add_argument('--prog', required=True)
    ap.add_argument('--interval', type=int, default=4096)
    ap.add_argument('--total', type=int, default=48 << 20)
    args = ap.parse_args()

    base = '/dev/shm' if os.access('/dev/shm', os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix='persist-sites-', dir=base)
    try:
        heap = os.path.join(tmp, 'sites.heap')
        env = dict(os.environ, LD_PRELOAD=args.shim, PERSIST_FILE=heap,
                   PERSIST_SITES=str(args.interval))
        rc, out, err = run([args.prog, args.total], env=env)
        if rc != 0:
            print('sites_e2e failed (%d): %s' % (rc, err))
            return 1
        truth = {}
        for line in out.splitlines():
            name, nbytes, blocks, var = line.split()
            truth[name] = (int(nbytes), int(blocks), float(var))
        print('allocated: ' + ', '.join('%s %d bytes in %d blocks (sd %.0f)' %
                                        (k, v[0], v[1], math.sqrt(v[2])) for k, v in sorted(truth.items())))
        names = ['alloc_a', 'alloc_b', 'alloc_c']
        if not check(sorted(truth) == names, 'the program reported the three functions'):
            return 1
        total = sum(truth[n][0] for n in names)
        prog_path = os.path.realpath(args.prog)
        prog_id = build_id_of(prog_path)

        # ---- all live sampled blocks ----
        rc, out, err = run([args.tool, 'sites', heap, '--json'])
        check(rc == 0, 'persist sites --json exits 0 (got %d: %s)' % (rc, err.strip()))
        rep = json.loads(out)
        check(rep['site_table'] == 'present', 'the heap has a site table')
        check(rep['consistent'] and rep['invalid_samples'] == 0, 'no invalid sample records')
        check(rep['interval_min'] == args.interval == rep['interval_max'],
              'the records carry the interval %d' % args.interval)
        fn = by_function(rep)
        est = {}
        for n in names:
            if not check(n in fn, '%s is named as the top frame of a site' % n):
                continue
            b, nsites, sites = fn[n]
            est[n] = b
            true_b, _, var = truth[n]
            sd = math.sqrt(var)
            check(abs(b - true_b) <= SIGMAS * sd + 1,
                  '%s: estimated %d bytes (%d site(s)), allocated %d: off by %.2f sd' %
                  (n, b, nsites, true_b, (b - true_b) / sd if sd else 0))
            for s in sites:
                f0 = s['frames'][0]
                check(f0['module'] == prog_path, '%s: frame in the program (%s)' % (n, f0['module']))
                if prog_id:
                    check(f0['build_id'] == prog_id, '%s: with the program\'s build-id' % n)
                check(any(f['symbol'] == 'main' for f in s['frames']),
                      '%s: main among its callers' % n)
        if len(est) == 3:
            est_t = sum(est.values())
            for n in names:
                s_true = truth[n][0] / total
                s_est = est[n] / est_t
                var_self = truth[n][2]
                var_rest = sum(truth[m][2] for m in names if m != n)
                sd = math.sqrt((1 - s_true) ** 2 * var_self + s_true ** 2 * var_rest) / total
                check(abs(s_est - s_true) <= SIGMAS * sd,
                      '%s: share of the three %.2f%% (true %.2f%%, tolerance %.2f points)' %
                      (n, 100 * s_est, 100 * s_true, 100 * SIGMAS * sd))
                # The tool's own share is of every sampled site (the program's other allocations
                # are a small part).
                share = sum(s['share_pct'] for s in fn[n][2])
                check(abs(share - 100 * s_true) <= 100 * SIGMAS * sd + 1.0,
                      '%s: the tool\'s share_pct %.2f%%' % (n, share))
            order = [s['frames'][0]['symbol'] for s in rep['sites']]
            check(order[0] == 'alloc_a', 'the largest site is alloc_a\'s (%s)' % order[:3])
            ests = [s['estimated_bytes'] for s in rep['sites']]
            check(ests == sorted(ests, reverse=True), 'sites sorted by estimated bytes')

        rc, text, err = run([args.tool, 'sites', heap])
        check(rc == 0, 'persist sites exits 0')
        for n in names:
            check(re.search(r'%s\+0x[0-9a-f]+ \(%s\)' % (n, re.escape(os.path.basename(prog_path))), text)
                  is not None, 'text output names %s' % n)
        rc, text, err = run([args.tool, 'sites', heap, '--top', '1', '--json'])
        check(rc == 0 and len(json.loads(text)['sites']) == 1, '--top 1 lists one site')

        # ---- leaks: only what no root reaches ----
        rc, out, err = run([args.tool, 'sites', heap, '--leaks', '--json'])
        check(rc == 0, 'persist sites --leaks --json exits 0 (got %d: %s)' % (rc, err.strip()))
        lrep = json.loads(out)
        check(lrep['leaks'] and lrep['reachability'], '--leaks ran the reachability mark')
        check(lrep['reachable_samples_skipped'] > 0, 'reachable samples were left out')
        lfn = by_function(lrep)
        check('alloc_a' not in lfn and 'alloc_b' not in lfn,
              'alloc_a and alloc_b (reached from roots) are not leaks: %s' % sorted(lfn))
        if check('alloc_c' in lfn, 'alloc_c (no root) is a leak'):
            b = lfn['alloc_c'][0]
            true_b, _, var = truth['alloc_c']
            sd = math.sqrt(var)
            check(abs(b - true_b) <= SIGMAS * sd + 1,
                  'alloc_c leaked: estimated %d bytes, allocated %d: off by %.2f sd' %
                  (b, true_b, (b - true_b) / sd))
            check(b >= 0.9 * lrep['estimated_bytes'],
                  'alloc_c is most of the leaked bytes (%d of %d)' % (b, lrep['estimated_bytes']))
        rc, text, err = run([args.tool, 'sites', heap, '--leaks'])
        check(rc == 0 and 'leaks only' in text and 'alloc_c+0x' in text and 'alloc_a+0x' not in text,
              'text --leaks lists alloc_c only')

        rc, out, err = run([args.tool, 'check', heap])
        check(rc == 0, 'persist check: the heap with samples is consistent (%s)' % out.strip()[:200])
    finally:
        if os.environ.get('PERSIST_TEST_KEEP') == '1':
            print('keeping ' + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print('%d check(s) failed' % len(FAILURES))
        return 1
    print('PASS')
    return 0


if __name__ == '__main__':
    sys.exit(main())
