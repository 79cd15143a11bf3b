# py_dicts.py — a python3 workload with small-object churn: dicts of records, JSON round trips,
# sorting, string building. Deterministic; prints a checksum so the work cannot be skipped.
# Scale with the first argument (default 1).
import json
import random
import sys

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
rng = random.Random(1)
n = int(200_000 * scale)

records = {}
for i in range(n):
    key = "user:%08d" % rng.randrange(10 * n)
    records[key] = {"id": i, "name": "n%d" % i, "tags": [rng.randrange(100) for _ in range(rng.randrange(1, 6))],
                    "score": rng.random()}

text = json.dumps(records)
back = json.loads(text)

rows = sorted(back.items(), key=lambda kv: (kv[1]["score"], kv[0]))
groups = {}
for key, rec in rows:
    for t in rec["tags"]:
        groups.setdefault(t, []).append(rec["id"])

parts = []
for t in sorted(groups):
    parts.append("%d:%d" % (t, sum(groups[t]) % 1000003))
out = ",".join(parts)
del records, back, rows
print(len(text), len(groups), len(out))
