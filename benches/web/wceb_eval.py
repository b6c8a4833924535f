#!/usr/bin/env python3
"""Main-text extraction on pages `extract` was not tuned on: sluice vs
Python trafilatura vs Resiliparse, scored with the article-extraction-benchmark
metric (aeb_eval.py: 4-gram token shingles, per-page P and R averaged over
pages, F1 of the two averages).

Datasets (unpack with the search tool's fetch + git archive, under --root,
default target/wceb):

  readability   mozilla/readability test/test-pages/<name>/{source.html,
                expected.html}: 130 pages (the "readability" set of Bevendorff
                et al. 2023, "An Empirical Comparison of Web Content Extraction
                Algorithms"). Gold = the text of expected.html (Readability.js's
                own output, hand-checked by its maintainers), converted here with
                a block-aware HTML-to-text (a newline at each block element,
                nothing at inline ones, script/style dropped). Pages read as
                UTF-8 (the test harness does), U+FFFD on bad bytes.
      git --git-dir=/work/.mirror/mozilla+readability/repo archive HEAD test/test-pages \
        | tar -x -C target/wceb/readability
  wcxb-article  WCXB (Murrough-Foley/web-content-extraction-benchmark, v1.0,
  wcxb-other    2025 pages, CC-BY-4.0): {dev,test}/html/<id>.html.gz and
                {dev,test}/ground-truth/<id>.json; gold = ground_truth.main_content
                (LLM-drafted, reviewed). Split by the page type in the gold file
                (_internal.page_type.primary, "category" = collection, as the
                benchmark's evaluate.py reads it): "article" (news, blogs,
                guides) vs every other type (forum, product, service, listing,
                collection, documentation). Pages read as UTF-8 (its README's
                runner: gzip.open(..., 'rt', encoding='utf-8')), U+FFFD on bad bytes.
      git --git-dir=/work/.mirror/Murrough-Foley+web-content-extraction-benchmark/repo \
        archive HEAD | tar -x -C target/wceb/wcxb

(The ChatNoir benchmark itself, chatnoir-eu/web-content-extraction-benchmark,
keeps its datasets as Git LFS objects that the snapshot does not hold; so do
the forks, and dragnet's HTML archive is absent from seomoz/dragnet_data.)

Tools, each on one pinned core (peers.pin_to_one_core; sluice inherits it):
  trafilatura   peers.PEERS["trafilatura"]: extract(html, include_comments=False)
  resiliparse   peers.PEERS["resiliparse"]: extract_plain_text(html, main_content=True)
  sluice        the pages as JSONL {"id", "text": html}, then
                `sluice run spec.toml --workers 1 --force --quiet` with one
                `extract` step on column "text"; outputs from part-*.parquet;
                pages it dropped (extract:empty, in excluded/) score as empty.
Peers get the already-decoded str and only extraction is timed (per page, min
over --repeat); sluice's time is the whole process (start-up, JSONL reading,
Parquet writing included), min over --repeat runs.

Prints one markdown row per dataset x tool, then per dataset the --worst pages
where sluice's per-page F1 is furthest below trafilatura's; writes
target/wceb/results.json and each tool's outputs as
target/wceb/outputs/<dataset>-<tool>.jsonl.

  target/web-venv/bin/python benches/web/wceb_eval.py
  target/web-venv/bin/python benches/web/wceb_eval.py --dataset readability --tool sluice trafilatura
  # peers once, then sluice against their stored outputs and timings
  target/web-venv/bin/python benches/web/wceb_eval.py --tool trafilatura resiliparse --json target/wceb/results-peers.json
  target/web-venv/bin/python benches/web/wceb_eval.py --reuse-peers target/wceb/results-peers.json
"""

import argparse
import gzip
import html.parser
import json
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import peers  # this folder: pinning, peer extractors, timing loop (sets thread env vars first)
import aeb_eval  # this folder: the AEB metric

REPO = Path(__file__).resolve().parents[2]
DATASETS = ("readability", "wcxb-article", "wcxb-other")
TOOLS = ("trafilatura", "resiliparse", "sluice")


# --- gold for the readability set: expected.html -> text ------------------------

_BLOCK = {
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "ul", "body", "html",
}
_SKIP = {"script", "style", "noscript", "template"}


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    p = _Text()
    p.feed(markup)
    p.close()
    lines = (" ".join(line.split()) for line in "".join(p.parts).split("\n"))
    return "\n".join(line for line in lines if line)


# --- datasets -------------------------------------------------------------------

def _utf8(raw: bytes, bad: list, key: str) -> str:
    text = raw.decode("utf-8", errors="replace")
    if "\ufffd" in text and b"\xef\xbf\xbd" not in raw:
        bad.append(key)
    return text


def load_dataset(name: str, root: Path) -> tuple:
    """({id: gold text}, {id: html str}, notes dict)."""
    gold, pages, bad = {}, {}, []
    notes = {}
    if name == "readability":
        base = root / "readability" / "test" / "test-pages"
        notes["source"] = "mozilla/readability test/test-pages/*/{source.html,expected.html}"
        for d in sorted(p for p in base.iterdir() if p.is_dir()):
            src, exp = d / "source.html", d / "expected.html"
            if not (src.exists() and exp.exists()):
                notes.setdefault("skipped", []).append(d.name)
                continue
            pages[d.name] = _utf8(src.read_bytes(), bad, d.name)
            gold[d.name] = html_to_text(exp.read_text(encoding="utf-8", errors="replace"))
    elif name.startswith("wcxb-"):
        want_article = name == "wcxb-article"
        base = root / "wcxb"
        notes["source"] = "Murrough-Foley/web-content-extraction-benchmark {dev,test}/{html,ground-truth}"
        for split in ("dev", "test"):
            for gpath in sorted((base / split / "ground-truth").glob("*.json")):
                data = json.loads(gpath.read_text(encoding="utf-8"))
                truth = data.get("ground_truth")
                if not isinstance(truth, dict):
                    notes.setdefault("skipped", []).append(f"{split}/{gpath.stem}")
                    continue
                pt = (data.get("_internal") or {}).get("page_type", "article")
                if isinstance(pt, dict):
                    pt = pt.get("primary", "article")
                if not isinstance(pt, str):
                    pt = "article"
                pt = "collection" if pt == "category" else pt
                if (pt == "article") != want_article:
                    continue
                key = f"{split}/{gpath.stem}"
                with gzip.open(base / split / "html" / f"{gpath.stem}.html.gz", "rb") as f:
                    pages[key] = _utf8(f.read(), bad, key)
                gold[key] = truth.get("main_content") or ""
                notes.setdefault("page_types", {}).setdefault(pt, 0)
                notes["page_types"][pt] += 1  # before empty-gold pages are left out
    else:
        raise ValueError(name)
    notes["non_utf8_pages"] = bad
    # A page whose gold is empty (WCXB: an error page, a failed annotation) scores
    # nothing but noise under the shingle metric: left out, and listed.
    notes["empty_gold_dropped"] = [k for k, v in gold.items() if not v.strip()]
    for k in notes["empty_gold_dropped"]:
        del gold[k], pages[k]
    return gold, pages, notes


# --- sluice -----------------------------------------------------------------------

def run_sluice(binary: Path, keys: list, pages: dict, repeat: int, favour: str) -> tuple:
    with tempfile.TemporaryDirectory(prefix="wceb-sluice-", dir=REPO / "target" / "wceb") as tmp:
        tmp = Path(tmp)
        inp, out = tmp / "pages.jsonl", tmp / "out"
        with open(inp, "w", encoding="utf-8") as f:
            for k in keys:
                f.write(json.dumps({"id": k, "text": pages[k]}, ensure_ascii=False) + "\n")
        spec = (f'[input]\npaths = ["{inp}"]\n\n[[step]]\nop = "extract"\ncolumn = "text"\n'
                f'favour = "{favour}"\n\n[output]\ndir = "{out}"\n')
        runs = [peers.sluice_run(binary, spec, tmp) for _ in range(repeat)]
        pred = peers.parquet_column(out, "id", "text")
        dropped = peers.parquet_column(out / "excluded", "id", "drop_reason", "*.parquet")
    return pred, runs, dropped


def page_scores(tfn: tuple) -> tuple:
    p, r = aeb_eval._precision(*tfn), aeb_eval._recall(*tfn)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=REPO / "target" / "wceb", help="unpacked datasets")
    ap.add_argument("--dataset", nargs="+", choices=DATASETS, default=list(DATASETS))
    ap.add_argument("--tool", nargs="+", choices=TOOLS, default=list(TOOLS))
    ap.add_argument("--sluice", type=Path, default=REPO / "target" / "release" / "sluice")
    ap.add_argument("--favour", choices=["balanced", "precision", "recall"], default="balanced",
                    help="sluice's extract favour")
    ap.add_argument("--repeat", type=int, default=1, help="timing passes (min kept)")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin to; -1: no pinning")
    ap.add_argument("--worst", type=int, default=10, help="pages listed where sluice trails trafilatura most")
    ap.add_argument("--n-bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse-peers", type=Path, metavar="JSON",
                    help="take the peers' outputs (outputs/<dataset>-<tool>.jsonl) and timings from this "
                         "earlier results file instead of rerunning them")
    ap.add_argument("--json", type=Path, default=REPO / "target" / "wceb" / "results.json")
    args = ap.parse_args()

    cpu = peers.pin_to_one_core(args.cpu)
    outdir = args.json.parent / "outputs"
    outdir.mkdir(parents=True, exist_ok=True)
    results = {"cpu": cpu, "metric": "aeb_eval (4-gram shingles, macro P/R, F1 of means)", "datasets": {}}
    rows = []
    # Peers first (the sluice binary may still be building), then sluice on every dataset.
    loaded = {}
    for ds in args.dataset:
        gold, pages, notes = load_dataset(ds, args.root)
        keys = list(gold)
        loaded[ds] = (gold, pages, keys)
        results["datasets"][ds] = {"pages": len(keys), "notes": notes, "tools": {}}
        print(f"{ds}: {len(keys)} pages; notes: "
              f"{ {k: v if not isinstance(v, list) or len(v) < 8 else f'{len(v)} items' for k, v in notes.items()} }",
              file=sys.stderr)
    order = [t for t in args.tool if t != "sluice"] + (["sluice"] if "sluice" in args.tool else [])
    preds = {}
    reused = {}
    if args.reuse_peers:
        reused = {ds: d["tools"] for ds, d in json.loads(args.reuse_peers.read_text())["datasets"].items()}
    for tool in order:
        if tool == "sluice" and not args.sluice.exists():
            sys.exit(f"{args.sluice}: no such binary (cargo build --release first)")
        for ds in args.dataset:
            gold, pages, keys = loaded[ds]
            print(f"running {tool} on {ds} ({len(keys)} pages, cpu {cpu})...", file=sys.stderr)
            info = {}
            if tool == "sluice":
                pred, runs, dropped = run_sluice(args.sluice, keys, pages, args.repeat, args.favour)
                info["version"] = "target/release/sluice"
                info["wall_s"] = runs
                info["pages_per_s"] = len(keys) / min(runs)
                info["dropped"] = dropped
                info["missing"] = [k for k in keys if k not in pred and k not in dropped]
            elif args.reuse_peers and tool in reused.get(ds, {}):
                # a previous run's outputs and timings (same pages, same peer versions)
                info = {k: v for k, v in reused[ds][tool].items() if k not in ("metrics", "per_page", "empty")}
                info["reused_from"] = str(args.reuse_peers)
                with open(outdir / f"{ds}-{tool}.jsonl", encoding="utf-8") as f:
                    pred = {d["id"]: d["text"] for d in map(json.loads, f)}
            else:
                peer = peers.PEERS[tool]
                t = peers.run_peer(peer, keys, repeat=args.repeat, decoded=[pages[k] for k in keys])
                pred = dict(zip(keys, t.texts))
                info["version"] = peer.version
                info["settings"] = peer.note
                info["extract_s"] = sum(t.extract_s)
                info["pages_per_s"] = len(keys) / sum(t.extract_s)
                info["errors"] = [(keys[i], e) for i, e in t.errors]
            preds[(ds, tool)] = pred
            with open(outdir / f"{ds}-{tool}.jsonl", "w", encoding="utf-8") as f:
                for k in keys:
                    f.write(json.dumps({"id": k, "text": pred.get(k)}, ensure_ascii=False) + "\n")
            m = aeb_eval.evaluate({k: {"articleBody": gold[k]} for k in keys}, pred, args.n_bootstrap, args.seed)
            info["empty"] = sum(1 for k in keys if not pred.get(k))
            info["metrics"] = {k: v for k, v in m.items() if k != "per_page"}
            info["per_page"] = {k: dict(zip(("p", "r", "f1"), page_scores(v["tp_fp_fn"])))
                                for k, v in m["per_page"].items()}
            results["datasets"][ds]["tools"][tool] = info
            rows.append((ds, len(keys), tool, m, info))

    print("| dataset | pages | tool | P | R | F1 | pages/s (1 core) | empty |")
    print("|---|---|---|---|---|---|---|---|")
    for ds, n, tool, m, info in sorted(rows, key=lambda r: (args.dataset.index(r[0]), TOOLS.index(r[2]))):
        print(f"| {ds} | {n} | {tool} | {m['precision']:.3f} | {m['recall']:.3f} | "
              f"{m['f1']:.3f} ± {m['f1_std']:.3f} | {info['pages_per_s']:.1f} | {info['empty']} |")

    for ds in args.dataset:
        tools = results["datasets"][ds]["tools"]
        if "sluice" not in tools or "trafilatura" not in tools:
            continue
        gold, pages, keys = loaded[ds]
        s, t = tools["sluice"]["per_page"], tools["trafilatura"]["per_page"]
        worst = sorted(keys, key=lambda k: s[k]["f1"] - t[k]["f1"])[:args.worst]
        lst = []
        print(f"\n{ds}: pages where sluice's F1 is furthest below trafilatura's")
        print("| id | sluice F1 (P/R) | trafilatura F1 (P/R) | gold / sluice / traf chars |")
        print("|---|---|---|---|")
        for k in worst:
            sl = len(preds[(ds, "sluice")].get(k) or "")
            tl = len(preds[(ds, "trafilatura")].get(k) or "")
            print(f"| {k} | {s[k]['f1']:.3f} ({s[k]['p']:.2f}/{s[k]['r']:.2f}) | "
                  f"{t[k]['f1']:.3f} ({t[k]['p']:.2f}/{t[k]['r']:.2f}) | {len(gold[k])} / {sl} / {tl} |")
            lst.append({"id": k, "sluice": s[k], "trafilatura": t[k],
                        "chars": {"gold": len(gold[k]), "sluice": sl, "trafilatura": tl}})
        results["datasets"][ds]["worst_vs_trafilatura"] = lst
        wins = sum(1 for k in keys if s[k]["f1"] > t[k]["f1"] + 1e-9)
        losses = sum(1 for k in keys if s[k]["f1"] < t[k]["f1"] - 1e-9)
        results["datasets"][ds]["sluice_vs_trafilatura_pages"] = {"better": wins, "worse": losses,
                                                                  "tied": len(keys) - wins - losses}
        print(f"sluice better on {wins}, worse on {losses}, tied on {len(keys) - wins - losses} pages")

    results["versions"] = {"trafilatura": version("trafilatura"), "resiliparse": version("resiliparse")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
