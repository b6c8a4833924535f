#!/usr/bin/env python3
"""Per-task overhead: a run over N one-line JSONL files (N tasks), for several
N, so that a cost growing with the tasks done before (a folder listed per
task, say) shows as time per task growing with N. No peer: this measures the
engine against itself.

    cargo build --release
    python3 benches/many_tasks.py [--sluice target/release/sluice] [N ...]

Prints, per N, the wall time of the run and the time per task; the output
folders are removed. Default N: 1000 2000 5000.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default="target/release/sluice")
    ap.add_argument("--workers", default="2")
    ap.add_argument("sizes", nargs="*", type=int, default=[1000, 2000, 5000])
    a = ap.parse_args()
    sluice = os.path.abspath(a.sluice)
    work = tempfile.mkdtemp(prefix="sluice-many-tasks-")
    try:
        print(f"{'tasks':>8} {'seconds':>9} {'ms/task':>8}")
        for n in a.sizes:
            inp = os.path.join(work, f"in{n}")
            os.makedirs(inp)
            for i in range(n):
                with open(os.path.join(inp, f"f{i:06}.jsonl"), "w") as f:
                    f.write(json.dumps({"text": f"document number {i}"}) + "\n")
            out = os.path.join(work, f"out{n}")
            spec = os.path.join(work, f"spec{n}.toml")
            with open(spec, "w") as f:
                f.write(f'[input]\npaths = ["{inp}"]\n\n[[step]]\nop = "length_filter"\n'
                        f'min_words = 1\n\n[output]\ndir = "{out}"\n')
            t = time.time()
            subprocess.run([sluice, "run", spec, "-q", "--workers", a.workers],
                           check=True, stdout=subprocess.DEVNULL)
            s = time.time() - t
            with open(os.path.join(out, "stats.json")) as f:
                assert json.load(f)["input"]["docs"] == n
            print(f"{n:>8} {s:>9.2f} {1000 * s / n:>8.2f}")
            shutil.rmtree(inp)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
