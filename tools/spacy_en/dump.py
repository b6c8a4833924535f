# Dumps spaCy (blank "en" + sentencizer) tokens and sentence counts of the conformance
# documents and the web pages, to compare with src/text/spacy_en (see tools/spacy_en/README.md).
import json, sys, spacy, pyarrow.parquet as pq
nlp = spacy.blank("en"); nlp.add_pipe("sentencizer"); nlp.max_length = 10**9
for f, out in [('/work/shared/conformance/docs.parquet','docs.jsonl'),('/work/shared/data/web/trafilatura_pages.parquet','traf.jsonl')]:
    t = pq.read_table(f, columns=['id','text']).to_pylist()
    with open(out,'w') as fo:
        for r in t:
            text = r['text'] or ''
            doc = nlp(text)
            toks = [tok.text_with_ws for tok in doc]
            toks = [tok.text for tok in doc]
            ns = len(list(doc.sents)) if len(doc) else 0
            lines = [l.strip() for l in text.splitlines()]
            lc = []
            for l in lines:
                if not l: continue
                d = nlp(l); lc.append(len(list(d.sents)))
            fo.write(json.dumps({'id':r['id'],'text':text,'tokens':toks,'nsents':ns,'line_sents':lc}, ensure_ascii=False)+'\n')
    print('done', out, flush=True)
