# forks.py — Python forking without exec (os.fork, a multiprocessing pool using the fork start
# method, which also runs helper threads in the parent) and a subprocess that execs. Deterministic
# output; the interposer tests compare it with and without libpersist.
import hashlib
import json
import multiprocessing as mp
import os
import subprocess
import threading


def work(n):
    d = {str(i): [i, str(i) * (i % 7)] for i in range(n * 100, n * 100 + 3000)}
    s = json.dumps(d, sort_keys=True)
    return n, len(d), hashlib.sha1(s.encode()).hexdigest()[:12]


def churn(stop, out):
    # A parent thread that keeps allocating while the main thread forks.
    acc, i = {}, 0
    while not stop.is_set():
        acc[i % 5000] = "x" * (i % 300)
        i += 1
    out.append(len(acc))


big = {i: str(i) * 10 for i in range(200000)}
stop = threading.Event()
side = []
t = threading.Thread(target=churn, args=(stop, side))
t.start()

results = []
for k in range(8):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        # The child sees the parent's data and changes its own copy.
        total = sum(len(v) for v in big.values())
        for i in range(0, 200000, 3):
            big[i] = "changed"
        os.write(w, json.dumps([k, total, work(k)[2]]).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    results.append((json.loads(data), os.waitstatus_to_exitcode(status)))

ctx = mp.get_context("fork")
with ctx.Pool(4) as pool:
    pooled = pool.map(work, range(24))

echo = subprocess.run(["/bin/echo", "from a subprocess"], capture_output=True, text=True)
stop.set()
t.join()

print("forked", results)
print("pool", pooled)
print("parent data intact", all(v == str(i) * 10 for i, v in big.items()))
print("subprocess", echo.returncode, echo.stdout.strip())
print("side thread ran", len(side) == 1 and side[0] > 0)
