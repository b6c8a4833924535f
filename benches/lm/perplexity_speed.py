#!/usr/bin/env python3
"""`perplexity` against KenLM's own Python module (PyPI kenlm 0.3.0), one
pinned core, same model, same held-out documents.

A 5-gram model is trained with KenLM's lmplz (`.ci/kenlm` builds it) on
80% of real text: People's Daily 1998 paragraphs as space-separated
characters and ABC News articles as lower-case words (../shared/data/prose),
and made a probing binary with build_binary (CCNet's format). The other 20%
is scored:

  kenlm    in-process: per non-blank line model.score(line) and
           len(line.split()) + 1 tokens (CCNet's DocLM); only the scoring
           loop is timed (model loading and JSON/Parquet reading are not).
  sluice   `sluice run` with one `perplexity` step, --workers 1, the whole
           process timed (start-up, model mapping, Parquet in and out).

Both must agree (largest |log10 ppl| difference printed). Prints documents
and tokens per second for each and the ratio.

  target/py-kenlm/bin/pip install pyarrow
  target/py-kenlm/bin/python benches/lm/perplexity_speed.py [--repeat 3] [--scale 10]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kenlm
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "prose"


def docs():
    out = []
    zh = pq.read_table(SHARED / "zh_peoples_daily_1998.parquet").column("text").to_pylist()
    for i in range(0, len(zh), 8):
        lines = [" ".join(c for c in t if not c.isspace()) for t in zh[i:i + 8]]
        out.append((f"zh-{i}", "\n".join(l for l in lines if l)))
    en = pq.read_table(SHARED / "en_abc_news.parquet").column("text").to_pylist()
    for i, t in enumerate(en):
        lines = [" ".join(l.lower().split()) for l in t.split("\n")]
        out.append((f"en-{i}", "\n".join(l for l in lines if l)))
    return [d for d in out if d[1].strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--scale", type=int, default=1,
                    help="score the held-out documents this many times over (more work per start-up)")
    ap.add_argument("--sluice", type=Path, default=REPO / "target/release/sluice")
    a = ap.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    bin_dir = REPO / "target/kenlm/bin"
    all_docs = docs()
    held = [d for i, d in enumerate(all_docs) if i % 5 == 0]
    train = [d for i, d in enumerate(all_docs) if i % 5 != 0]
    held = [(f"{id_}#{k}", t) for k in range(a.scale) for id_, t in held]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train.txt").write_text("".join(t + "\n" for _, t in train))
        with open(tmp / "train.txt") as fin, open(tmp / "lm.arpa", "w") as fout:
            subprocess.run([bin_dir / "lmplz", "-o", "5", "-S", "1G", "--discount_fallback",
                            "--skip_symbols", "-T", tmp], stdin=fin, stdout=fout,
                           stderr=subprocess.DEVNULL, check=True)
        subprocess.run([bin_dir / "build_binary", tmp / "lm.arpa", tmp / "lm.binary"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        tokens = sum(len(l.split()) + 1 for _, t in held for l in t.split("\n") if l.strip())
        model = kenlm.Model(str(tmp / "lm.binary"))
        best_k = math.inf
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            ref = {}
            for id_, text in held:
                lp, n = 0.0, 0
                for l in text.split("\n"):
                    if not l.strip():
                        continue
                    lp += model.score(l, bos=True, eos=True)
                    n += len(l.split()) + 1
                ref[id_] = -lp / n
            best_k = min(best_k, time.perf_counter() - t0)
        (tmp / "in").mkdir()
        pq.write_table(pa.table({"id": [d[0] for d in held], "text": [d[1] for d in held]}),
                       tmp / "in" / "held.parquet")
        spec = tmp / "spec.toml"
        spec.write_text(f'[input]\npaths = ["{tmp / "in"}"]\n\n[[step]]\nop = "perplexity"\n'
                        f'model = "{tmp / "lm.binary"}"\n\n[output]\ndir = "{tmp / "out"}"\n')
        best_s = math.inf
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            subprocess.run([a.sluice, "run", spec, "--workers", "1", "--force", "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
            best_s = min(best_s, time.perf_counter() - t0)
        worst = 0.0
        for f in sorted((tmp / "out").glob("part-*.parquet")):
            t = pq.read_table(f, columns=["id", "perplexity"]).to_pylist()
            for r in t:
                worst = max(worst, abs(math.log10(r["perplexity"]) - ref[r["id"]]))
        print(f"model: 5-gram, {os.path.getsize(tmp / 'lm.binary') / 1e6:.1f} MB probing binary; "
              f"held out: {len(held)} documents, {tokens} tokens; largest difference {worst:.1e}")
        print(f"| tool | s | docs/s | tokens/s |\n|---|---:|---:|---:|")
        for name, s in [("kenlm 0.3.0 (scoring loop only)", best_k), ("sluice (whole process)", best_s)]:
            print(f"| {name} | {s:.2f} | {len(held) / s:.0f} | {tokens / s:.0f} |")
        print(f"sluice / kenlm: {best_k / best_s:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
