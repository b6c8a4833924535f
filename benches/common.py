"""What several benchmark scripts share (imported from the benches/ folder,
which Python puts on the path when a script there is run)."""

import hashlib
import os


def shard_digests(out):
    """sha256 of every shard a run wrote to `out` (kept and excluded), by
    relative name: two runs wrote the same bytes when these are equal."""
    h = {}
    for sub in ("", "excluded"):
        d = os.path.join(out, sub)
        for f in sorted(os.listdir(d)):
            if f.endswith(".parquet"):
                with open(os.path.join(d, f), "rb") as fh:
                    h[os.path.join(sub, f)] = hashlib.sha256(fh.read()).hexdigest()
    return h
