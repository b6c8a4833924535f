#!/usr/bin/env python3
"""`perplexity` against KenLM's own Python module (PyPI kenlm 0.3.0), one
pinned core, same model, same held-out documents. Two modes.

--mode words (default): the scoring alone. A 5-gram model is trained with
KenLM's lmplz (`.ci/kenlm` builds it) on 80% of real text: People's Daily
1998 paragraphs as space-separated characters and ABC News articles as
lower-case words (../shared/data/prose), and made a probing binary with
build_binary (CCNet's format). The other 20% is scored:

  kenlm    in-process: per non-blank line model.score(line) and
           len(line.split()) + 1 tokens (CCNet's DocLM); only the scoring
           loop is timed (model loading and JSON/Parquet reading are not).
  sluice   `sluice run` with one `perplexity` step, --workers 1, the whole
           process timed (start-up, model mapping, Parquet in and out).

--mode ccnet: CCNet's document score end to end, from raw text. The same
sources, kept as they are (People's Daily: 8 paragraphs a document, one a
line, not split into characters; ABC News: each article's own lines), the
same 80/20 split. The training lines are normalised by cc_net's
text_normalizer.normalize, a SentencePiece unigram model is trained on them
(the sentencepiece module: 8,000 pieces, character coverage 0.9995, as
tests/py/spm_pieces.py and CCNet), and the 5-gram is trained by lmplz on
their pieces joined by spaces, then build_binary. The held-out 20% is
scored:

  python   as cc_net's DocLM and Data-Juicer's perplexity_filter run it:
           per non-blank line normalize(line), sp.encode_as_pieces,
           model.score(" ".join(pieces)), len(pieces) + 1 tokens (lines that
           normalise, or encode, to nothing skipped). Timed twice: the
           whole loop (normalize + encode + score), and the model.score
           calls alone on lines encoded beforehand, outside the timer.
  sluice   `sluice run` with one `perplexity` step, normalize = "ccnet" and
           tokenizer = the .model, --workers 1, the whole process timed.

sluice segments with its own SentencePiece code, which on some ties
(such as a run of digits, all 0 after normalize, cut into the same pieces
in another order) picks another segmentation than sentencepiece, which
the 5-gram scores differently; so some documents differ, and the largest
|log10 ppl| difference and the number (and names) of the documents
differing by more than 1e-4 are printed. Documents with no line left are
left out on both sides.

Both modes print the largest |log10 ppl| difference, documents and tokens
per second for each, and the ratios (> 1: sluice faster).

  target/py-kenlm/bin/pip install pyarrow sentencepiece
  target/py-kenlm/bin/python benches/lm/perplexity_speed.py [--mode words|ccnet] [--repeat 3] [--scale 10]
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
BIN = REPO / "target/kenlm/bin"

# cc_net's text_normalizer.normalize, as the fixture's maker copies it.
sys.path.insert(0, str(REPO / "fixtures"))
from make_kenlm_fixture import normalize  # noqa: E402


def held_and_train(all_docs, scale):
    """Every fifth document held out (repeated `scale` times, renamed), the
    rest to train on."""
    held = [d for i, d in enumerate(all_docs) if i % 5 == 0]
    train = [d for i, d in enumerate(all_docs) if i % 5 != 0]
    return [(f"{id_}#{k}", t) for k in range(scale) for id_, t in held], train


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


def raw_docs():
    """docs()'s documents with their text as it is."""
    out = []
    zh = pq.read_table(SHARED / "zh_peoples_daily_1998.parquet").column("text").to_pylist()
    for i in range(0, len(zh), 8):
        out.append((f"zh-{i}", "\n".join(t for t in zh[i:i + 8] if t.strip())))
    en = pq.read_table(SHARED / "en_abc_news.parquet").column("text").to_pylist()
    for i, t in enumerate(en):
        out.append((f"en-{i}", t))
    return [d for d in out if d[1].strip()]


def lmplz(tmp, train_lines):
    (tmp / "train.txt").write_text("".join(l + "\n" for l in train_lines))
    with open(tmp / "train.txt") as fin, open(tmp / "lm.arpa", "w") as fout:
        subprocess.run([BIN / "lmplz", "-o", "5", "-S", "1G", "--discount_fallback",
                        "--skip_symbols", "-T", tmp], stdin=fin, stdout=fout,
                       stderr=subprocess.DEVNULL, check=True)
    subprocess.run([BIN / "build_binary", tmp / "lm.arpa", tmp / "lm.binary"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return kenlm.Model(str(tmp / "lm.binary"))


def timed(repeat, f):
    """(best seconds, f's last result)."""
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_sluice(a, tmp, held, extra):
    """Best whole-process seconds of `sluice run`, best seconds of the same
    run with no step (reading and writing the same Parquet: the floor under
    any scoring), and {id: log10 ppl or None}."""
    (tmp / "in").mkdir()
    pq.write_table(pa.table({"id": [d[0] for d in held], "text": [d[1] for d in held]}),
                   tmp / "in" / "held.parquet")
    spec = tmp / "spec.toml"
    spec.write_text(f'[input]\npaths = ["{tmp / "in"}"]\n\n[[step]]\nop = "perplexity"\n'
                    f'model = "{tmp / "lm.binary"}"\n{extra}\n[output]\ndir = "{tmp / "out"}"\n')
    best, _ = timed(a.repeat, lambda: subprocess.run(
        [a.sluice, "run", spec, "--workers", "1", "--force", "--quiet"],
        check=True, stdout=subprocess.DEVNULL))
    noop = tmp / "noop.toml"
    noop.write_text(f'[input]\npaths = ["{tmp / "in"}"]\n\n'
                    f'[output]\ndir = "{tmp / "noop-out"}"\n')
    floor, _ = timed(a.repeat, lambda: subprocess.run(
        [a.sluice, "run", noop, "--workers", "1", "--force", "--quiet"],
        check=True, stdout=subprocess.DEVNULL))
    got = {}
    for f in sorted((tmp / "out").glob("part-*.parquet")):
        for r in pq.read_table(f, columns=["id", "perplexity"]).to_pylist():
            got[r["id"]] = None if r["perplexity"] is None else math.log10(r["perplexity"])
    return best, floor, got


def words(a, tmp):
    all_docs = docs()
    held, train = held_and_train(all_docs, a.scale)
    model = lmplz(tmp, [t for _, t in train])
    tokens = sum(len(l.split()) + 1 for _, t in held for l in t.split("\n") if l.strip())

    def score():
        ref = {}
        for id_, text in held:
            lp, n = 0.0, 0
            for l in text.split("\n"):
                if not l.strip():
                    continue
                lp += model.score(l, bos=True, eos=True)
                n += len(l.split()) + 1
            ref[id_] = -lp / n
        return ref

    best_k, ref = timed(a.repeat, score)
    best_s, floor, got = run_sluice(a, tmp, held, "")
    worst = max(abs(got[id_] - ref[id_]) for id_ in got)
    print(f"model: 5-gram, {os.path.getsize(tmp / 'lm.binary') / 1e6:.1f} MB probing binary; "
          f"held out: {len(held)} documents, {tokens} tokens; largest difference {worst:.1e}")
    print(f"| tool | s | docs/s | tokens/s |\n|---|---:|---:|---:|")
    for name, s in [("kenlm 0.3.0 (scoring loop only)", best_k), ("sluice (whole process)", best_s)]:
        print(f"| {name} | {s:.2f} | {len(held) / s:.0f} | {tokens / s:.0f} |")
    print(f"| sluice with no step (Parquet in and out only) | {floor:.2f} | | |")
    print(f"sluice / kenlm: {best_k / best_s:.2f}x; scoring alone (sluice minus its no-step run) "
          f"/ kenlm: {best_k / (best_s - floor):.2f}x; the most any scorer could reach in "
          f"sluice's whole process (zero scoring time): {best_k / floor:.2f}x")


def ccnet(a, tmp):
    import sentencepiece as spm

    all_docs = raw_docs()
    held, train = held_and_train(all_docs, a.scale)
    norm = [n for _, t in train for l in t.split("\n") if l.strip() for n in [normalize(l)] if n]
    (tmp / "norm.txt").write_text("".join(l + "\n" for l in norm))
    spm.SentencePieceTrainer.train(
        input=str(tmp / "norm.txt"), model_prefix=str(tmp / "sp"), vocab_size=8000,
        model_type="unigram", character_coverage=0.9995, num_threads=1, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(tmp / "sp.model"))
    model = lmplz(tmp, [s for l in norm for s in [" ".join(sp.encode_as_pieces(l))] if s])

    def pipeline():
        ref = {}
        for id_, text in held:
            lp, n = 0.0, 0
            for l in text.split("\n"):
                if not l.strip():
                    continue
                l = normalize(l)
                if not l:
                    continue
                pieces = sp.encode_as_pieces(l)
                if not pieces:
                    continue
                lp += model.score(" ".join(pieces), bos=True, eos=True)
                n += len(pieces) + 1
            ref[id_] = -lp / n if n else None
        return ref

    # The same lines encoded beforehand, for the scoring loop alone.
    encoded, skipped = [], 0
    for id_, text in held:
        lines = []
        for l in text.split("\n"):
            if not l.strip():
                continue
            l = normalize(l)
            pieces = sp.encode_as_pieces(l) if l else []
            if pieces:
                lines.append((" ".join(pieces), len(pieces) + 1))
            else:
                skipped += 1
        encoded.append((id_, lines))
    tokens = sum(n for _, lines in encoded for _, n in lines)

    def score():
        ref = {}
        for id_, lines in encoded:
            lp, n = 0.0, 0
            for s, k in lines:
                lp += model.score(s, bos=True, eos=True)
                n += k
            ref[id_] = -lp / n if n else None
        return ref

    best_p, ref = timed(a.repeat, pipeline)
    best_k, ref_k = timed(a.repeat, score)
    assert ref_k == ref, "the scoring loop alone disagrees with the pipeline"
    best_s, floor, got = run_sluice(a, tmp, held,
                                    f'normalize = "ccnet"\ntokenizer = "{tmp / "sp.model"}"\n')
    both = [id_ for id_ in got if got[id_] is not None and ref[id_] is not None]
    one = [id_ for id_ in got if (got[id_] is None) != (ref[id_] is None)]
    diffs = sorted(((abs(got[id_] - ref[id_]), id_) for id_ in both), reverse=True)
    over = [id_ for d, id_ in diffs if d > 1e-4]
    worst_docs = list(dict.fromkeys(id_.split("#")[0] for id_ in over))
    print(f"model: 5-gram on SentencePiece unigram pieces (8,000), "
          f"{os.path.getsize(tmp / 'lm.binary') / 1e6:.1f} MB probing binary; "
          f"held out: {len(held)} documents, {tokens} tokens (pieces + 1 per line); "
          f"{skipped} non-blank lines normalise or encode to nothing (skipped by Python)")
    print(f"compared: {len(both)} documents (left out: {len(held) - len(both) - len(one)} with no "
          f"line on either side, {len(one)} with a perplexity on one side only); largest "
          f"difference {diffs[0][0]:.1e} log10 ppl ({diffs[0][1]}); {len(over)} documents "
          f"differ by more than 1e-4"
          + (f" ({len(worst_docs)} distinct, largest first: {', '.join(worst_docs[:10])})"
             if over else ""))
    print(f"| tool | s | docs/s | tokens/s |\n|---|---:|---:|---:|")
    for name, s in [("kenlm module + sentencepiece + cc_net normalize "
                     "(Python, as CCNet/Data-Juicer run it)", best_p),
                    ("kenlm module scoring loop only", best_k),
                    ("sluice (whole process)", best_s)]:
        print(f"| {name} | {s:.2f} | {len(held) / s:.0f} | {tokens / s:.0f} |")
    print(f"| sluice with no step (Parquet in and out only) | {floor:.2f} | | |")
    print(f"python pipeline / sluice: {best_p / best_s:.2f}x; "
          f"scoring loop only / sluice: {best_k / best_s:.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["words", "ccnet"], default="words",
                    help="words: scoring pre-split text; ccnet: normalize + SentencePiece + "
                         "scoring from raw text, as CCNet's pipeline runs it")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--scale", type=int, default=1,
                    help="score the held-out documents this many times over (more work per start-up)")
    ap.add_argument("--sluice", type=Path, default=REPO / "target/release/sluice")
    a = ap.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    with tempfile.TemporaryDirectory() as tmp:
        (words if a.mode == "words" else ccnet)(a, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
