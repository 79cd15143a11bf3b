"""Tables (markdown, also printed) and the PNG chart from a results dictionary."""
import os

from .allocators import BASELINE


def _fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def cost_ratio(metric, ratio):
    """A ratio to the baseline where lower is better whatever the metric (time, or 1/throughput)."""
    if ratio is None:
        return None
    return 1.0 / ratio if metric["higher_better"] and ratio else ratio


def matrix_table(results):
    """Median (ratio to jemalloc, pair by pair) ±half-range in % of the median, per workload row."""
    allocs = results["allocators"]
    lines = ["| workload | unit | " + " | ".join(allocs) + " |",
             "|---|---|" + "---:|" * len(allocs)]
    for row in results["matrix"]:
        cells = []
        for a in allocs:
            c = row["cells"].get(a, {})
            if not c.get("n"):
                cells.append("fail" if c.get("errors") else "—")
                continue
            med = c["median"] * row["scale"]
            spread = 50.0 * (c["max"] - c["min"]) / c["median"] if c["median"] else 0
            txt = _fmt(med)
            if a != BASELINE and c.get("ratio") is not None:
                txt += " (%.2f)" % c["ratio"]
            txt += " ±%.0f%%" % spread
            if c.get("notes"):
                txt += " ⚠"
            cells.append(txt)
        arrow = "↑" if row["higher_better"] else "↓"
        lines.append("| %s | %s %s | %s |" % (row["label"], row["unit"], arrow, " | ".join(cells)))
    return "\n".join(lines)


def rss_table(results):
    allocs = results["allocators"]
    pers = [a for a in allocs if a.startswith("persist")]
    lines = ["| workload | " + " | ".join(allocs) + " | " + " | ".join("heap file du, " + a for a in pers) + " |",
             "|---|" + "---:|" * (len(allocs) + len(pers))]
    seen = set()
    for row in results["matrix"]:
        if row["workload"] in seen:
            continue
        seen.add(row["workload"])
        cells = []
        for a in allocs:
            r = row["rss"].get(a, {})
            if not r.get("median_kb"):
                cells.append("—")
                continue
            txt = "%.1f" % (r["median_kb"] / 1024)
            if a != BASELINE and r.get("ratio") is not None:
                txt += " (%.2f)" % r["ratio"]
            cells.append(txt)
        for a in pers:
            hb = row["rss"].get(a, {}).get("heap_bytes")
            cells.append("%.1f" % (hb / 2**20) if hb is not None else "—")
        lines.append("| %s | %s |" % (row["workload"], " | ".join(cells)))
    return "\n".join(lines)


def micro_table(micro):
    if "error" in micro:
        return micro["error"]
    allocs = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "persist-shm"]
    lines = ["| benchmark (ns/op) | " + " | ".join(allocs) + " | persist handle API |",
             "|---|" + "---:|" * (len(allocs) + 1)]
    for name in sorted(n for n in micro if "<Sys>" in n):
        pname = name.replace("<Sys>", "<Persist>")
        cells = [_fmt(micro[name].get(a)) for a in allocs]
        handle = micro.get(pname, {})
        hv = sorted(handle.values())
        cells.append(_fmt(hv[len(hv) // 2]) if hv else "—")
        lines.append("| %s | %s |" % (name.replace("<Sys>", ""), " | ".join(cells)))
    return "\n".join(lines)


def restart_table(rows):
    lines = ["| heap MiB | ended by | build s | first restart ms (ratio) | first restart RSS MiB | "
             "restarts: median ms ±half-range (ratio) | restarts: peak RSS MiB | file du MiB |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append("| %d | %s | error: %s |" % (r["mib"], r["close"], r["error"]))
            continue
        lines.append("| %d | %s | %s | %s (%s) | %s | %s ±%s (%s) | %s | %s |" % (
            r["mib"], "exit" if r["close"] == "clean" else "kill -9", _fmt(r.get("build_ms", 0) / 1e3),
            _fmt(r.get("first_ms")), _fmt(r.get("first_ratio")), _fmt((r.get("first_rss_kb") or 0) / 1024),
            _fmt(r.get("median_ms")), _fmt(r.get("spread_ms")), _fmt(r.get("ratio")),
            _fmt((r.get("rss_kb") or 0) / 1024), _fmt((r.get("file_du") or 0) / 2**20)))
    return "\n".join(lines)


def reopen_table(rows):
    lines = ["| heap (MiB live) | segments | clean close, ASLR on: open ms | clean, ASLR off: open ms | "
             "clean, ASLR off: first use ms | kill -9: open ms | kill -9: first use ms | kill -9: discover rest ms | "
             "kill -9: full walk ms | kill -9: open + first use + discover, ms/GiB | relocation: ms | "
             "words rewritten | relocation GB/s of live data |",
             "|---:|" + "---:|" * 12]
    for r in rows:
        c, n, k, rl = r.get("clean", {}), r.get("clean-noaslr", {}), r.get("kill", {}), r.get("relocate", {})
        per_gib = None
        if "open_ms" in k:
            per_gib = (k["open_ms"] + k["first_use_ms"] + k["discover_ms"]) / (r["mib"] / 1024.0)
        lines.append("| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["mib"], k.get("segments", c.get("segments", 0)), _fmt(c.get("open_ms")), _fmt(n.get("open_ms")),
            _fmt(n.get("first_use_ms")), _fmt(k.get("open_ms")), _fmt(k.get("first_use_ms")),
            _fmt(k.get("discover_ms")), _fmt(k.get("walk_ms")), _fmt(per_gib), _fmt(rl.get("relocate_ms")),
            "%d" % rl["relocated_words"] if "relocated_words" in rl else "—", _fmt(rl.get("gb_per_s"))))
        for x in (c, n, k, rl):
            if "error" in x:
                lines.append("| | error: %s |" % x["error"])
    return "\n".join(lines)


def forklat_table(fl):
    allocs = []
    for d in fl.values():
        allocs += [a for a in d if a not in allocs]
    lines = ["| live heap MiB | " + " | ".join("%s fork ms / child ready ms" % a for a in allocs) + " |",
             "|---:|" + "---:|" * len(allocs)]
    for mib, d in sorted(fl.items(), key=lambda kv: int(kv[0])):
        cells = ["%s / %s" % (_fmt(d[a].get("fork_ms")), _fmt(d[a].get("ready_ms"))) if a in d else "—" for a in allocs]
        lines.append("| %s | %s |" % (mib, " | ".join(cells)))
    return "\n".join(lines)


def heapsize_table(hs):
    lines = ["| file system | phase | live requested MiB | live usable MiB | file size MiB | du MiB | du / live | du / peak live |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label, v in hs.items():
        if "error" in v:
            lines.append("| %s | error: %s |" % (label, v["error"]))
            continue
        peak = v.get("peak_requested", 0)
        for ph in ("fill", "half", "refill", "drain"):
            req, du = v.get(ph + "_requested", 0), v.get(ph + "_du", 0)
            lines.append("| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s |" % (
                label, ph, req / 2**20, v.get(ph + "_usable", 0) / 2**20, v.get(ph + "_file", 0) / 2**20,
                du / 2**20, _fmt(du / req) if req else "—", _fmt(du / peak) if peak else "—"))
    return "\n".join(lines)


def peers_table(peers):
    phases = ["create_s", "insert_s", "close_s", "open_s", "lookup_s", "close2_s", "total_s"]
    base = peers.get("libpersist", {}).get("total_s")
    lines = ["| peer | create s | insert 1M s | close s | reopen s | look up 1M s | close s | total s | file du MiB | total / libpersist |",
             "|---|" + "---:|" * 9]
    for label, v in peers.items():
        if "error" in v:
            lines.append("| %s | error: %s |" % (label, v["error"]))
            continue
        cells = [_fmt(v.get(p)) for p in phases]
        cells.append("%.1f" % (v["file_bytes"] / 2**20) if "file_bytes" in v else "—")
        cells.append("%.2f" % (v["total_s"] / base) if base else "—")
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    return "\n".join(lines)


def sampling_table(sampling):
    lines = ["| workload | metric | PERSIST_SITES off | on | slowdown |", "|---|---|---|---|---|"]
    for name, r in sampling.get("rows", {}).items():
        if "slowdown" not in r:
            lines.append("| %s | | | | error: %s |" % (name, r.get("error", "?")))
            continue
        lines.append("| %s | %s | %s | %s | %+.1f%% |" % (name, r["metric"], _fmt(r["off"]), _fmt(r["on"]),
                                                       100 * r["slowdown"]))
    return "\n".join(lines)


def _minor_label(v, _):
    """Label the 2s and 5s of each decade on a log axis, nothing else (no crowding)."""
    import math
    lead = round(v / 10 ** math.floor(math.log10(v)), 3)
    return "%g" % v if lead in (2.0, 5.0) else ""


def chart(results, path):
    """Two panels: cost relative to jemalloc (time ratio, or inverse throughput ratio; lower is
    better; log scale) and peak RSS relative to jemalloc."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    allocs = [a for a in results["allocators"] if a != BASELINE]
    rows = results["matrix"]
    labels = [r["label"] for r in rows]
    n = len(rows)
    fig, axes = plt.subplots(1, 2, figsize=(15, 0.42 * n + 2.2), sharey=True)
    h = 0.8 / len(allocs)
    colors = {"glibc": "#999999", "mimalloc": "#4c72b0", "tcmalloc": "#55a868",
              "persist-shm": "#c44e52", "persist-disk": "#dd8452"}
    for i, a in enumerate(allocs):
        ys = [k + (i - (len(allocs) - 1) / 2) * h for k in range(n)]
        speed = [cost_ratio(r, r["cells"].get(a, {}).get("ratio")) or 0 for r in rows]
        mem = [r["rss"].get(a, {}).get("ratio") or 0 for r in rows]
        axes[0].barh(ys, speed, height=h, label=a, color=colors.get(a))
        axes[1].barh(ys, mem, height=h, label=a, color=colors.get(a))
    for ax, title in ((axes[0], "time relative to jemalloc (throughput rows inverted) — lower is better"),
                      (axes[1], "peak RSS relative to jemalloc — lower is better")):
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[0].set_yticks(range(n))
    axes[0].set_yticklabels(labels, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("libpersist benchmark — %s — %s" % (results["date"], results["machine"]), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
