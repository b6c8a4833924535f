#!/usr/bin/env python3
"""`sluice train-lm` against KenLM's `lmplz` (`.ci/kenlm` builds it): the same
sentences, the same order, pruning and memory, the same cores; wall time,
peak memory and whether both wrote the same model.

The text is real prose from ../shared/data/prose: ABC News articles
(`--corpus en`), People's Daily 1998 paragraphs (`zh`) or both, every
document repeated `--scale` times (pure repetition: more work to count and
sort, the same vocabulary and distinct n-grams; fine for timing, not a
stand-in for a K-times larger corpus). Repeated K >= 3 times, no n-gram of
the highest order is seen once or twice, so Kneser-Ney's discounts for it
cannot be estimated (both tools stop): with --scale above 1 both get
lmplz's fixed fallback discounts 0.5 1 1.5 for that case
(`--discount_fallback`, `discount_fallback = [0.5, 1.0, 1.5]`), as they
do with `--discount-fallback`.

  sluice   `sluice train-lm spec.toml --workers <number of --cpus> -q` on a
           Parquet file (id, text), its default tokenizer: each line a
           sentence, words split on ASCII whitespace, each character of an
           unspaced script (Han, kana, Thai, …) a word, `<s>` `</s>` `<unk>`
           skipped, `memory_budget = --memory`, `binary = false` (the
           ARPA file only, as lmplz writes).
  lmplz    `lmplz -o N [--prune ...] -S --memory -T tmp < text > model.arpa`
           on the same sentences tokenized here exactly that way (one
           non-empty line per sentence, words joined by single spaces).
           lmplz runs its pipeline on threads of its own.

Both run under `taskset -c --cpus` and /usr/bin/time (peak RSS of the
process), one run at a time, `--repeat` times each: the best wall time and
the largest peak RSS are printed, with tokens (words, without </s>) per
second, lmplz/sluice time, and whether the two model.arpa files are
byte-identical (cmp; else how many lines differ). Writing the inputs is not
timed.

  target/web-venv/bin/python benches/lm/train_lm_speed.py [--corpus en|zh|both]
      [--scale 1] [--order 5] [--prune 0 0 1] [--memory 1GiB] [--cpus 0,1]
      [--repeat 3] [--sluice target/release/sluice]
"""
import argparse
import filecmp
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "prose"
CORPORA = {"en": "en_abc_news.parquet", "zh": "zh_peoples_daily_1998.parquet"}
SEP = re.compile(r"[\t\n\x0b\x0c\r ]+")  # KenLM's separators, not str.split()'s
UNSPACED = re.compile("[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                      "\U00020000-\U0003134f\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")
RESERVED = {"<s>", "</s>", "<unk>"}


def sentences(text):
    """The sentences sluice's default tokenizer trains on, as lmplz reads them."""
    for line in text.split("\n"):
        words = [w for w in SEP.split(UNSPACED.sub(r" \g<0> ", line)) if w and w not in RESERVED]
        if words:
            yield " ".join(words)


def lmplz_size(s):
    """"1GiB" -> "1024M" (lmplz's units are powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+)\s*(KiB|MiB|GiB)\s*", s)
    if not m:
        sys.exit(f"--memory {s!r}: give a whole number of KiB, MiB or GiB (e.g. 1GiB)")
    return m.group(1) + m.group(2)[0]


def timed(cmd, rss_file, **kw):
    t0 = time.perf_counter()
    r = subprocess.run(["taskset", "-c", CPUS, "/usr/bin/time", "-f", "%M", "-o", rss_file,
                        *map(str, cmd)], stderr=subprocess.PIPE, **kw)
    s = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{Path(cmd[0]).name} failed ({r.returncode}):\n" + r.stderr.decode(errors="replace")[-2000:])
    return s, int(Path(rss_file).read_text().split()[-1]) / 1024


def main():
    global CPUS
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=["en", "zh", "both"], default="both")
    ap.add_argument("--scale", type=int, default=1, help="repeat every document this many times")
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--prune", type=int, nargs="+", default=[], help="as lmplz's --prune, e.g. 0 0 1")
    ap.add_argument("--memory", default="1GiB", help="sluice's memory_budget and lmplz's -S")
    ap.add_argument("--discount-fallback", action="store_true",
                    help="fixed discounts where the estimate fails (always on with --scale > 1)")
    ap.add_argument("--cpus", default="0,1", help="taskset -c list for both tools")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sluice", type=Path, default=REPO / "target/release/sluice")
    ap.add_argument("--lmplz", type=Path, default=REPO / "target/kenlm/bin/lmplz")
    a = ap.parse_args()
    CPUS = a.cpus
    ncpu = int(subprocess.run(["taskset", "-c", a.cpus, "nproc"], check=True, capture_output=True,
                              text=True).stdout)  # cpus in the list (ranges like 0-3 allowed)
    names = ["en", "zh"] if a.corpus == "both" else [a.corpus]
    texts = [t for n in names for t in pq.read_table(SHARED / CORPORA[n], columns=["text"])
             .column("text").to_pylist() if t]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        docs = [t for _ in range(a.scale) for t in texts]
        pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(docs))], "text": docs}),
                       tmp / "train.parquet")
        tokens = sents = 0
        with open(tmp / "train.txt", "w", encoding="utf-8") as f:
            for t in docs:
                for s in sentences(t):
                    f.write(s + "\n")
                    sents += 1
                    tokens += s.count(" ") + 1
        fallback = a.discount_fallback or a.scale > 1
        lm = f"order = {a.order}\nmemory_budget = \"{a.memory}\"\n"
        lm += f"prune = [{', '.join(map(str, a.prune))}]\n" if a.prune else ""
        lm += "discount_fallback = [0.5, 1.0, 1.5]\n" if fallback else ""
        (tmp / "spec.toml").write_text(f'[input]\npaths = ["{tmp / "train.parquet"}"]\n\n[lm]\n{lm}\n'
                                       f'[output]\ndir = "{tmp / "sluice"}"\nbinary = false\n')
        lm_args = [a.lmplz, "-o", a.order, *(["--prune", *a.prune] if a.prune else []),
                   "-S", lmplz_size(a.memory), "-T", f"{tmp}/",
                   *(["--discount_fallback"] if fallback else [])]
        res = {}
        for _ in range(a.repeat):
            s, rss = timed([a.sluice, "train-lm", tmp / "spec.toml", "--workers", ncpu, "-q"],
                           tmp / "rss", stdout=subprocess.DEVNULL)
            best, peak = res.get("sluice", (math.inf, 0))
            res["sluice"] = (min(best, s), max(peak, rss))
            with open(tmp / "train.txt", "rb") as fin, open(tmp / "lmplz.arpa", "wb") as fout:
                s, rss = timed(lm_args, tmp / "rss", stdin=fin, stdout=fout)
            best, peak = res.get("lmplz", (math.inf, 0))
            res["lmplz"] = (min(best, s), max(peak, rss))
        rep = json.loads((tmp / "sluice" / "report.json").read_text())
        ours, theirs = tmp / "sluice" / "model.arpa", tmp / "lmplz.arpa"
        same = filecmp.cmp(ours, theirs, shallow=False)
        if not same:
            with open(ours, "rb") as x, open(theirs, "rb") as y:
                lx, ly = x.read().split(b"\n"), y.read().split(b"\n")
            ndiff = sum(p != q for p, q in zip(lx, ly)) + abs(len(lx) - len(ly))
        ngrams = sum(o["ngrams"] for o in rep["orders"])
        print(f"corpus: {a.corpus} x{a.scale}, {len(docs)} documents, {sents} sentences, {tokens} tokens "
              f"(sluice counted {rep['training']['tokens']}); order {a.order}, prune {a.prune or 'none'}, "
              f"{'fallback discounts, ' if fallback else ''}memory {a.memory}, cpus {a.cpus} (sluice --workers {ncpu}); {ngrams} n-grams, "
              f"ARPA {ours.stat().st_size / 1e6:.1f} MB; best of {a.repeat}")
        print("| tool | s | tokens/s | peak RSS MB |\n|---|---:|---:|---:|")
        for name in ["lmplz", "sluice"]:
            s, rss = res[name]
            print(f"| {name} | {s:.2f} | {tokens / s:.0f} | {rss:.0f} |")
        print(f"lmplz / sluice time: {res['lmplz'][0] / res['sluice'][0]:.2f}x")
        print("models identical: " + ("yes" if same else f"no ({ndiff} lines differ)"))
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
