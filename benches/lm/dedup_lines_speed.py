#!/usr/bin/env python3
"""`dedup_lines` throughput and memory, one worker, at 1x and 8x input.

The input is real text with its own repeats: the visible text of
trafilatura's test pages (menus, footers and all:
../shared/data/web/trafilatura_pages.parquet) and every prose set in
../shared/data/prose (news, docs, speeches, People's Daily, reviews), cut
into files of 2,000 documents. The 8x input is eight versions of it, each
line of version k prefixed with a tag of letters (`vav`, `vbv`, …: digits
would normalise to the same `0`) so that the versions share no line:
eight times the units to hash, sort and remember, with the same repeats
within each version. Both methods (exact, bloom) and both units (line,
paragraph) are run with `sluice run --workers 1 --force`, pinned to one
core, under /usr/bin/time; prints input MB, seconds, MB/s, peak RSS and
what was cut (from stats.json).

  target/py-kenlm/bin/python benches/lm/dedup_lines_speed.py [--scales 1 8]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def base_docs():
    docs = []
    for f in [SHARED / "web/trafilatura_pages.parquet", *sorted((SHARED / "prose").glob("*.parquet"))]:
        for t in pq.read_table(f, columns=["text"]).column("text").to_pylist():
            if t and t.strip():
                docs.append(t)
    return docs


def write_input(dir_: Path, docs, scale):
    dir_.mkdir(parents=True)
    rows, n = [], 0
    for k in range(scale):
        for t in docs:
            text = t if scale == 1 else "\n".join(f"v{'abcdefghijklmnopqrstuvwxyz'[k]}v {l}" if l.strip() else l for l in t.split("\n"))
            rows.append((f"d{n}", text))
            n += 1
    size = 0
    for i in range(0, len(rows), 2000):
        part = rows[i:i + 2000]
        pq.write_table(pa.table({"id": [r[0] for r in part], "text": [r[1] for r in part]}),
                       dir_ / f"part-{i // 2000:04}.parquet")
        size += sum(len(r[1].encode()) for r in part)
    return size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--sluice", type=Path, default=REPO / "target/release/sluice")
    a = ap.parse_args()
    docs = base_docs()
    print("| input | MB | unit | method | s | MB/s | peak RSS MB | units | cut | docs dropped |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for scale in a.scales:
            inp = tmp / f"in-{scale}"
            mb = write_input(inp, docs, scale) / 1e6
            for unit in ["line", "paragraph"]:
                for method in ["exact", "bloom"]:
                    out = tmp / "out"
                    spec = tmp / "spec.toml"
                    spec.write_text(f'[input]\npaths = ["{inp}"]\n\n[[step]]\nop = "dedup_lines"\n'
                                    f'unit = "{unit}"\nmethod = "{method}"\n\n[output]\ndir = "{out}"\n')
                    t0 = time.perf_counter()
                    r = subprocess.run(["taskset", "-c", str(a.cpu), "/usr/bin/time", "-f", "%M",
                                        a.sluice, "run", spec, "--workers", "1", "--force", "--quiet"],
                                       check=True, capture_output=True, text=True)
                    s = time.perf_counter() - t0
                    rss = int(r.stderr.strip().splitlines()[-1]) / 1024
                    st = json.loads((out / "stats.json").read_text())
                    c = st["steps"][1]["counters"]
                    dropped = sum(v["docs"] for v in st["dropped"].values())
                    print(f"| {scale}x | {mb:.0f} | {unit} | {method} | {s:.2f} | {mb / s:.1f} | {rss:.0f} "
                          f"| {c['units']} | {c['units_removed']} | {dropped} |", flush=True)


if __name__ == "__main__":
    main()
