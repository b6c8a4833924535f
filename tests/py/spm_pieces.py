"""Trains a SentencePiece unigram model (as CCNet trained its own: unigram,
character coverage 0.9995, the default nmt_nfkc normalisation) on the lines
of argv[1], writes it to argv[2], and prints as JSON the pieces
sentencepiece gives each line of argv[3]. The reference for tests/lm.rs."""
import json
import sys

import sentencepiece as spm

spm.SentencePieceTrainer.train(
    input=sys.argv[1], model_prefix=sys.argv[2], vocab_size=8000, model_type="unigram",
    character_coverage=0.9995, num_threads=1, minloglevel=2,
)
sp = spm.SentencePieceProcessor(model_file=sys.argv[2] + ".model")
lines = open(sys.argv[3], encoding="utf-8").read().split("\n")
json.dump([sp.encode_as_pieces(l) for l in lines], sys.stdout, ensure_ascii=False)
