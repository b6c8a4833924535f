#!/usr/bin/env python3
"""Score main-text extraction on trafilatura's own evaluation set.

Data: /work/shared/data/web/html_pages.parquet — 990 real pages, `html` (bytes
as served), `url`, `file`, and `with` / `without`: JSON lists of snippets a good
extraction must / must not contain (adbar/trafilatura tests/evaldata.json).

Scoring follows trafilatura's tests/eval_common.py (count_item, ConfusionMatrix):
per page, each `with` snippet found in the output is a TP else an FN, each
`without` snippet found is an FP else a TN; "found" is substring matching after
collapsing every whitespace run to one space on both sides (norm). A None,
empty or missing output, or a crash, finds nothing. Precision, recall, F1 and
accuracy are micro-averaged over all snippets of all pages.

Two ways to run:
  --extractor NAME [NAME ...]   run Python peers in-process, pinned to one core,
                                extraction timed apart from decoding
  --from-jsonl FILE             score precomputed outputs (e.g. our Rust
                                extractor): one {"file": ..., "text": ...} per
                                line, matched on the parquet's `file` column

Examples:
  target/web-venv/bin/python benches/web/extract_eval.py --extractor trafilatura resiliparse
  target/web-venv/bin/python benches/web/extract_eval.py --from-jsonl out.jsonl --name sluice
"""

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass

import peers  # this folder: peer extractors and the timing loop (sets thread env vars first)

DEFAULT_PARQUET = "/work/shared/data/web/html_pages.parquet"
DEFAULT_JSON_DIR = "target/aeb"

# Han ideographs (+ extension A, compatibility), kana, hangul: "CJK" pages are
# those whose snippets use one of these, or whose host is under .cn.
CJK_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
CN_HOST_RE = re.compile(r"\.cn(?![a-z0-9])", re.IGNORECASE)


def norm(text: str) -> str:
    """Whitespace-normalize (trafilatura tests/eval_common.py norm)."""
    return re.sub(r"\s+", " ", text).strip()


def count_item(item: dict, result, normalize: bool = True) -> tuple:
    """Per-page (tp, fp, fn, tn), as trafilatura's eval_common.count_item.
    normalize=False is the plain `snippet in result` test of the evaluation
    script before June 2024 (tests/comparison.py), for older published numbers."""
    f = norm if normalize else (lambda x: x)
    if isinstance(result, str):
        resn = f(result)
        tp = sum(1 for w in item["with"] if f(w) in resn)
        fp = sum(1 for w in item["without"] if f(w) in resn)
    else:
        tp = fp = 0
    return tp, fp, len(item["with"]) - tp, len(item["without"]) - fp


@dataclass
class Matrix:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    pages: int = 0

    def add(self, counts):
        self.tp += counts[0]
        self.fp += counts[1]
        self.fn += counts[2]
        self.tn += counts[3]
        self.pages += 1

    def scores(self) -> dict:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        d = 2 * self.tp + self.fp + self.fn
        total = self.tp + self.fp + self.fn + self.tn
        return {
            "precision": p,
            "recall": r,
            "f1": 2 * self.tp / d if d else 0.0,
            "accuracy": (self.tp + self.tn) / total if total else 0.0,
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, "pages": self.pages,
        }


def load_pages(path: str, limit: int = 0) -> list:
    import pyarrow.parquet as pq
    rows = pq.read_table(path, columns=["url", "file", "html", "with", "without"]).to_pylist()
    if limit:
        rows = rows[:limit]
    for r in rows:
        r["with"] = json.loads(r["with"])
        r["without"] = json.loads(r["without"])
    return rows


def groups_of(row: dict) -> list:
    """Named subsets a page belongs to, reported beside the overall numbers."""
    out = []
    url = row["url"]
    host = url.split("/")[2] if "://" in url else url.split("::")[-1]
    snippets = " ".join(row["with"] + row["without"])
    if CJK_RE.search(snippets) or CN_HOST_RE.search(host):
        out.append("cjk")
    try:
        row["html"].decode("utf-8")
    except UnicodeDecodeError:
        out.append("non_utf8")   # where decoding choices matter
    return out


def score(rows: list, texts: list, normalize: bool = True) -> dict:
    """Overall and per-group scores, plus per-page counts (for diffing tools)."""
    overall = Matrix()
    groups = {}
    per_page = {}
    empty = []
    for row, text in zip(rows, texts):
        c = count_item(row, text, normalize)
        overall.add(c)
        for g in groups_of(row):
            groups.setdefault(g, Matrix()).add(c)
        per_page[row["file"]] = c
        if not text:
            empty.append(row["file"])
    return {
        "overall": overall.scores(),
        "groups": {g: m.scores() for g, m in sorted(groups.items())},
        "empty_outputs": empty,
        "per_page": per_page,
    }


def load_jsonl(path: str) -> dict:
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                d = json.loads(line)
                if d["file"] in out:
                    sys.exit(f"{path}:{n}: duplicate file {d['file']!r}")
                out[d["file"]] = d.get("text")
    return out


def table_header() -> str:
    return ("| extractor | version | pages | pages/s (1 core) | decode s | P | R | F1 | acc "
            "| TP/FP/FN/TN | empty | CJK TP/FP/FN/TN | non-UTF-8 F1 |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def table_line(res: dict) -> str:
    o = res["overall"]
    t = res.get("timing") or {}
    g = res["groups"]
    cells = [
        res["name"], res.get("version", "-"), str(o["pages"]),
        f"{t['pages_per_s']:.1f}" if t else "-",
        f"{t['decode_s']:.2f}" if t else "-",
        f"{o['precision']:.3f}", f"{o['recall']:.3f}", f"{o['f1']:.3f}", f"{o['accuracy']:.3f}",
        f"{o['tp']}/{o['fp']}/{o['fn']}/{o['tn']}",
        str(len(res["empty_outputs"])),
    ]
    cjk = g.get("cjk")
    cells.append(f"{cjk['tp']}/{cjk['fp']}/{cjk['fn']}/{cjk['tn']} ({cjk['pages']} p)" if cjk else "-")
    nu = g.get("non_utf8")
    cells.append(f"{nu['f1']:.3f} ({nu['pages']} p)" if nu else "-")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--extractor", nargs="+", choices=sorted(peers.PEERS), metavar="NAME",
                     help="peer(s) to run in-process: " + ", ".join(sorted(peers.PEERS)))
    src.add_argument("--from-jsonl", metavar="FILE",
                     help='score precomputed outputs, lines {"file": ..., "text": ...}; missing file = empty')
    ap.add_argument("--name", help="label for --from-jsonl results (default: the file's stem)")
    ap.add_argument("--parquet", default=DEFAULT_PARQUET)
    ap.add_argument("--json", metavar="PATH",
                    help=f"results file (default: {DEFAULT_JSON_DIR}/extract_eval-<name>.json; one per run)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="extraction passes; per-page time is the best of them (default 1)")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin to; -1: no pinning (default 0)")
    ap.add_argument("--limit", type=int, default=0, help="first N pages only (smoke test)")
    ap.add_argument("--raw-match", action="store_true",
                    help="match snippets without whitespace normalization (trafilatura's pre-2024 scoring)")
    ap.add_argument("--dump-jsonl", metavar="DIR",
                    help="also write each peer's outputs as DIR/<name>.jsonl (the --from-jsonl format)")
    args = ap.parse_args()

    rows = load_pages(args.parquet, args.limit)
    html_bytes = sum(len(r["html"]) for r in rows)
    results = []

    if args.from_jsonl:
        outputs = load_jsonl(args.from_jsonl)
        files = {r["file"] for r in rows}
        unknown = sorted(set(outputs) - files)
        if unknown:
            print(f"warning: {len(unknown)} files in {args.from_jsonl} are not in the parquet, e.g. {unknown[:3]}",
                  file=sys.stderr)
        name = args.name or os.path.splitext(os.path.basename(args.from_jsonl))[0]
        res = {"name": name, "source": args.from_jsonl,
               "missing": sum(1 for r in rows if r["file"] not in outputs)}
        res.update(score(rows, [outputs.get(r["file"]) for r in rows], not args.raw_match))
        results.append(res)
    else:
        cpu = peers.pin_to_one_core(args.cpu)
        for name in args.extractor:
            peer = peers.PEERS[name]
            print(f"running {name} on {len(rows)} pages (cpu {cpu}, {args.repeat} pass(es))...", file=sys.stderr)
            t = peers.run_peer(peer, [r["html"] for r in rows], repeat=args.repeat)
            res = {"name": name, "version": peer.version, "settings": peer.note, "cpu": cpu,
                   "timing": peers.timing_summary(t, html_bytes),
                   "errors": [(rows[i]["file"], e) for i, e in t.errors],
                   "none_outputs": [rows[i]["file"] for i, x in enumerate(t.texts) if x is None]}
            res.update(score(rows, t.texts, not args.raw_match))
            results.append(res)
            if args.dump_jsonl:
                os.makedirs(args.dump_jsonl, exist_ok=True)
                with open(os.path.join(args.dump_jsonl, f"{name}.jsonl"), "w", encoding="utf-8") as f:
                    for r, x in zip(rows, t.texts):
                        f.write(json.dumps({"file": r["file"], "text": x}, ensure_ascii=False) + "\n")

    print(table_header())
    for res in results:
        print(table_line(res))
        if res.get("errors"):
            print(f"  {res['name']}: {len(res['errors'])} exceptions, first: {res['errors'][0]}")
        if res.get("none_outputs"):
            print(f"  {res['name']}: returned None on {len(res['none_outputs'])} pages: "
                  f"{', '.join(res['none_outputs'][:8])}{' ...' if len(res['none_outputs']) > 8 else ''}")

    for res in results:
        path = json_path(args.json, res["name"], len(results))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(dict(res, parquet=args.parquet, raw_match=args.raw_match), f, indent=1, ensure_ascii=False)
        print(f"wrote {path}", file=sys.stderr)


def json_path(given, name: str, runs: int) -> str:
    """--json PATH as is for one run; for several, PATH's stem + -<name>.json each."""
    if given is None:
        return os.path.join(DEFAULT_JSON_DIR, f"extract_eval-{name}.json")
    if runs == 1:
        return given
    stem, ext = os.path.splitext(given)
    return f"{stem}-{name}{ext or '.json'}"


if __name__ == "__main__":
    main()
