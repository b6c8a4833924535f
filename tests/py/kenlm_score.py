"""Scores documents with KenLM's own Python module, as CCNet's DocLM does:
per non-blank line model.score(line, bos=True, eos=True), tokens =
len(line.split()) + 1. Reads JSON lines {"id", "text"} from stdin, writes
{"id": [sum of log10 p, tokens]} as one JSON object. The reference for
tests/lm.rs."""
import json
import sys

import kenlm

model = kenlm.Model(sys.argv[1])
out = {}
for line in sys.stdin:
    doc = json.loads(line)
    logp, n = 0.0, 0
    for l in doc["text"].split("\n"):
        if not l.strip():
            continue
        logp += model.score(l, bos=True, eos=True)
        n += len(l.split()) + 1
    out[doc["id"]] = [logp, n]
json.dump(out, sys.stdout)
