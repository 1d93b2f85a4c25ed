#!/usr/bin/env python3
"""The table of one scripts/bench-http.sh run: p50/p95/p99 latency and requests/s per case, and
throughput as a share of the bare-axum ceiling at the same concurrency. Given several runs, one
table of medians with the spread (min-max) over the runs.

    python3 scripts/bench_table.py docs/bench/<run>/
    python3 scripts/bench_table.py docs/bench/<run1>/ docs/bench/<run2>/ docs/bench/<run3>/
"""
import json
import pathlib
import re
import sys

def load(path):
    data = json.loads(path.read_text())
    lat = data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    return {
        "p50": lat["p50"] * 1000,
        "p95": lat["p95"] * 1000,
        "p99": lat["p99"] * 1000,
        "rps": data["summary"]["requestsPerSec"],
        "ok": ok,
        "other": sum(codes.values()) - ok,
        # In-flight requests cut off when the duration ends are not failures.
        "errors": sum(n for e, n in data.get("errorDistribution", {}).items() if "deadline" not in e),
    }


def single(run):
    cases = {}
    for f in sorted(run.glob("*-c*.json")):
        m = re.match(r"(.+)-c(\d+)\.json$", f.name)
        cases[(m.group(1), int(m.group(2)))] = load(f)

    print((run / "settings.txt").read_text().strip())
    print()
    print("| case | clients | p50 ms | p95 ms | p99 ms | req/s | % of ceiling | non-2xx | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, clients), r in sorted(cases.items(), key=lambda kv: (kv[0][0] == "ceiling", kv[0][0], kv[0][1])):
        ceiling = cases.get(("ceiling", clients))
        share = f"{100 * r['rps'] / ceiling['rps']:.1f}%" if ceiling and name != "ceiling" else ""
        print(
            f"| {name} | {clients} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['rps']:.0f} | {share} |"
            f" {r['other']} | {r['errors']} |"
        )
    print()
    for f in sorted(run.glob("*-process.txt")):
        store = f.name.removesuffix("-process.txt")
        v = dict(line.split() for line in f.read_text().split("\n") if line.strip())
        print(
            f"{store}: start-up {v['startup_ms']} ms (spawn to the first /health 200), RSS idle "
            f"{int(v['rss_idle_kb']) / 1024:.1f} MiB, peak under load {int(v['rss_peak_kb']) / 1024:.1f} MiB"
        )
    for line in (run / "wasm.txt").read_text().splitlines():
        kind, raw, gz, br = line.split()
        what = "wasm bundle" if kind == "wasm" else "lazily loaded wasm chunk"
        print(f"{what}: raw {int(raw):,} B, gzip -9 {int(gz):,} B, brotli (as served) {int(br):,} B")
    body = (run / "deployments-body-bytes.txt").read_text().strip()
    print(f"ceiling body: {body} bytes (the size of GET /api/v1/deployments?customer=...)")


def cases_of(run):
    out = {}
    for f in sorted(run.glob("*-c*.json")):
        m = re.match(r"(.+)-c(\d+)\.json$", f.name)
        out[(m.group(1), int(m.group(2)))] = load(f)
    return out


def summary(runs):
    import statistics

    all_cases = [cases_of(r) for r in runs]
    print(f"{len(runs)} runs: " + ", ".join(r.name for r in runs))
    print()
    print("| case | clients | p50 ms | p95 ms | p99 ms | req/s | % of ceiling |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    def fmt(values, digits):
        med = statistics.median(values)
        return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"

    keys = sorted(all_cases[0], key=lambda k: (k[0] == "ceiling", k[0], k[1]))
    for key in keys:
        rows = [c[key] for c in all_cases if key in c]
        shares = [100 * c[key]["rps"] / c[("ceiling", key[1])]["rps"] for c in all_cases
                  if key in c and ("ceiling", key[1]) in c and key[0] != "ceiling"]
        share = fmt(shares, 1) + " %" if shares else ""
        print(f"| {key[0]} | {key[1]} | {fmt([r['p50'] for r in rows], 2)} | {fmt([r['p95'] for r in rows], 2)} |"
              f" {fmt([r['p99'] for r in rows], 2)} | {fmt([r['rps'] for r in rows], 0)} | {share} |")
    print()
    for store in ("embedded", "embedded-uncached", "dynamodb"):
        procs = []
        for r in runs:
            f = r / f"{store}-process.txt"
            if f.exists():
                procs.append(dict(line.split() for line in f.read_text().split("\n") if line.strip()))
        if procs:
            print(f"{store}: start-up {fmt([int(p['startup_ms']) for p in procs], 0)} ms, RSS idle "
                  f"{fmt([int(p['rss_idle_kb']) / 1024 for p in procs], 1)} MiB, peak under load "
                  f"{fmt([int(p['rss_peak_kb']) / 1024 for p in procs], 1)} MiB")


if len(sys.argv) > 2:
    summary([pathlib.Path(a) for a in sys.argv[1:]])
else:
    single(pathlib.Path(sys.argv[1]))
