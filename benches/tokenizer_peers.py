"""BPE tokenizer training: sluice against the Hugging Face trainer,
sentencepiece and rustbpe on the same ~53 MB of real text (../shared/data:
the prose files and the web pages), vocab 32,000, the Qwen 2 pre-tokenizer
with single digits, NFC. Wall time and peak memory of each trainer in its own
process; then bytes per token of both byte-level tokenizers (sluice's and
HF's, both loaded with the `tokenizers` library) on held-out paragraphs of
the ten major languages (lingua_paragraphs, not in the training text).

    python3 -m venv /tmp/tokbench && /tmp/tokbench/bin/pip install tokenizers sentencepiece rustbpe pyarrow
    cargo build --release
    /tmp/tokbench/bin/python benches/tokenizer_peers.py

Also trains sluice on the text four times (4x) to show that its memory
follows the distinct words, not the corpus: with min_frequency = 2 as at 1x,
and with min_frequency = 8 (every count is four times the 1x count, so this
is the same training problem: the tokenizer.json must be byte-identical).
"""

import json
import os
import resource
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
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 32000
MAJOR = ["en", "zh", "fr", "de", "es", "ru", "ja", "ar", "pt", "it"]


def texts(path):
    return [t for t in pq.read_table(path, columns=["text"]).column("text").to_pylist() if t]


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak MB)."""
    with tempfile.NamedTemporaryFile("r") as rep:
        start = time.time()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rep.name] + cmd, check=True, env=env,
                       stdout=subprocess.DEVNULL)
        secs = time.time() - start
        kb = int(open(rep.name).read().strip().splitlines()[-1])
    return secs, kb / 1024


# The peers read the Parquet files batch by batch, as sluice does, so that
# their peak memory is theirs, not a Python list of the corpus.
STREAM = r"""
import pyarrow.parquet as pq
def stream(paths):
    for p in paths:
        for b in pq.ParquetFile(p).iter_batches(batch_size=1024, columns=["text"]):
            for t in b.column(0).to_pylist():
                if t:
                    yield t
"""

HF_TRAIN = STREAM + r"""
import sys, json, time
from tokenizers import Tokenizer, Regex, models, normalizers, pre_tokenizers, trainers
texts = stream(json.loads(sys.argv[1]))
tok = Tokenizer(models.BPE())
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(sys.argv[3]), behavior="isolated"),
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
])
tok.decoder = __import__("tokenizers").decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=int(sys.argv[4]), min_frequency=2, special_tokens=json.loads(sys.argv[5]),
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(texts, trainer=trainer)
tok.save(sys.argv[2])
"""

SPM_TRAIN = r"""
import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type="bpe",
    vocab_size=int(sys.argv[3]), split_digits=True, byte_fallback=True, character_coverage=0.9995,
    input_sentence_size=100000000, max_sentence_length=1000000, num_threads=2, minloglevel=2)
"""

RUSTBPE_TRAIN = STREAM + r"""
import sys, json, rustbpe
texts = stream(json.loads(sys.argv[1]))
tok = rustbpe.Tokenizer()
tok.train_from_iterator(iter(texts), vocab_size=int(sys.argv[2]), pattern=sys.argv[3])
"""


def main():
    sluice = os.path.join(REPO, "target", "release", "sluice")
    work = tempfile.mkdtemp(prefix="tokbench-")
    train_texts = [t for p in TRAIN for t in texts(p)]
    mb = sum(len(t.encode()) for t in train_texts) / 1e6
    print(f"training text: {len(train_texts)} documents, {mb:.1f} MB")
    txt = os.path.join(work, "texts.txt")
    with open(txt, "w", encoding="utf-8") as f:
        for t in train_texts:
            f.write(t.replace("\n", " ") + "\n")
    rows = []

    def sluice_spec(name, copies, min_frequency=2):
        paths = [p for p in TRAIN for _ in range(1)]
        if copies > 1:
            d = os.path.join(work, f"in-{copies}")
            os.makedirs(d, exist_ok=True)
            paths = []
            for k in range(copies):
                for p in TRAIN:
                    link = os.path.join(d, f"{k}-{os.path.basename(p)}")
                    if not os.path.exists(link):
                        os.symlink(p, link)
                    paths.append(link)
        out = os.path.join(work, name)
        spec = os.path.join(work, f"{name}.toml")
        with open(spec, "w") as f:
            f.write(f"[input]\npaths = {json.dumps(paths)}\n\n[tokenizer]\nvocab_size = {VOCAB}\n"
                    f"min_frequency = {min_frequency}\npre_tokenizer = \"qwen2\"\nsplit_digits = true\nnormalization = \"NFC\"\n"
                    f"special_tokens = {json.dumps(SPECIALS)}\n\n[output]\ndir = \"{out}\"\n")
        return spec, out

    spec, sl_out = sluice_spec("sluice", 1)
    secs, peak = timed([sluice, "train-tokenizer", spec, "-q", "--workers", "2"])
    rows.append(("sluice, 2 workers", mb, secs, peak))
    spec1, _ = sluice_spec("sluice1", 1)
    secs, peak = timed([sluice, "train-tokenizer", spec1, "-q", "--workers", "1"])
    rows.append(("sluice, 1 worker", mb, secs, peak))
    spec4, _ = sluice_spec("sluice4", 4)
    secs, peak = timed([sluice, "train-tokenizer", spec4, "-q", "--workers", "2"])
    rows.append(("sluice, 2 workers, the text 4x", 4 * mb, secs, peak))
    spec4m, out4m = sluice_spec("sluice4m", 4, min_frequency=8)
    secs, peak = timed([sluice, "train-tokenizer", spec4m, "-q", "--workers", "2"])
    rows.append(("sluice, 2 workers, the text 4x, min_frequency 8", 4 * mb, secs, peak))
    same = open(os.path.join(sl_out, "tokenizer.json"), "rb").read() == open(os.path.join(out4m, "tokenizer.json"), "rb").read()
    print(f"4x with min_frequency 8 gives the 1x tokenizer.json byte for byte: {same}")

    hf_out = os.path.join(work, "hf.json")
    secs, peak = timed([sys.executable, "-c", HF_TRAIN, json.dumps(TRAIN), hf_out, QWEN2, str(VOCAB), json.dumps(SPECIALS)])
    rows.append(("HF tokenizers BpeTrainer, 2 threads", mb, secs, peak))
    try:
        import sentencepiece  # noqa: F401
        secs, peak = timed([sys.executable, "-c", SPM_TRAIN, txt, os.path.join(work, "spm"), str(VOCAB)])
        rows.append(("sentencepiece BPE (split_digits, byte_fallback)", mb, secs, peak))
    except ImportError:
        print("sentencepiece not installed: skipped")
    try:
        import rustbpe  # noqa: F401
        secs, peak = timed([sys.executable, "-c", RUSTBPE_TRAIN, json.dumps(TRAIN), str(VOCAB), QWEN2])
        rows.append(("rustbpe (Qwen 2 regex)", mb, secs, peak))
    except ImportError:
        print("rustbpe not installed: skipped")

    print(f"\n| trainer | text MB | wall s | peak MB |\n| --- | ---: | ---: | ---: |")
    for name, m, s, p in rows:
        print(f"| {name} | {m:.1f} | {s:.1f} | {p:.0f} |")

    from tokenizers import Tokenizer
    ours = Tokenizer.from_file(os.path.join(sl_out, "tokenizer.json"))
    hf = Tokenizer.from_file(hf_out)
    table = pq.read_table(os.path.join(SHARED, "lid", "lingua_paragraphs.parquet"), columns=["text", "lang"])
    by_lang = {}
    for t, l in zip(table.column("text").to_pylist(), table.column("lang").to_pylist()):
        if l in MAJOR and t:
            by_lang.setdefault(l, []).append(t)
    print("\n| held-out (lingua paragraphs) | bytes | sluice bytes/token | HF bytes/token | sluice / HF |")
    print("| --- | ---: | ---: | ---: | ---: |")
    tot = [0, 0, 0]
    for lang in MAJOR:
        ts = by_lang.get(lang, [])
        b = sum(len(t.encode()) for t in ts)
        a = sum(len(e.ids) for e in ours.encode_batch(ts, add_special_tokens=False))
        h = sum(len(e.ids) for e in hf.encode_batch(ts, add_special_tokens=False))
        tot[0] += b
        tot[1] += a
        tot[2] += h
        print(f"| {lang} | {b} | {b / a:.3f} | {b / h:.3f} | {(b / a) / (b / h):.4f} |")
    print(f"| all ten | {tot[0]} | {tot[0] / tot[1]:.3f} | {tot[0] / tot[2]:.3f} | {(tot[0] / tot[1]) / (tot[0] / tot[2]):.4f} |")


if __name__ == "__main__":
    main()
