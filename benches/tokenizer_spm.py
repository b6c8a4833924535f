"""SentencePiece-style BPE training: sluice (`model = "sentencepiece_bpe"`)
against SentencePiece's own trainer (`spm_train --model_type=bpe`) with
Llama 2's settings, on the same ~53 MB of real text as
benches/tokenizer_peers.py (../shared/data: the prose files and the web
pages), vocab 32,000 (and 64,000).

Both train on the same sentences: every non-empty line of every document
(sluice reads the Parquet files and splits the lines itself; SentencePiece
reads them from a text file, one per line). Settings on both sides: byte
fallback, split_digits, character coverage 0.9995, pieces of at most 16
characters, the identity normaliser with the dummy prefix and extra spaces
kept, whitespace-only pieces allowed.

Reported: wall time and peak memory of each trainer in its own process;
bytes per token of both models on held-out paragraphs of the ten major
languages (lingua_paragraphs, not in the training text), each model encoded
by the `sentencepiece` package from its own `tokenizer.model`; and whether
sluice's `tokenizer.model` (sentencepiece) and `tokenizer.json`
(`tokenizers`) give the same ids on every held-out paragraph of all 75
languages, and never `<unk>`.

    python3 -m venv /tmp/spmbench && /tmp/spmbench/bin/pip install sentencepiece==0.2.1 tokenizers==0.23.3 pyarrow
    cargo build --release
    /tmp/spmbench/bin/python benches/tokenizer_spm.py [vocab ...]
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared", "data")
TRAIN = [os.path.join(SHARED, "prose", f) for f in sorted(os.listdir(os.path.join(SHARED, "prose")))] + [
    os.path.join(SHARED, "web", "trafilatura_pages.parquet")
]
MAJOR = ["en", "zh", "fr", "de", "es", "ru", "ja", "ar", "pt", "it"]

SPM_TRAIN = r"""
import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type="bpe",
    vocab_size=int(sys.argv[3]), split_digits=True, byte_fallback=True, character_coverage=0.9995,
    allow_whitespace_only_pieces=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
    max_sentencepiece_length=16, input_sentence_size=0, max_sentence_length=1000000,
    num_threads=2, minloglevel=2)
"""


def texts(path):
    return [t for t in pq.read_table(path, columns=["text"]).column("text").to_pylist() if t]


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (seconds, peak MB)."""
    with tempfile.NamedTemporaryFile("r") as rep:
        start = time.time()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rep.name] + cmd, check=True,
                       stdout=subprocess.DEVNULL)
        secs = time.time() - start
        kb = int(open(rep.name).read().strip().splitlines()[-1])
    return secs, kb / 1024


def main():
    import sentencepiece as spm
    from tokenizers import Tokenizer

    vocabs = [int(v) for v in sys.argv[1:]] or [32000]
    sluice = os.path.join(REPO, "target", "release", "sluice")
    work = tempfile.mkdtemp(prefix="spmbench-")
    txt = os.path.join(work, "lines.txt")
    n_lines = n_bytes = 0
    with open(txt, "w", encoding="utf-8") as f:
        for p in TRAIN:
            for t in texts(p):
                n_bytes += len(t.encode())
                for line in t.split("\n"):
                    if line:
                        f.write(line + "\n")
                        n_lines += 1
    mb = n_bytes / 1e6
    print(f"training text: {mb:.1f} MB, {n_lines} lines")
    table = pq.read_table(os.path.join(SHARED, "lid", "lingua_paragraphs.parquet"), columns=["text", "lang"])
    by_lang = {}
    for t, l in zip(table.column("text").to_pylist(), table.column("lang").to_pylist()):
        if t:
            by_lang.setdefault(l, []).append(t)

    for vocab in vocabs:
        out = os.path.join(work, f"sluice-{vocab}")
        spec = os.path.join(work, f"sluice-{vocab}.toml")
        with open(spec, "w") as f:
            f.write(f"[input]\npaths = {json.dumps(TRAIN)}\n\n[tokenizer]\nmodel = \"sentencepiece_bpe\"\n"
                    f"vocab_size = {vocab}\nsplit_digits = true\nbyte_fallback = true\n"
                    f"character_coverage = 0.9995\nmax_piece_length = 16\n\n[output]\ndir = \"{out}\"\n")
        rows = []
        secs, peak = timed([sluice, "train-tokenizer", spec, "-q", "--workers", "2"])
        rows.append(("sluice, 2 workers", secs, peak))
        secs, peak = timed([sluice, "train-tokenizer", spec, "-q", "--workers", "1"])
        rows.append(("sluice, 1 worker", secs, peak))
        prefix = os.path.join(work, f"spm-{vocab}")
        secs, peak = timed([sys.executable, "-c", SPM_TRAIN, txt, prefix, str(vocab)])
        rows.append(("spm_train --model_type=bpe, 2 threads", secs, peak))
        print(f"\nvocab {vocab}\n\n| trainer | text MB | wall s | peak MB |\n| --- | ---: | ---: | ---: |")
        for name, s, p in rows:
            print(f"| {name} | {mb:.1f} | {s:.1f} | {p:.0f} |")

        ours = spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
        theirs = spm.SentencePieceProcessor(model_file=prefix + ".model")
        hf = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
        print("\n| held-out (lingua paragraphs) | bytes | sluice bytes/token | spm_train bytes/token | sluice / spm |")
        print("| --- | ---: | ---: | ---: | ---: |")
        tot = [0, 0, 0]
        for lang in MAJOR:
            ts = by_lang.get(lang, [])
            b = sum(len(t.encode()) for t in ts)
            a = sum(len(x) for x in ours.encode(ts))
            s = sum(len(x) for x in theirs.encode(ts))
            tot = [tot[0] + b, tot[1] + a, tot[2] + s]
            print(f"| {lang} | {b} | {b / a:.3f} | {b / s:.3f} | {(b / a) / (b / s):.4f} |")
        print(f"| all ten | {tot[0]} | {tot[0] / tot[1]:.3f} | {tot[0] / tot[2]:.3f} | "
              f"{(tot[0] / tot[1]) / (tot[0] / tot[2]):.4f} |")
        differ = unk = n = 0
        for lang, ts in sorted(by_lang.items()):
            a = ours.encode(ts)
            h = [e.ids for e in hf.encode_batch(ts, add_special_tokens=False)]
            n += len(ts)
            differ += sum(1 for x, y in zip(a, h) if x != y)
            unk += sum(x.count(ours.unk_id()) for x in a)
        print(f"\n{len(by_lang)} languages, {n} paragraphs: sentencepiece and tokenizers differ on {differ}, "
              f"<unk> tokens: {unk}")


if __name__ == "__main__":
    main()
