# tree.py — a Python process tree: subprocess.run, Popen with pipes, a grandchild level, and a
# multiprocessing pool with the "spawn" start method (fresh interpreters exec'ed). Every process
# writes to stdout and stderr; the output is deterministic. Run as `tree.py [depth]`.
import hashlib
import multiprocessing as mp
import subprocess
import sys


def work(n):
    d = {i: str(i) * (i % 13) for i in range(n * 1000, n * 1000 + 5000)}
    return n, hashlib.sha1(repr(sorted(d.items())).encode()).hexdigest()[:12]


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    me = "  " * depth + f"level {depth}"
    print(me, "start", flush=True)
    print(me, "stderr line", file=sys.stderr, flush=True)
    if depth < 2:
        for k in range(2):
            r = subprocess.run([sys.executable, __file__, str(depth + 1)], capture_output=True, text=True)
            print(me, f"child {k}: status {r.returncode}")
            sys.stdout.write(r.stdout)
            sys.stderr.write(r.stderr)
    if depth == 0:
        p = subprocess.Popen(["sh", "-c", "echo to-stderr >&2; sort -r | head -n 3"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out, _ = p.communicate("\n".join(str(i) for i in range(1000)))
        print(me, "sort:", out.split(), "status", p.returncode)
        ctx = mp.get_context("spawn")
        with ctx.Pool(3) as pool:
            for n, h in pool.map(work, range(6)):
                print(me, "pool", n, h)
    print(me, "done", flush=True)


if __name__ == "__main__":
    main()
