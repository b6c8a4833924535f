"""Tokenization throughput: `sluice run` with the tokenize step against the
Python `tokenizers` (`encode_batch`) and `tiktoken` (`encode_ordinary_batch`)
on the same ~53 MB of real text (../shared/data: the prose files and the web
pages), each end to end on all cores: read the Parquet files, encode, append
EOS, write the ids as uint16 to disk. The same tokenizer for all three: a
32,000-token byte-level BPE sluice trains here (Qwen 2 pre-tokenizer, single
digits, no normalisation, so that tiktoken, which has none, is the same
function); tiktoken gets its merges as ranks (a token's rank is its id less
the special tokens: sluice numbers merges in order) and the same regex. The
bench checks that the three give the same ids on a sample before timing.

    python3 -m venv /tmp/tokbench && /tmp/tokbench/bin/pip install tokenizers==0.23.3 tiktoken==0.14.0 pyarrow numpy
    cargo build --release
    /tmp/tokbench/bin/python benches/tokenize_peers.py

sluice is timed twice: `--no-shuffle` (each task writes its shards in input
order, as the peers write theirs) and with its default seeded global shuffle.
Each timing is the best of three runs, each in its own process.
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

files, out, tok_path, which = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if which == "tokenizers":
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    eos = tok.token_to_id("<|endoftext|>")
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

# A tiktoken Encoding of a sluice tokenizer.json: the GPT-2 byte alphabet
# mapped back to bytes; ranks are merge order.
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


def main():
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    cores = os.cpu_count()
    work = tempfile.mkdtemp(prefix="tokenize-bench-")
    tok_dir = os.path.join(work, "tok")
    spec = os.path.join(work, "tok.toml")
    with open(spec, "w") as f:
        f.write(f"""[input]
paths = {json.dumps(FILES)}
[tokenizer]
vocab_size = 32000
pre_tokenizer = "qwen2"
split_digits = true
normalization = "none"
special_tokens = ["{EOS}", "<|im_start|>", "<|im_end|>"]
[output]
dir = "{tok_dir}"
""")
    subprocess.run([SLUICE, "train-tokenizer", spec, "-q"], check=True)
    tok_path = os.path.join(tok_dir, "tokenizer.json")
    with open(os.path.join(work, "tiktoken_of.py"), "w") as f:
        f.write(TIKTOKEN_OF)
    mb = sum(len(t.encode()) for p in FILES for t in __import__("pyarrow.parquet").parquet.read_table(
        p, columns=["text"]).column("text").to_pylist() if t) / 1e6

    # The three encoders agree on a sample (every file's first 200 texts).
    sys.path.insert(0, work)
    from tiktoken_of import encoding
    from tokenizers import Tokenizer
    import pyarrow.parquet as pq
    hf = Tokenizer.from_file(tok_path)
    tk, _ = encoding(tok_path)
    sample = [t for p in FILES for t in pq.read_table(p, columns=["text"]).column("text").to_pylist()[:200] if t]
    a = [e.ids for e in hf.encode_batch(sample, add_special_tokens=False)]
    b = tk.encode_ordinary_batch(sample, num_threads=cores)
    same = sum(x == y for x, y in zip(a, b))
    print(f"sample of {len(sample)} texts: tokenizers and tiktoken agree on {same}")

    # The same tokenizer, dressed so that sluice does not recognise it as
    # its own (an empty normalizer sequence: the same function): sluice then
    # encodes with the `tokenizers` crate, as it does Llama's or Qwen's.
    t = json.load(open(tok_path))
    t["normalizer"] = {"type": "Sequence", "normalizers": []}
    foreign = os.path.join(work, "foreign.json")
    json.dump(t, open(foreign, "w"), ensure_ascii=False)

    rows = []
    for name, path, shuffle in (("sluice", tok_path, False), ("sluice (shuffled)", tok_path, True),
                                ("sluice, tokenizers crate", foreign, False)):
        out = os.path.join(work, name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", ""))
        run_spec = os.path.join(work, "run.toml")
        with open(run_spec, "w") as f:
            f.write(f"""[input]
paths = {json.dumps(FILES)}
[[step]]
op = "tokenize"
tokenizer = "{path}"
eos = "{EOS}"
[output]
dir = "{out}"
""")
        args = [SLUICE, "run", run_spec, "-q", "--force"] + ([] if shuffle else ["--no-shuffle"])
        secs, _ = best_of(lambda: subprocess.run(args, check=True, stdout=subprocess.DEVNULL))
        report = json.load(open(os.path.join(out, "tokenize_report.json")))
        rows.append((name, secs, report["tokens"]))
        if not shuffle:
            # Input order: the shards, in name order, are one stream of ids.
            with open(os.path.join(work, name + ".ids"), "wb") as f:
                for shard in sorted(x for x in os.listdir(out) if x.endswith(".bin")):
                    f.write(open(os.path.join(out, shard), "rb").read())

    for which in ("tokenizers", "tiktoken"):
        out = os.path.join(work, f"{which}.bin")
        cmd = [sys.executable, "-c", PEER, json.dumps(FILES), out, tok_path, which, work, str(cores)]
        env = dict(os.environ, RAYON_NUM_THREADS=str(cores), TOKENIZERS_PARALLELISM="true")
        secs, res = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env))
        rows.append((which, secs, json.loads(res.stdout)["tokens"]))

    print(f"\n{mb:.1f} MB of text, {cores} cores, best of {RUNS}")
    print(f"{'encoder':<26} {'seconds':>8} {'MB/s':>8} {'Mtok/s':>8} {'tokens':>12}")
    for name, secs, tokens in rows:
        print(f"{name:<26} {secs:>8.2f} {mb / secs:>8.1f} {tokens / secs / 1e6:>8.2f} {tokens:>12,}")
    streams = {n: open(os.path.join(work, n + ".ids"), "rb").read() for n in ("sluice", "sluice, tokenizers crate")}
    for which in ("tokenizers", "tiktoken"):
        streams[which] = open(os.path.join(work, f"{which}.bin"), "rb").read()
    same = all(v == streams["tokenizers"] for v in streams.values())
    print(f"\nids written (input order, uint16): {'byte-identical for all four' if same else 'DIFFERENT'}")
    base = dict((n, s) for n, s, _ in rows)
    print(f"\nsluice vs tokenizers: {base['tokenizers'] / base['sluice']:.2f}x; "
          f"vs tiktoken: {base['tiktoken'] / base['sluice']:.2f}x")


if __name__ == "__main__":
    main()
