#!/usr/bin/env python3
"""tools_test.py CASE --tool PERSIST --shim LIBPERSIST --maker HEAP_MAKER — tests of the `persist`
tool (tests/tools/CMakeLists.txt runs them through CTest).

  subcommands     heap_maker (heap_maker.c) builds a known heap under the shim and prints where
                  it put everything; every subcommand's text and JSON output is checked against
                  that, and against each other (stats against check, blocks against stats).
  python_strings  /usr/bin/python3 under the shim computes a string, says "ready" and is killed
                  with SIGKILL; `persist strings` must find the string in the heap it left.

Exit status 0 when every check passed; the failed checks are listed otherwise.
PERSIST_TEST_KEEP=1 keeps the temporary directory.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print('FAIL: ' + what)
    return cond


class Tool:
    def __init__(self, exe):
        self.exe = exe

    def __call__(self, *args, stdin=None, cwd=None, env=None, binary=False):
        p = subprocess.run([self.exe] + [str(a) for a in args], capture_output=True, cwd=cwd,
                           env=env, timeout=60, input=stdin)
        out = p.stdout if binary else p.stdout.decode('utf-8', 'replace')
        return p.returncode, out, p.stderr.decode('utf-8', 'replace')

    def json(self, *args):
        rc, out, err = self(*args, '--json')
        try:
            return rc, json.loads(out), err
        except ValueError:
            check(False, 'persist %s --json printed no JSON: %r %r' % (' '.join(map(str, args)), out[:300], err[:300]))
            return rc, {}, err


def run_maker(args, heap, extra=()):
    env = dict(os.environ, LD_PRELOAD=args.shim, PERSIST_FILE=heap)
    p = subprocess.run([args.maker] + list(extra), capture_output=True, env=env, timeout=60)
    if p.returncode != 0:
        sys.exit('heap_maker failed (%d): %s' % (p.returncode, p.stderr.decode()))
    manifest = {}
    for line in p.stdout.decode().splitlines():
        name, off, size = line.split()
        manifest[name] = (int(off), int(size))
    return manifest


def class_size(size):
    """The usable size of a small request (core/sizeclass.h)."""
    if size <= 128:
        return max(16, (size + 15) // 16 * 16)
    lg = (size - 1).bit_length() - 1
    base = 1 << lg
    step = base // 4
    return base + ((size - 1 - base) // step + 1) * step


def test_help_and_usage(tool):
    commands = ['info', 'check', 'roots', 'dump', 'stats', 'blocks', 'strings', 'map', 'snapshot',
                'run', 'help']
    rc, out, _ = tool('help')
    check(rc == 0, 'persist help exits 0')
    for c in commands:
        check(re.search(r'^  %s ' % c, out, re.M), 'persist help lists %s' % c)
        rc, out2, _ = tool('help', c)
        check(rc == 0 and out2.startswith('usage: persist %s' % c), 'persist help %s' % c)
        if c not in ('help', 'run'):
            rc, out3, _ = tool(c, '--help')
            check(rc == 0 and out3.startswith('usage: persist %s' % c), 'persist %s --help' % c)
    check(tool('help', 'nosuch')[0] == 64, 'persist help nosuch exits 64')
    check(tool('nosuch')[0] == 64, 'persist nosuch exits 64')
    for c in ('roots', 'stats', 'blocks', 'strings', 'dump'):
        check(tool(c)[0] == 64, 'persist %s without FILE exits 64' % c)
        check(tool(c, 'x', '--bogus')[0] == 64, 'persist %s --bogus exits 64' % c)


def test_unreadable(tool, tmp):
    empty = os.path.join(tmp, 'empty.heap')
    open(empty, 'w').close()
    junk = os.path.join(tmp, 'junk.heap')
    with open(junk, 'wb') as f:
        f.write(b'not a heap' * 1000)
    for path in (os.path.join(tmp, 'missing.heap'), empty, junk, tmp):
        for cmd in (['roots'], ['stats'], ['blocks'], ['strings'], ['map', '-o', os.devnull],
                    ['dump', '--offset', '0']):
            rc, out, err = tool(cmd[0], path, *cmd[1:])
            check(rc == 2, 'persist %s on %s exits 2 (got %d)' % (cmd[0], os.path.basename(path), rc))
            check(err.startswith('persist'), 'persist %s on an unreadable file says why' % cmd[0])
        rc, j, _ = tool.json('stats', path)
        check(rc == 2 and j.get('readable') is False and j.get('error'),
              'stats --json on an unreadable file: readable false, error')


def test_roots(tool, heap, m, base):
    rc, j, err = tool.json('roots', heap)
    check(rc == 0, 'roots exits 0: ' + err)
    check(j.get('consistent') is True and j.get('problems') == 0 and j.get('problem_list') == []
          and j.get('first_problem') is None, 'roots: consistent, no problems')
    roots = {r['tag']: r for r in j.get('roots', [])}
    check(set(roots) == {'config', 'list', 'big', 'sizes', 'huge'}, 'roots: the five tags, got %s' % sorted(roots))
    for tag in ('config', 'list', 'big', 'sizes', 'huge'):
        r = roots.get(tag, {})
        check(r.get('offset') == m[tag][0], 'roots: %s at offset %d' % (tag, m[tag][0]))
        check(r.get('address') == hex(base + m[tag][0]), 'roots: %s address' % tag)
        check(r.get('status') == 'live' and r.get('block_offset') == m[tag][0], 'roots: %s is live' % tag)
    check(roots.get('config', {}).get('size') == 40 and roots['config'].get('block_size') == 48,
          'roots: config records 40 bytes in a 48-byte block')
    check(roots.get('huge', {}).get('block_kind') == 'huge', 'roots: huge is a huge block')
    check(roots.get('big', {}).get('block_kind') == 'large', 'roots: big is a large block')
    rc, out, _ = tool('roots', heap)
    check(rc == 0 and re.search(r'^config +%s +%s ' % (hex(m['config'][0]), hex(base + m['config'][0])), out, re.M),
          'roots text: the config line')


def test_dump(tool, heap, m, base):
    cfg = m['config'][0]
    rc, raw, err = tool('dump', heap, '--root', 'config', '--raw', binary=True)
    check(rc == 0 and raw.startswith(b'CONFIG-NAME-XYZ\0') and len(raw) == 48,
          'dump --root config --raw: the 48-byte block (%d, %r)' % (rc, raw[:20]))
    check(raw[32:40] == (42).to_bytes(8, 'little'), 'dump: config.answer is 42')
    check('small block (class 2)' in err, 'dump says which block it found: ' + err)
    rc, part, _ = tool('dump', heap, '--offset', hex(cfg + 7), '--length', '8', '--raw', binary=True)
    check(rc == 0 and part == b'NAME-XYZ', 'dump --offset --length: 8 bytes from inside the block: %r' % part)
    rc, whole, _ = tool('dump', heap, '--offset', str(cfg + 20), '--raw', binary=True)
    check(rc == 0 and whole == raw, 'dump --offset inside a block dumps the whole block')
    rc, text, _ = tool('dump', heap, '--addr', '%x' % (base + cfg))
    lines = text.splitlines()
    check(rc == 0 and len(lines) == 3, 'dump --addr: 3 lines of hex')
    check(lines and lines[0] == '%08x: 434f 4e46 4947 2d4e 414d 452d 5859 5a00  CONFIG-NAME-XYZ.' % cfg,
          'dump: xxd format: %r' % (lines[:1],))
    back = b''.join(bytes.fromhex(''.join(l[10:49].split())) for l in lines)
    check(back == raw, 'dump: the hex reads back as the raw bytes')
    rc, j, _ = tool.json('dump', heap, '--root', 'big')
    check(rc == 0 and j.get('found') is True and j.get('block_size') == 40960 and j.get('block_kind') == 'large'
          and j.get('hex', '').startswith(b'BIG-BLOCK-START!'.hex()), 'dump --json --root big')
    rc, j, _ = tool.json('dump', heap, '--addr', hex(base + m['huge'][0] + 100), '--length', '16')
    check(rc == 0 and j.get('block_kind') == 'huge' and j.get('start') == m['huge'][0] + 100 and j.get('length') == 16,
          'dump --addr inside the huge block with --length')
    # Refusals: exit 1 with what the place is.
    for args, words in ((['--offset', '0'], 'metadata'),
                        (['--offset', str(m['freed'][0])], 'free slot'),
                        (['--offset', str(m['huge'][0] - 4096)], 'metadata'),
                        (['--addr', '0x1000'], 'outside the heap'),
                        (['--offset', str(1 << 40)], 'outside'),
                        (['--root', 'nope'], 'no root named')):
        rc, out, err = tool('dump', heap, *args)
        check(rc == 1 and words in err and out == '', 'dump %s refused with "%s": %d %r' % (' '.join(args), words, rc, err))
    rc, j, _ = tool.json('dump', heap, '--offset', '0')
    check(rc == 1 and j.get('found') is False and 'metadata' in j.get('error', ''), 'dump --json refusal: found false')
    for args in ([], ['--root', 'a', '--offset', '0'], ['--offset', '0', '--raw', '--json'], ['--offset', 'zz'],
                 ['--length', '5']):
        check(tool('dump', heap, *args)[0] == 64, 'dump %s is a usage error' % ' '.join(args))


def test_stats(tool, heap, m):
    rc, s, err = tool.json('stats', heap)
    check(rc == 0 and s.get('consistent') is True, 'stats exits 0: ' + err)
    rc, c, _ = tool.json('check', heap)
    check(rc == 0, 'check exits 0')
    for k in ('live_blocks', 'live_bytes', 'reachable_blocks', 'unreachable_blocks', 'unreachable_bytes'):
        check(s.get(k) == c.get(k), 'stats %s = check %s (%s, %s)' % (k, k, s.get(k), c.get(k)))
    check(s.get('unreachable_blocks', 0) >= 1, 'stats: the leaked block is a leftover')
    check(s.get('huge_blocks') == 1 and s.get('huge_bytes') == 5 << 20, 'stats: one 5 MiB huge block')
    # The core may keep large blocks of its own (a module table): at least the maker's two.
    check(s.get('large_blocks', 0) >= 2 and s.get('large_bytes', 0) >= 40960 + 20480, 'stats: the large blocks')
    classes = s.get('classes', [])
    check(sum(x['live_blocks'] for x in classes) == s.get('small_blocks'), 'stats: classes add up to small_blocks')
    check(s.get('small_blocks', 0) + s.get('large_blocks', 0) + s.get('huge_blocks', 0) == s.get('live_blocks'),
          'stats: small + large + huge = live')
    check(sum(x['run_bytes'] for x in classes) == s.get('run_free_bytes', 0) + s.get('small_bytes', 0),
          'stats: run bytes = live small bytes + free bytes in runs')
    by_size = {x['block_size']: x for x in classes}
    for n in (24, 100, 1000, 5000):
        check(by_size.get(class_size(n), {}).get('live_blocks', 0) >= 1, 'stats: a live %d-byte block' % n)
    check(all(0 <= x['fill_pct'] <= 100 for x in classes), 'stats: fill in [0, 100]')
    check(s.get('free_page_bytes', 0) >= s.get('largest_free_span_bytes', 0) > 0, 'stats: free pages')
    check(s.get('file_bytes') == os.path.getsize(heap), 'stats: file_bytes')
    rc, out, _ = tool('stats', heap)
    check(rc == 0 and 'leftovers' in out and 'fragmentation' in out, 'stats text')
    return s


def test_blocks(tool, heap, m, base, stats):
    rc, j, err = tool.json('blocks', heap)
    check(rc == 0 and j.get('reachability') is True, 'blocks exits 0, with reachability: ' + err)
    blocks = {b['offset']: b for b in j.get('blocks', [])}
    check(j.get('listed') == stats.get('live_blocks') == len(blocks), 'blocks lists every live block')
    check(sum(1 for b in blocks.values() if not b['reachable']) == stats.get('unreachable_blocks'),
          'blocks: as many unreachable blocks as stats says')
    for name, (off, size) in m.items():
        b = blocks.get(off)
        if name == 'freedtext':
            continue
        if name == 'freed':
            check(b is None, 'blocks: the freed block is not listed')
            continue
        if not check(b is not None, 'blocks lists %s' % name):
            continue
        check(b['address'] == hex(base + off), 'blocks: %s address' % name)
        check(b['reachable'] == (name != 'leaked'), 'blocks: %s reachable=%s' % (name, name != 'leaked'))
        if size <= 16384:
            check(b['kind'] == 'small' and b['size'] == class_size(size), 'blocks: %s is a small %d-byte block' % (name, size))
    check(blocks.get(m['config'][0], {}).get('first_text') == 'CONFIG-NAME-XYZ.', 'blocks: first_text')
    check(blocks.get(m['config'][0], {}).get('first_hex') == b'CONFIG-NAME-XYZ\0'.hex(), 'blocks: first_hex')
    rc, j, _ = tool.json('blocks', heap, '--contains', 'LEAKED-ORPHAN')
    check(rc == 0 and [b['offset'] for b in j.get('blocks', [])] == [m['leaked'][0]], 'blocks --contains finds the leaked block')
    rc, j, _ = tool.json('blocks', heap, '--contains-hex', b'HUGE-BLOCK-TAIL'.hex())
    check(rc == 0 and [b['offset'] for b in j.get('blocks', [])] == [m['huge'][0]], 'blocks --contains-hex finds the huge block')
    rc, j, _ = tool.json('blocks', heap, '--min-size', '5000', '--max-size', '6K')
    check(rc == 0 and j.get('blocks') and all(5000 <= b['size'] <= 6144 for b in j['blocks'])
          and m['sized5000'][0] in [b['offset'] for b in j['blocks']], 'blocks --min-size --max-size')
    rc, j, _ = tool.json('blocks', heap, '--limit', '3')
    check(rc == 0 and j.get('listed') == 3 and j.get('limit_reached') is True, 'blocks --limit 3')
    rc, out, _ = tool('blocks', heap, '--contains', 'BIG-BLOCK')
    check(rc == 0 and re.search(r'^%s +%s +40960 large +yes +42 49 47 2d' % (hex(m['big'][0]), hex(base + m['big'][0])), out, re.M),
          'blocks text: the big block line')
    check(tool('blocks', heap, '--contains-hex', 'xyz')[0] == 64, 'blocks --contains-hex xyz is a usage error')


def test_strings(tool, heap, m):
    rc, out, err = tool('strings', heap)
    check(rc == 0, 'strings exits 0: ' + err)
    found = {}
    for line in out.splitlines():
        off, _, text = line.strip().partition(' ')
        found.setdefault(text, int(off, 16))
    check(found.get('CONFIG-NAME-XYZ') == m['config'][0], 'strings: CONFIG-NAME-XYZ at its offset')
    check(found.get('node-text-042') is not None, 'strings: node-text-042')
    check(found.get('LEAKED-ORPHAN-TEXT') == m['leaked'][0], 'strings: the leaked text')
    check(found.get('HUGE-BLOCK-TAIL!') == m['huge'][0] + (5 << 20) - 32, 'strings: the tail of the huge block')
    check('FREED-SECRET-TEXT' not in out, 'strings: no text from freed memory without --all')
    rc, out, _ = tool('strings', heap, '--all')
    check(rc == 0 and re.search(r'^ *%x free +FREED-SECRET-TEXT$' % m['freedtext'][0], out, re.M),
          'strings --all: the freed text, marked free')
    check(re.search(r'^ *%x live +CONFIG-NAME-XYZ$' % m['config'][0], out, re.M), 'strings --all: live marked')
    rc, out, _ = tool('strings', heap, '-n', '16')
    check(rc == 0 and 'node-text-042' not in out and 'LEAKED-ORPHAN-TEXT' in out, 'strings -n 16')
    rc, j, _ = tool.json('strings', heap, '--all')
    texts = {s['text']: s for s in j.get('strings', [])}
    check(j.get('count') == len(j.get('strings', [])), 'strings --json: count')
    check(texts.get('LEAKED-ORPHAN-TEXT', {}).get('where') == 'live'
          and texts['LEAKED-ORPHAN-TEXT'].get('block_offset') == m['leaked'][0], 'strings --json: live with block_offset')
    check(texts.get('FREED-SECRET-TEXT', {}).get('where') == 'free', 'strings --json --all: free')


def test_map(tool, heap, tmp):
    svg = os.path.join(tmp, 'map.svg')
    rc, j, err = tool.json('map', heap, '-o', svg)
    check(rc == 0 and j.get('output') == svg, 'map exits 0: ' + err)
    pages = j.get('pages', {})
    check(pages.get('huge') == (5 << 20) // 4096, 'map: the huge block is 1280 pages')
    check(pages.get('large', 0) >= 15, 'map: the 15 pages of the large blocks')
    check(pages.get('run', 0) > 0 and pages.get('metadata', 0) > 0 and pages.get('free', 0) > 0, 'map: runs, metadata, free')
    check(sum(pages.values()) == os.path.getsize(heap) // 4096, 'map: every page of the file is drawn')
    check(j.get('pages_per_cell') == 1 and j.get('segment_bands') is True, 'map: a page a cell, segment bands')
    try:
        root = ET.parse(svg).getroot()
        ns = '{http://www.w3.org/2000/svg}'
        check(root.tag == ns + 'svg', 'map: an svg root element')
        rects = root.findall(ns + 'rect')
        check(len(rects) >= j.get('cells', 0), 'map: a rect per cell')
        check(any(r.get('fill') == '#d62728' for r in rects), 'map: huge pages drawn in the huge color')
        check(any(t.text and 'run of 48-byte blocks' in t.text for t in root.iter(ns + 'title')), 'map: tooltips')
    except ET.ParseError as e:
        check(False, 'map writes well-formed XML: %s' % e)
    rc, out, _ = tool('map', heap, '-o', '-', '--pages-per-cell', '64')
    check(rc == 0 and out.startswith('<?xml') and out.rstrip().endswith('</svg>'), 'map -o - writes the SVG to stdout')
    check(tool('map', heap)[0] == 64, 'map without -o is a usage error')
    check(tool('map', heap, '-o', '-', '--json')[0] == 64, 'map -o - --json is a usage error')
    check(tool('map', heap, '-o', os.path.join(tmp, 'no', 'such', 'dir.svg'))[0] == 2, 'map: unwritable output exits 2')


def test_snapshot(tool, args, heap, tmp):
    copy = os.path.join(tmp, 'copy.heap')
    rc, out, err = tool('snapshot', heap, copy)
    check(rc == 0 and 'consistent' in out, 'snapshot exits 0 and verifies: %r %r' % (out, err))
    check(tool('check', copy)[0] == 0, 'the snapshot checks consistent')
    for cmd in ('roots', 'stats', 'blocks', 'strings'):
        a, b = tool.json(cmd, heap)[1], tool.json(cmd, copy)[1]
        for j in (a, b):
            for k in ('file', 'disk_bytes'):
                j.pop(k, None)
        check(a == b, 'persist %s: the snapshot reads like the original' % cmd)
    check(tool('snapshot', heap, copy)[0] == 2, 'snapshot onto an existing file exits 2')
    check(tool('snapshot', os.path.join(tmp, 'missing.heap'), os.path.join(tmp, 'x.heap'))[0] == 2,
          'snapshot of a missing file exits 2')
    # A heap in use: heap_maker --hold owns it until it is killed.
    live = os.path.join(tmp, 'live.heap')
    env = dict(os.environ, LD_PRELOAD=args.shim, PERSIST_FILE=live)
    holder = subprocess.Popen([args.maker, '--hold'], stdout=subprocess.PIPE, env=env)
    try:
        ready = wait_for_line(holder, 'ready', 30)
        check(ready, 'heap_maker --hold says ready')
        livecopy = os.path.join(tmp, 'livecopy.heap')
        rc, j, err = tool.json('snapshot', live, livecopy)
        check(rc == 0 and j.get('owner_live') is True and j.get('consistent') is True and j.get('state') == 'dirty',
              'snapshot of a live heap: owner_live, consistent, dirty: %s %s' % (j, err))
        check(j.get('method') in ('copy', 'reflink'), 'snapshot: method')
        rc, j, err = tool.json('stats', live)
        check(j.get('owner_live') is True and 'live process' in err, 'stats says the owner is live')
        rc, out, _ = tool('strings', livecopy)
        check('CONFIG-NAME-XYZ' in out, 'the copy of the live heap holds its strings')
        check(tool('check', livecopy)[0] == 0, 'the copy of the live heap checks consistent')
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def wait_for_line(proc, word, seconds):
    deadline = time.time() + seconds
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b''
    while time.time() < deadline:
        chunk = proc.stdout.read()
        if chunk:
            buf += chunk
            if word.encode() in buf:
                return True
        elif proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def test_run(tool, args, tmp):
    cwd = os.path.join(tmp, 'runcwd')
    os.mkdir(cwd)
    rc, out, err = tool('run', '--', args.maker, cwd=cwd)
    name = os.path.basename(args.maker)
    path = os.path.join(cwd, name + '.heap')
    check(rc == 0 and err.startswith('persist: heap %s\n' % path), 'run: prints the heap: %r' % err)
    check(os.path.exists(path), 'run: the program made ./%%e.heap (%s)' % path)
    check('config' in out, 'run: the program ran (its output)')
    check(tool('check', path)[0] == 0 and tool.json('roots', path)[1].get('roots_count') == 4, 'run: its heap has its roots')
    rc, out, err = tool('run', '--file', 'x-%p.heap', '--verbose', '--', 'sh', '-c', 'exit 7', cwd=cwd)
    check(rc == 7, 'run: exits with the command\'s status (%d)' % rc)
    check(re.search(r'^persist: heap %s/x-\d+\.heap$' % re.escape(cwd), err, re.M), 'run: %%p expanded: %r' % err)
    check('PERSIST_VERBOSE=1' in err, 'run --verbose')
    rc, _, err = tool('run', '--', os.path.join(tmp, 'no-such-program'), cwd=cwd)
    check(rc == 127 and 'cannot run' in err, 'run: a missing program exits 127')
    check(tool('run')[0] == 64, 'run without a command is a usage error')
    check(tool('run', '--lib', os.path.join(tmp, 'nolib'), '--', 'true')[0] == 2, 'run: a missing --lib exits 2')
    rc, out, err = tool('run', '--lib', os.path.dirname(args.shim), '--file', os.path.join(tmp, 'env.heap'), '--',
                        'sh', '-c', 'echo "$LD_PRELOAD|$PERSIST_FILE"')
    check(rc == 0 and out.strip() == '%s|%s' % (os.path.realpath(args.shim), os.path.join(tmp, 'env.heap')),
          'run: the environment it sets: %r' % out)


def test_damaged(tool, heap, m, tmp):
    # The file cut in the middle of the huge block: segment 0 still reads.
    cut = os.path.join(tmp, 'cut.heap')
    with open(heap, 'rb') as src, open(cut, 'wb') as dst:
        dst.write(src.read(6 << 20))
    rc, s, err = tool.json('stats', cut)
    check(rc == 1 and s.get('consistent') is False and any('truncated' in p for p in s.get('problem_list', []))
          and s.get('problems', 0) >= 1,
          'stats on a truncated heap: exit 1, says truncated')
    check(s.get('reachability') is False and s.get('missing_bytes', 0) > 0, 'stats on a truncated heap: no reachability, missing bytes')
    rc, out, err = tool('strings', cut)
    check(rc == 1 and 'CONFIG-NAME-XYZ' in out and 'damaged heap' in err, 'strings on a truncated heap: exit 1, still finds text')
    rc, j, _ = tool.json('blocks', cut)
    check(rc == 1 and j.get('reachability') is False and all(b['reachable'] is None for b in j.get('blocks', [])),
          'blocks on a truncated heap: reachable null')
    rc, raw, _ = tool('dump', cut, '--root', 'config', '--raw', binary=True)
    check(rc == 1 and raw.startswith(b'CONFIG-NAME-XYZ'), 'dump on a truncated heap still dumps an intact block')
    svg = os.path.join(tmp, 'cut.svg')
    rc, j, _ = tool.json('map', cut, '-o', svg)
    check(rc == 1 and j.get('pages', {}).get('missing', 0) > 0, 'map of a truncated heap draws missing pages')
    ET.parse(svg)
    # A damaged segment header: the segment is shown as damaged, the root table (in it) as well.
    bad = os.path.join(tmp, 'bad.heap')
    shutil.copyfile(heap, bad)
    with open(bad, 'r+b') as f:
        f.seek(4096)  # segment 0's header magic
        f.write(b'\0\0\0\0')
    rc, j, err = tool.json('roots', bad)
    check(rc == 1 and j.get('consistent') is False, 'roots on a heap with a damaged segment exits 1')
    rc, out, err = tool('strings', bad, '--all')
    check(rc == 1 and re.search(r'damaged +CONFIG-NAME-XYZ', out), 'strings --all reads a damaged segment, marked')


def case_subcommands(args):
    tool = Tool(args.tool)
    tmp = tempfile.mkdtemp(prefix='persist-tools-')
    try:
        heap = os.path.join(tmp, 'known.heap')
        m = run_maker(args, heap, ['--huge'])
        rc, info, _ = tool.json('info', heap)
        base = int(info['base'], 16)
        test_help_and_usage(tool)
        test_unreadable(tool, tmp)
        test_roots(tool, heap, m, base)
        test_dump(tool, heap, m, base)
        stats = test_stats(tool, heap, m)
        test_blocks(tool, heap, m, base, stats)
        test_strings(tool, heap, m)
        test_map(tool, heap, tmp)
        test_snapshot(tool, args, heap, tmp)
        test_run(tool, args, tmp)
        test_damaged(tool, heap, m, tmp)
    finally:
        if os.environ.get('PERSIST_TEST_KEEP') == '1':
            print('kept', tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def case_python_strings(args):
    tool = Tool(args.tool)
    python = '/usr/bin/python3'
    if not os.access(python, os.X_OK):
        print('skipped: no /usr/bin/python3')
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix='persist-pystr-')
    try:
        heap = os.path.join(tmp, 'python.heap')
        env = dict(os.environ, LD_PRELOAD=args.shim, PERSIST_FILE=heap, PYTHONMALLOC='malloc')
        code = "s='UNIQUE-MARKER-'+str(12345*2); import time,sys; print('ready',flush=True); time.sleep(60)"
        p = subprocess.Popen([python, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            ready = wait_for_line(p, 'ready', 30)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        if not check(ready, 'python3 under the shim says ready (stderr: %r)' % p.stderr.read()[:500]):
            return
        check(p.returncode == -signal.SIGKILL, 'python3 was killed with SIGKILL')
        rc, out, err = tool('strings', heap)
        check(rc == 0, 'strings on the killed python\'s heap exits 0: ' + err)
        hits = [l for l in out.splitlines() if l.strip().endswith(' UNIQUE-MARKER-24690')]
        check(hits, 'strings finds UNIQUE-MARKER-24690 in the heap of the killed python3')
        for line in hits:
            print('found:', line.strip())
        rc, j, _ = tool.json('strings', heap, '-n', '19')
        check(any(s['text'] == 'UNIQUE-MARKER-24690' and s['where'] == 'live' for s in j.get('strings', [])),
              'strings --json: the marker is in a live block')
        rc, out, _ = tool('check', heap)
        check(rc == 0 and 'dirty' in out, 'the heap of the killed python3 is dirty and consistent: ' + out)
    finally:
        if os.environ.get('PERSIST_TEST_KEEP') == '1':
            print('kept', tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('case', choices=['subcommands', 'python_strings'])
    ap.add_argument('--tool', required=True)
    ap.add_argument('--shim', required=True)
    ap.add_argument('--maker', required=True)
    args = ap.parse_args()
    {'subcommands': case_subcommands, 'python_strings': case_python_strings}[args.case](args)
    if FAILURES:
        print('%d checks failed' % len(FAILURES))
        sys.exit(1)
    print('PASS')


if __name__ == '__main__':
    main()
