#!/usr/bin/env python3
"""url_filter with a blocklist of UT1's size: what loading it costs.

UT1's `adult` category lists about 4.6 million domains (and FineWeb's URL
filter loads it). This writes a UT1-layout folder of --domains synthetic
domains (random labels under common top-level domains; none is a fixture
page's host, so both runs keep the same pages) into target/, then runs
`sluice run` with one worker over fixtures/web/pages.warc.gz twice: with
url_filter and that list, and with url_filter and no blocklist. The
difference in wall time and peak RSS (/usr/bin/time -v) is what the list
costs: reading it, hashing each entry, and the table of 16-byte entries.

From the repository root after `cargo build --release`:
  python3 benches/web/url_lists.py --domains 4600000
"""

import argparse
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TLDS = ["com", "net", "org", "de", "ru", "info", "nl", "fr", "co.uk", "xyz", "cn", "jp"]


def make_list(folder: Path, n: int, seed: int) -> int:
    domains = folder / "adult" / "domains"
    if domains.exists() and sum(1 for _ in domains.open()) == n:
        return domains.stat().st_size
    domains.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    with domains.open("w") as f:
        for _ in range(n):
            label = "".join(rng.choice(letters) for _ in range(rng.randint(5, 16)))
            sub = "www." if rng.random() < 0.1 else ""
            f.write(f"{sub}{label}.{rng.choice(TLDS)}\n")
    return domains.stat().st_size


def run(binary: str, blocklist: list, work: Path, name: str) -> dict:
    out = work / name
    spec = work / f"{name}.toml"
    spec.write_text(
        f'[input]\npaths = ["{REPO}/fixtures/web/pages.warc.gz"]\n\n'
        f'[[step]]\nop = "url_filter"\nblocklist = {json.dumps(blocklist)}\n\n'
        f'[output]\ndir = "{out}"\n'
    )
    r = subprocess.run(
        ["/usr/bin/time", "-v", binary, "run", str(spec), "--workers", "1", "--force", "--quiet"],
        check=True, capture_output=True, text=True,
    )
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    stats = json.loads((out / "stats.json").read_text())
    return {
        "seconds": int(h or 0) * 3600 + int(m) * 60 + float(s),
        "rss_mb": rss / 1024,
        "kept": stats["kept"]["docs"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=4_600_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sluice", default=str(REPO / "target/release/sluice"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    folder = REPO / "target" / "url_lists" / f"ut1-{args.domains}"
    size = make_list(folder, args.domains, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, blocklist in [("no_list", []), ("list", [str(folder)])]:
            runs = [run(args.sluice, blocklist, Path(tmp), name) for _ in range(args.repeat)]
            results[name] = min(runs, key=lambda r: r["seconds"])
    base, big = results["no_list"], results["list"]
    print(f"blocklist: {args.domains:,} domains, {size / 1e6:.1f} MB")
    print("| run | seconds | peak RSS MB | kept |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.2f} | {r['rss_mb']:.0f} | {r['kept']} |")
    extra = big["rss_mb"] - base["rss_mb"]
    print(f"the list costs {big['seconds'] - base['seconds']:.2f} s and {extra:.0f} MB "
          f"({extra * 1024 * 1024 / args.domains:.1f} bytes a domain)")


if __name__ == "__main__":
    main()
