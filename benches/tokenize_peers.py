"""Tokenization throughput: `sluice run` with the tokenize step against the
Python `tokenizers` (`encode_batch`) and `tiktoken` (`encode_ordinary_batch`)
on the same ~53 MB of real text (../shared/data: the prose files and the web
pages), each end to end on all cores: read the Parquet files, encode, append
EOS, write the ids as uint16 to disk. Two tokenizers sluice did not train:

- a 32,000-token byte-level BPE trained here by Python `tokenizers`'
  `BpeTrainer` (Qwen 2 split regex, no normalisation, so that tiktoken,
  which has none, is the same function; tiktoken gets the vocab ids as ranks
  and the same regex);
- Llama 2's own tokenizer.json (`fixtures/models/wordllama-l2-64/`):
  SentencePiece-style, byte fallback; tiktoken cannot express it.

sluice encodes both with its own encoder (`tokenizer::fast`); the bench
checks that the id streams sluice writes equal the Python `tokenizers`'
byte for byte, and counts the documents on which tiktoken agrees.

    python3 -m venv /tmp/tokbench && /tmp/tokbench/bin/pip install tokenizers==0.23.3 tiktoken==0.14.0 pyarrow numpy
    cargo build --release
    /tmp/tokbench/bin/python benches/tokenize_peers.py

sluice runs with `--no-shuffle` (each task writes its shards in input
order, as the peers write theirs). Each timing is the best of three runs,
each in its own process.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(REPO, "target", "release", "sluice")
SHARED = os.path.join(REPO, "..", "shared", "data")
FILES = [os.path.join(SHARED, "prose", f) for f in sorted(os.listdir(os.path.join(SHARED, "prose")))] + [
    os.path.join(SHARED, "web", "trafilatura_pages.parquet")
]
EOS = "<|endoftext|>"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
RUNS = 3

# Both peers: Parquet batches of 4,096 rows (as sluice's default), encoded in
# one call per batch on all cores, EOS appended, ids written as uint16.
PEER = r"""
import json, sys, time
import numpy as np
import pyarrow.parquet as pq

files, out, tok_path, which, eos_token = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[7]
if which == "tokenizers":
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    eos = tok.token_to_id(eos_token)
    encode = lambda texts: [e.ids for e in tok.encode_batch_fast(texts, add_special_tokens=False)]
else:
    sys.path.insert(0, sys.argv[5])
    from tiktoken_of import encoding
    enc, eos = encoding(tok_path)
    encode = lambda texts: enc.encode_ordinary_batch(texts, num_threads=int(sys.argv[6]))
tokens = 0
docs = 0
with open(out, "wb") as f:
    for p in files:
        for b in pq.ParquetFile(p).iter_batches(batch_size=4096, columns=["text"]):
            texts = [t for t in b.column(0).to_pylist() if t]
            for ids in encode(texts):
                a = np.array(ids + [eos], dtype=np.uint16)
                f.write(a.tobytes())
                tokens += len(a)
                docs += 1
print(json.dumps({"tokens": tokens, "docs": docs}))
"""

# A tiktoken Encoding of a byte-level tokenizer.json whose special tokens
# come first: the GPT-2 byte alphabet mapped back to bytes; the ids (merge
# order) are the ranks.
TIKTOKEN_OF = r"""
import json
import tiktoken

def byte_decoder():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}

def encoding(path):
    t = json.load(open(path))
    specials = {a["content"]: a["id"] for a in t["added_tokens"]}
    n = len(specials)
    dec = byte_decoder()
    ranks = {bytes(dec[c] for c in tok): i - n for tok, i in t["model"]["vocab"].items() if i >= n}
    pat = t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    enc = tiktoken.Encoding("sluice", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    # Ids as the tokenizer.json numbers them: specials first.
    class Shifted:
        def encode_ordinary_batch(self, texts, num_threads):
            return [[i + n for i in ids] for ids in enc.encode_ordinary_batch(texts, num_threads=num_threads)]
        def encode_ordinary(self, text):
            return [i + n for i in enc.encode_ordinary(text)]
    return Shifted(), specials["<|endoftext|>"]
"""


def best_of(f):
    times = []
    result = None
    for _ in range(RUNS):
        start = time.time()
        result = f()
        times.append(time.time() - start)
    return min(times), result


def train_hf(texts, path):
    """A byte-level BPE trained by Hugging Face's trainer, not by sluice."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, Regex
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=32000, min_frequency=2, show_progress=False,
                                  special_tokens=[EOS, "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    tok.save(path)


def main():
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    import pyarrow.parquet as pq
    cores = os.cpu_count()
    work = tempfile.mkdtemp(prefix="tokenize-bench-")
    texts = [t for p in FILES for t in pq.read_table(p, columns=["text"]).column("text").to_pylist() if t]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    hf_path = os.path.join(work, "hf-trained.json")
    start = time.time()
    train_hf(texts, hf_path)
    print(f"Hugging Face BpeTrainer: 32,000 tokens in {time.time() - start:.0f} s")
    llama = os.path.join(REPO, "fixtures", "models", "wordllama-l2-64", "l2_supercat_tokenizer_config.json")
    with open(os.path.join(work, "tiktoken_of.py"), "w") as f:
        f.write(TIKTOKEN_OF)

    rows, streams = [], {}
    for tok_name, tok_path, eos, peers in (("HF-trained byte-level", hf_path, EOS, ("tokenizers", "tiktoken")),
                                           ("Llama 2", llama, "</s>", ("tokenizers",))):
        out = os.path.join(work, "sluice-" + tok_name.split()[0])
        run_spec = os.path.join(work, "run.toml")
        with open(run_spec, "w") as f:
            f.write(f"""[input]
paths = {json.dumps(FILES)}
[[step]]
op = "tokenize"
tokenizer = "{tok_path}"
eos = "{eos}"
[output]
dir = "{out}"
""")
        args = [SLUICE, "run", run_spec, "-q", "--force", "--no-shuffle"]
        secs, _ = best_of(lambda: subprocess.run(args, check=True, stdout=subprocess.DEVNULL))
        report = json.load(open(os.path.join(out, "tokenize_report.json")))
        rows.append((tok_name, "sluice", secs, report["tokens"]))
        # Input order: the shards, in name order, are one stream of ids.
        streams[(tok_name, "sluice")] = b"".join(
            open(os.path.join(out, shard), "rb").read()
            for shard in sorted(x for x in os.listdir(out) if x.endswith(".bin")))
        for which in peers:
            peer_out = os.path.join(work, f"{which}.bin")
            cmd = [sys.executable, "-c", PEER, json.dumps(FILES), peer_out, tok_path, which, work, str(cores), eos]
            env = dict(os.environ, RAYON_NUM_THREADS=str(cores), TOKENIZERS_PARALLELISM="true")
            secs, res = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env))
            rows.append((tok_name, which, secs, json.loads(res.stdout)["tokens"]))
            streams[(tok_name, which)] = open(peer_out, "rb").read()

    print(f"\n{mb:.1f} MB of text, {cores} cores, best of {RUNS}")
    print(f"{'tokenizer':<24} {'encoder':<12} {'seconds':>8} {'MB/s':>8} {'Mtok/s':>8} {'tokens':>12} {'vs sluice':>10}")
    base = {t: s for t, w, s, _ in rows if w == "sluice"}
    for tok_name, which, secs, tokens in rows:
        print(f"{tok_name:<24} {which:<12} {secs:>8.2f} {mb / secs:>8.1f} {tokens / secs / 1e6:>8.2f} {tokens:>12,} "
              f"{secs / base[tok_name]:>9.2f}x")
    for tok_name, which in streams:
        if which != "sluice":
            same = streams[(tok_name, which)] == streams[(tok_name, "sluice")]
            print(f"{tok_name}: ids written by {which} {'byte-identical to' if same else 'DIFFER from'} sluice's")


if __name__ == "__main__":
    main()
