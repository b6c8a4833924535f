#!/usr/bin/env python3
"""`dedup_lines` against Dolma's Bloom-filter paragraph dedup, one pinned core.

Peer: `dolma dedupe` (AllenAI's toolkit, `pip install dolma`: a wheel with
its Rust deduper, src/deduper.rs) with a `paragraphs` config and a Bloom
filter, `processes: 1` (one thread in its pool).

Input: the corpus of benches/lm/dedup_lines_speed.py, built by its own
functions (imported): the visible text of trafilatura's test pages (menus,
footers and all) and every prose set in ../shared/data/prose, in Parquet
files of 2,000 documents; `--scale 8` is eight versions of it whose lines
carry a per-version letter tag, so they share no line. The same rows, in
the same order, are also written as gzipped JSONL in Dolma's layout
(`documents/part-NNNN.jsonl.gz`, {"id", "text", "source"}), which is what
Dolma reads. Timed, the whole process under `taskset -c 0` and
`/usr/bin/time -f %M` (peak RSS), best of `--repeat`:

  sluice  `sluice run spec.toml --workers 1 --force --quiet` with one
          `dedup_lines` step, unit = "line", method = "bloom",
          false_positive_rate = 0.0001; once from the Parquet files, once
          from the very same .jsonl.gz files Dolma reads. Output: the
          deduplicated documents as Parquet. Units seen and removed are the
          step's counters in stats.json.
  dolma   `dolma -c dedupe.yaml dedupe`, paragraphs split on "\\n" (so a
          paragraph is a line), skip_empty: true (blank and whitespace-only
          lines are not units, as in sluice; without it every repeated
          blank line is marked), min_length 0, a new Bloom filter sized by
          `estimated_doc_count` = the number of non-blank lines (counted
          here, beforehand: Dolma must be told) and
          `desired_false_positive_rate` 0.0001. Output: attribute files
          (per document its duplicate spans), not the deduplicated text:
          removing the spans is a second pass (`dolma mix`), not timed
          here. Units seen: the sum of its "Job total" log lines (RUST_LOG
          =info); units removed: the spans in its attribute files. The
          Bloom filter file is deleted before each run (Dolma would load
          and extend an existing one), and written by Dolma at the end.
          The time includes the CLI's Python start-up (imports, config
          parsing); a dry run (`dryrun: true`, same config: everything but
          the dedup) is timed too and printed below the table, with the
          best run minus it (an estimate of the Rust dedup alone).

MB/s is the documents' text bytes (UTF-8) over wall seconds, the same
numerator for every row.

What each removes differs by design, not only by the filters' false
positives:
  - sluice keys a line on CCNet's `normalize_for_dedup` (stripped, lower
    case, decimal digits to 0, control characters and CCNet's Unicode
    punctuation removed), so "Page 2 of 10" and "page 3 of 12" are one
    unit; Dolma hashes the raw line (ahash, k seeded hashers), so case,
    digits, and leading/trailing spaces make lines distinct. sluice
    therefore removes more.
  - Both keep the first occurrence in input order (files in name order,
    rows in order, lines in order, the same document included) and mark
    every later one: Dolma tests the filter, then inserts when absent, in
    one thread here; sluice runs one filter over all units in input order.
  - Dolma sizes its filter to a power of two bytes (at least 1 MiB) that
    meets the rate for the given count, with k = ceil(m/n ln 2); sluice
    sizes it from the units it counts itself. Both cut a unit seen for the
    first time with about the filter's rate, and Dolma's hash seeds are
    random per run, so its count can move by a unit or two between runs.
To show how much is normalisation, the script also counts in Python the
lines that an exact (no false positive) raw-string dedup would remove,
i.e. what Dolma removes with a perfect filter.

  target/web-venv/bin/python benches/lm/dedup_lines_peers.py [--scale 1] [--repeat 3]

Needs target/dolma-venv (python3 -m venv target/dolma-venv &&
target/dolma-venv/bin/pip install dolma) and target/release/sluice.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_lines_speed import base_docs, write_input  # noqa: E402  (same corpus, same builder)

REPO = Path(__file__).resolve().parents[2]
FPR = 0.0001


def timed(cmd, cpu, env=None):
    """Run pinned to one core under /usr/bin/time; (seconds, peak RSS MB, stderr)."""
    t0 = time.perf_counter()
    r = subprocess.run(["taskset", "-c", str(cpu), "/usr/bin/time", "-f", "%M", *map(str, cmd)],
                       capture_output=True, text=True, env=env)
    s = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return s, int(r.stderr.strip().splitlines()[-1]) / 1024, r.stderr


def write_dolma_docs(parquet_dir: Path, docs_dir: Path):
    """The same rows as the Parquet files, in the same order, as Dolma's gzipped JSONL.
    Returns (non-blank lines, lines an exact raw-string dedup removes)."""
    docs_dir.mkdir(parents=True)
    seen, units, dups = set(), 0, 0
    for f in sorted(parquet_dir.glob("*.parquet")):
        t = pq.read_table(f, columns=["id", "text"])
        with gzip.open(docs_dir / (f.stem + ".jsonl.gz"), "wt", encoding="utf-8", compresslevel=6) as out:
            for id_, text in zip(t.column("id").to_pylist(), t.column("text").to_pylist()):
                out.write(json.dumps({"id": id_, "text": text, "source": "bench"}, ensure_ascii=False) + "\n")
                if not text:
                    continue
                for p in text.split("\n"):
                    if not p.strip():
                        continue
                    units += 1
                    if p in seen:
                        dups += 1
                    else:
                        seen.add(p)
    return units, dups


def run_sluice(sluice, inp: Path, tmp: Path, cpu):
    out = tmp / "sluice-out"
    spec = tmp / "sluice.toml"
    spec.write_text(f'[input]\npaths = ["{inp}"]\n\n[[step]]\nop = "dedup_lines"\nunit = "line"\n'
                    f'method = "bloom"\nfalse_positive_rate = {FPR}\n\n[output]\ndir = "{out}"\n')
    s, rss, _ = timed([sluice, "run", spec, "--workers", "1", "--force", "--quiet"], cpu)
    st = json.loads((out / "stats.json").read_text())
    c = next(x["counters"] for x in st["steps"] if x.get("counters") and "units_removed" in x["counters"])
    return s, rss, c["units"], c["units_removed"]


def dolma_config(root: Path, units: int, dryrun=False):
    cfg = {
        "documents": [str(root / "documents" / "*.jsonl.gz")],
        "work_dir": {"input": str(root / "work-in"), "output": str(root / "work-out")},
        "dedupe": {
            "name": "dedupe_para",
            "paragraphs": {"attribute_name": "dedupe_para", "paragraph_separator": "\n"},
            "skip_empty": True,
            "min_length": 0,
        },
        "bloom_filter": {
            "file": str(root / "bloom.bin"),
            "read_only": False,
            "estimated_doc_count": units,
            "desired_false_positive_rate": FPR,
        },
        "processes": 1,
        "dryrun": dryrun,
    }
    path = root / ("dryrun.yaml" if dryrun else "dedupe.yaml")
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    return path


def clean_dolma(root: Path):
    for p in ["attributes", "work-in", "work-out"]:
        shutil.rmtree(root / p, ignore_errors=True)
    (root / "bloom.bin").unlink(missing_ok=True)


def run_dolma(dolma, root: Path, cfg: Path, cpu):
    clean_dolma(root)
    env = dict(os.environ, RUST_LOG="info")
    s, rss, err = timed([dolma, "-c", cfg, "dedupe"], cpu, env)
    totals = [int(m) for m in re.findall(r"Num processed: \d+ / Job total: (\d+)", err)]
    removed = 0
    for f in sorted((root / "attributes").rglob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                removed += len(json.loads(line)["attributes"].get("dedupe_para", []))
    size = re.search(r"Bloom filter will have size (\d+), (\d+) hashers", err)
    return s, rss, (sum(totals) if totals else None), removed, (size.groups() if size else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1, help="1 = the corpus once; 8 = eight tagged copies")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, best time (and its RSS) kept")
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--sluice", type=Path, default=REPO / "target/release/sluice")
    ap.add_argument("--dolma", type=Path, default=REPO / "target/dolma-venv/bin/dolma")
    a = ap.parse_args()
    ver = subprocess.run([a.dolma.parent / "python", "-c", "import importlib.metadata as m; print(m.version('dolma'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pq_dir = tmp / "parquet"
        mb = write_input(pq_dir, base_docs(), a.scale) / 1e6
        root = tmp / "dolma"
        units, raw_dups = write_dolma_docs(pq_dir, root / "documents")
        cfg = dolma_config(root, units)
        dry = dolma_config(root, units, dryrun=True)
        rows = {}

        def keep(key, res):
            if key not in rows or res[0] < rows[key][0]:
                rows[key] = res

        dry_s = None
        for _ in range(a.repeat):
            keep(("sluice", "bloom, line, Parquet in"), run_sluice(a.sluice, pq_dir, tmp, a.cpu))
            keep(("sluice", "bloom, line, .jsonl.gz in"), run_sluice(a.sluice, root / "documents", tmp, a.cpu))
            s, rss, seen, removed, size = run_dolma(a.dolma, root, cfg, a.cpu)
            keep((f"dolma {ver}", "bloom, paragraphs (= lines), .jsonl.gz in"), (s, rss, seen, removed))
            clean_dolma(root)
            d = timed([a.dolma, "-c", dry, "dedupe"], a.cpu)[0]
            dry_s = d if dry_s is None else min(dry_s, d)

    print(f"Input: {mb:.1f} MB of text, scale {a.scale}, best of {a.repeat}, one core (taskset -c {a.cpu}).\n")
    print("| tool | method | s | MB/s | peak RSS MB | units seen | units removed |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (tool, method), (s, rss, seen, removed) in rows.items():
        seen_s = f"{seen:,}" if seen is not None else "?"
        print(f"| {tool} | {method} | {s:.2f} | {mb / s:.1f} | {rss:.0f} | {seen_s} | {removed:,} |")
    print(f"\nNon-blank lines (counted in Python, Dolma's estimated_doc_count): {units:,}")
    print(f"Lines an exact raw-string dedup removes (Dolma with no false positive): {raw_dups:,}")
    if size:
        print(f"Dolma's Bloom filter: {int(size[0]):,} bytes, {size[1]} hashes")
    print(f"Dolma CLI dry run (start-up, config, glob; no dedup): {dry_s:.2f} s")
    core = next(v[0] for (t, _), v in rows.items() if t.startswith("dolma")) - dry_s
    print(f"Dolma's best run minus its dry run (the dedup itself, an estimate): {core:.2f} s, {mb / core:.1f} MB/s")


if __name__ == "__main__":
    main()
