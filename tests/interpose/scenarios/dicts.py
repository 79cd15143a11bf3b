# dicts.py — a dict / json / sort heavy Python workload with deterministic output (the interposer
# tests run it with and without libpersist and compare stdout exactly).
import collections
import hashlib
import json
import random

rng = random.Random(12345)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
         for _ in range(20000)]

# Dicts of lists of dicts, grown and shrunk.
table = {}
for i, w in enumerate(words * 5):
    entry = table.setdefault(w, {"word": w, "hits": 0, "pos": []})
    entry["hits"] += 1
    entry["pos"].append(i)
for w in list(table)[::3]:
    del table[w]

# JSON round trips, small and large.
blob = json.dumps(table, sort_keys=True)
back = json.loads(blob)
assert back == table
small = [json.loads(json.dumps({"k": i, "v": [i, str(i), {"x": i * 1.5}]})) for i in range(20000)]

# Sorting with keys, Counter, string building, sets.
ranked = sorted(back.values(), key=lambda e: (-e["hits"], e["word"]))
counts = collections.Counter(w[:2] for w in words)
letters = sorted(set("".join(words)))
nums = [rng.random() for _ in range(200000)]
nums.sort()
text = " ".join(sorted(words, key=len)[:5000])
objs = [type("T", (), {"a": i})() for i in range(5000)]

print("entries", len(back))
print("json bytes", len(blob))
print("sha256", hashlib.sha256(blob.encode()).hexdigest())
print("top", [(e["word"], e["hits"]) for e in ranked[:5]])
print("common prefixes", counts.most_common(5))
print("letters", "".join(letters))
print("median", round(nums[len(nums) // 2], 9))
print("text", len(text), hashlib.md5(text.encode()).hexdigest())
print("small", sum(d["v"][2]["x"] for d in small))
print("objs", sum(o.a for o in objs))
