#!/usr/bin/env python3
"""Score article-body extraction on ScrapingHub's article-extraction-benchmark (AEB).

The benchmark: 181 news/blog pages (html/<id>.html.gz, all UTF-8) with gold
article bodies (ground-truth.json: {id: {"articleBody": ..., "url": ...}}).
Get it with the search tool's fetch (github:scrapinghub/article-extraction-benchmark)
and unpack the snapshot into --repo (default target/aeb/repo), e.g.
  git --git-dir=/work/.mirror/scrapinghub+article-extraction-benchmark/repo archive HEAD \
    | tar -x -C target/aeb/repo
(two large output/*.json blobs may be absent from the snapshot; they are not needed).

Metric: a re-implementation of the benchmark's own evaluate.py (same repo):
  * tokens are regex \\w+ matches (Unicode); shingles are token 4-grams (a text
    of 1-3 tokens is a single shorter shingle, an empty text has none);
  * per page, TP/FP/FN are multiset overlaps of gold and predicted shingles,
    then divided by their sum so every page weighs the same;
  * precision = mean over pages with TP+FP > 0 of the page's precision,
    recall = mean over pages with TP+FN > 0 of the page's recall (a page with
    FP = FN = 0 scores 1, one with TP = 0 scores 0),
    F1 = harmonic mean of those two means (not a mean of per-page F1s);
  * accuracy = share of pages whose token sequence equals the gold's exactly;
  * ± is the standard deviation over bootstrap resamples of the pages.

Modes:
  --extractor NAME ...   run Python peers in-process on one core (timed)
  --from-jsonl FILE      score precomputed outputs, lines {"id": ..., "text": ...}
                         (missing id = empty output)
  --upstream NAME        score the benchmark's stored output/NAME.json (checks
                         this re-implementation against its README table)
  --dump-pages PATH      write the pages as JSONL {"id", "html"} (html decoded as
                         UTF-8, as the benchmark's runners read it) for other tools

Examples:
  target/web-venv/bin/python benches/web/aeb_eval.py --dump-pages target/aeb/pages.jsonl
  target/web-venv/bin/python benches/web/aeb_eval.py --extractor trafilatura resiliparse
  target/web-venv/bin/python benches/web/aeb_eval.py --from-jsonl out.jsonl --name sluice
"""

import argparse
import gzip
import json
import os
import random
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

import peers  # this folder: peer extractors and the timing loop (sets thread env vars first)

DEFAULT_REPO = "target/aeb/repo"
DEFAULT_JSON_DIR = "target/aeb"

# --- metric: faithful to scrapinghub/article-extraction-benchmark evaluate.py ---

_TOKEN_RE = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


def tokenize(text) -> list:
    return _TOKEN_RE.findall(text or "")


def shingles(text, n: int = 4) -> Counter:
    tokens = tokenize(text)
    grams = (tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1)))
    return Counter(g for g in grams if g)


def shingle_tp_fp_fn(true, pred, n: int = 4) -> tuple:
    """Per-page TP/FP/FN over shingle multisets, normalized to sum to 1."""
    t, p = shingles(true, n), shingles(pred, n)
    tp = fp = fn = 0.0
    for key in t.keys() | p.keys():
        tc, pc = t.get(key, 0), p.get(key, 0)
        tp += min(tc, pc)
        fp += max(0, pc - tc)
        fn += max(0, tc - pc)
    s = tp + fp + fn
    return (tp / s, fp / s, fn / s) if s > 0 else (tp, fp, fn)


def _precision(tp, fp, fn):
    if fp == fn == 0:
        return 1.0
    if tp == fp == 0:
        return 0.0
    return tp / (tp + fp)


def _recall(tp, fp, fn):
    if fp == fn == 0:
        return 1.0
    if tp == fn == 0:
        return 0.0
    return tp / (tp + fn)


def prf(tp_fp_fns: list) -> dict:
    p = statistics.mean(_precision(*x) for x in tp_fp_fns if x[0] + x[1] > 0)
    r = statistics.mean(_recall(*x) for x in tp_fp_fns if x[0] + x[2] > 0)
    return {"f1": 2 * p * r / (p + r), "precision": p, "recall": r}


def evaluate(gold: dict, pred: dict, n_bootstrap: int, seed: int) -> dict:
    """pred: {id: text or None}; ids missing from pred count as empty output."""
    keys = list(gold)
    tfn = [shingle_tp_fp_fn(gold[k].get("articleBody", ""), pred.get(k)) for k in keys]
    acc = [float(tokenize(gold[k].get("articleBody", "")) == tokenize(pred.get(k))) for k in keys]
    m = prf(tfn)
    m["accuracy"] = statistics.mean(acc)
    rng = random.Random(seed)
    boot = {}
    for _ in range(n_bootstrap):
        idx = [rng.randint(0, len(keys) - 1) for _ in keys]
        for key, value in prf([tfn[i] for i in idx]).items():
            boot.setdefault(key, []).append(value)
        boot.setdefault("accuracy", []).append(statistics.mean(acc[i] for i in idx))
    for key, values in boot.items():
        m[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    m["per_page"] = {k: {"tp_fp_fn": x, "exact": a} for k, x, a in zip(keys, tfn, acc)}
    return m


# --- data ----------------------------------------------------------------------

def load_benchmark(repo: str) -> tuple:
    """(gold {id: {...}}, pages {id: utf-8 str}) in ground-truth order."""
    root = Path(repo)
    with open(root / "ground-truth.json", encoding="utf-8") as f:
        gold = json.load(f)
    pages = {}
    for key in gold:
        # the benchmark's runners: gzip.open(path, 'rt', encoding='utf8')
        with gzip.open(root / "html" / f"{key}.html.gz", "rt", encoding="utf-8") as f:
            pages[key] = f.read()
    return gold, pages


def load_jsonl(path: str) -> dict:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out[d["id"]] = d.get("text")
    return out


def table_header() -> str:
    return ("| extractor | version | pages | pages/s (1 core) | F1 | precision | recall | accuracy | empty |\n"
            "|---|---|---|---|---|---|---|---|---|")


def table_line(res: dict) -> str:
    m = res["metrics"]
    t = res.get("timing")
    cells = [res["name"], res.get("version", "-"), str(len(m["per_page"])),
             f"{t['pages_per_s']:.1f}" if t else "-"]
    cells += [f"{m[k]:.3f} ± {m[k + '_std']:.3f}" for k in ("f1", "precision", "recall", "accuracy")]
    cells.append(str(res["empty"]))
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=DEFAULT_REPO, help="unpacked benchmark (ground-truth.json, html/)")
    ap.add_argument("--extractor", nargs="+", choices=sorted(peers.PEERS), metavar="NAME", default=[],
                    help="peer(s) to run in-process: " + ", ".join(sorted(peers.PEERS)))
    ap.add_argument("--from-jsonl", metavar="FILE", action="append", default=[],
                    help='score precomputed outputs, lines {"id": ..., "text": ...} (repeatable)')
    ap.add_argument("--name", help="label for a single --from-jsonl (default: the file's stem)")
    ap.add_argument("--upstream", metavar="NAME", action="append", default=[],
                    help="score the benchmark's stored output/NAME.json (repeatable)")
    ap.add_argument("--dump-pages", metavar="PATH", help='write {"id","html"} JSONL of the pages')
    ap.add_argument("--dump-jsonl", metavar="DIR", help="write each peer's outputs as DIR/aeb-<name>.jsonl")
    ap.add_argument("--json", metavar="PATH", help=f"results file (default {DEFAULT_JSON_DIR}/aeb_eval.json)")
    ap.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples for ± (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="extraction passes; best per-page time kept")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin to; -1: no pinning (default 0)")
    args = ap.parse_args()

    gold, pages = load_benchmark(args.repo)
    if args.dump_pages:
        os.makedirs(os.path.dirname(args.dump_pages) or ".", exist_ok=True)
        with open(args.dump_pages, "w", encoding="utf-8") as f:
            for key, html in pages.items():
                f.write(json.dumps({"id": key, "html": html}, ensure_ascii=False) + "\n")
        print(f"wrote {len(pages)} pages to {args.dump_pages}", file=sys.stderr)

    results = []
    keys = list(gold)
    html_bytes = sum(len(pages[k].encode("utf-8")) for k in keys)
    if args.extractor:
        cpu = peers.pin_to_one_core(args.cpu)
    for name in args.extractor:
        peer = peers.PEERS[name]
        print(f"running {name} on {len(keys)} pages (cpu {cpu}, {args.repeat} pass(es))...", file=sys.stderr)
        # pages are already str (UTF-8), as the benchmark feeds every extractor
        t = peers.run_peer(peer, keys, repeat=args.repeat, decoded=[pages[k] for k in keys])
        pred = dict(zip(keys, t.texts))
        timing = peers.timing_summary(t, html_bytes)
        del timing["decode_s"], timing["pages_per_s_with_decode"]
        results.append({"name": name, "version": peer.version, "settings": peer.note, "cpu": cpu,
                        "timing": timing, "errors": [(keys[i], e) for i, e in t.errors],
                        "pred": pred})
        if args.dump_jsonl:
            os.makedirs(args.dump_jsonl, exist_ok=True)
            with open(os.path.join(args.dump_jsonl, f"aeb-{name}.jsonl"), "w", encoding="utf-8") as f:
                for k in keys:
                    f.write(json.dumps({"id": k, "text": pred[k]}, ensure_ascii=False) + "\n")
    for path in args.from_jsonl:
        name = args.name if args.name and len(args.from_jsonl) == 1 else Path(path).stem
        pred = load_jsonl(path)
        unknown = set(pred) - set(gold)
        if unknown:
            print(f"warning: {len(unknown)} ids in {path} are not in the benchmark", file=sys.stderr)
        results.append({"name": name, "source": path, "missing": len(set(gold) - set(pred)), "pred": pred})
    for name in args.upstream:
        with open(Path(args.repo) / "output" / f"{name}.json", encoding="utf-8") as f:
            data = json.load(f)
        version = ""
        if isinstance(data, dict) and set(data) == {"version", "output"}:
            version, data = data["version"], data["output"]
        results.append({"name": f"upstream:{name}", "version": version or "-",
                        "pred": {k: v.get("articleBody") for k, v in data.items()}})

    if not results:
        if not args.dump_pages:
            ap.error("nothing to do: give --extractor, --from-jsonl, --upstream or --dump-pages")
        return

    print(table_header())
    for res in results:
        pred = res.pop("pred")
        res["empty"] = sum(1 for k in keys if not pred.get(k))
        res["metrics"] = evaluate(gold, pred, args.n_bootstrap, args.seed)
        print(table_line(res))
        if res.get("errors"):
            print(f"  {res['name']}: {len(res['errors'])} exceptions, first: {res['errors'][0]}")

    path = args.json or os.path.join(DEFAULT_JSON_DIR, "aeb_eval.json")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"repo": args.repo, "n_bootstrap": args.n_bootstrap, "seed": args.seed, "results": results},
                  f, indent=1, ensure_ascii=False)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
