# Generates src/text/spacy_en/tables.rs from the installed spaCy (pip install spacy==3.8.18):
#   python3 tools/spacy_en/gen.py > src/text/spacy_en/tables.rs
import re, sys, unicodedata, spacy
from spacy.tokenizer import Tokenizer
from spacy.lang import char_classes as cc
from spacy.lang.punctuation import TOKENIZER_PREFIXES, TOKENIZER_SUFFIXES
from spacy.lang.en.punctuation import TOKENIZER_INFIXES
from spacy.lang.tokenizer_exceptions import URL_PATTERN
from spacy.pipeline.sentencizer import Sentencizer

nlp = spacy.blank("en"); t = nlp.tokenizer
MAXC = 0x110000
out = []
def ranges_of(pred):
    rs = []; start = None
    for c in range(MAXC):
        if 0xD800 <= c <= 0xDFFF:
            ok = False
        else:
            ok = pred(c)
        if ok and start is None: start = c
        if not ok and start is not None: rs.append((start, c - 1)); start = None
    if start is not None: rs.append((start, MAXC - 1))
    return rs
def cls_ranges(cls):
    r = re.compile(cls)
    return ranges_of(lambda c: r.fullmatch(chr(c)) is not None)
def emit(name, rs):
    out.append(f"static {name}: &[(u32, u32)] = &[" + ",".join(f"(0x{a:X},0x{b:X})" for a, b in rs) + "];")
def rlit(s):
    return '"' + ''.join(c if (c.isprintable() and c not in '"\\') else '\\u{%x}' % ord(c) for c in s) + '"'

# character classes (taken from the compiled regexes' pieces)
emit("CLS_ICONS", cls_ranges("[%s]" % cc._other_symbols))
emit("CLS_ALPHA", cls_ranges("[%s]" % cc.ALPHA))
emit("CLS_ALPHA_UPPER", cls_ranges("[%s]" % cc.ALPHA_UPPER))
emit("CLS_AL_Q", cls_ranges("[%s%s]" % (cc.ALPHA_LOWER, cc.CONCAT_QUOTES)))
emit("CLS_AU_Q", cls_ranges("[%s%s]" % (cc.ALPHA_UPPER, cc.CONCAT_QUOTES)))
# suffix '.' lookbehind class
suf_dot = [p for p in TOKENIZER_SUFFIXES if p.endswith(r"])\.") and p.startswith("(?<=[0-9")][0]
emit("CLS_SUFDOT", cls_ranges(suf_dot[len("(?<="):-len(r")\.")]))
emit("CLS_PUNCT_CAT", ranges_of(lambda c: unicodedata.category(chr(c)).startswith("P")))
emit("CLS_ISSPACE", ranges_of(lambda c: chr(c).isspace()))


def unesc(p):
    # literal regex piece -> string, or None if not literal
    s = re.sub(r"\\(.)", r"\1", p)
    if re.escape(s) == p or re.fullmatch(p, s) and not re.search(r"[\[\]()?*+^$|{}]", p.replace("\\", "").replace(s, "")):
        if re.fullmatch(p, s): return s
    return None
# prefixes in order
pre = []
for p in [x for x in TOKENIZER_PREFIXES if x.strip()]:
    if p == r"\+(?![0-9])": pre.append("Pre::PlusNotDigit")
    elif p == r"\.\.+": pre.append("Pre::Dots")
    elif p.startswith("[") and p.endswith("]"): assert p == "[%s]" % cc._other_symbols; pre.append("Pre::Icon")
    else:
        s = unesc(p); assert s is not None and re.fullmatch(p, s), p
        pre.append(f"Pre::Lit({rlit(s)})")
out.append("static PREFIXES: &[Pre] = &[" + ",".join(pre) + "];")
# suffixes
lits = []; lb_digit = []; 
for p in [x for x in TOKENIZER_SUFFIXES if x.strip()]:
    if p == r"\.\.+": continue
    if p.startswith("[") and p.endswith("]"): assert p == "[%s]" % cc._other_symbols; continue
    if p.startswith("(?<="):
        if p.startswith("(?<=[0-9])(?:"):
            body = p[len("(?<=[0-9])(?:"):-1]
            for a in body.split("|"):
                s = unesc(a); assert s is not None, a; lb_digit.append(s)
        elif p == r"(?<=[0-9])\+": lb_digit.append("+")
        else: print("lookbehind", p[:40], file=sys.stderr)
        continue
    s = unesc(p); assert s is not None, p; lits.append(s)
out.append("static SUFFIX_LITS: &[&str] = &[" + ",".join(rlit(s) for s in sorted(set(lits))) + "];")
out.append("static SUFFIX_AFTER_DIGIT: &[&str] = &[" + ",".join(rlit(s) for s in sorted(set(lb_digit))) + "];")
print("infixes:", [p[:30] for p in TOKENIZER_INFIXES], file=sys.stderr)
hy = [h for h in cc.HYPHENS.split("|")]
out.append("static HYPHENS: &[&str] = &[" + ",".join(rlit(h) for h in hy) + "];")

# tokenizer exceptions
rules = t.rules
keys = sorted(rules)
ent = []
for k in keys:
    parts = [d[65] for d in rules[k]]
    assert "".join(parts) == k
    ent.append("(%s,&[%s])" % (rlit(k), ",".join(rlit(p) for p in parts)))
out.append("static SPECIALS: &[(&str, &[&str])] = &[" + ",\n".join(ent) + "];")
t2 = Tokenizer(nlp.vocab, rules={}, prefix_search=t.prefix_search, suffix_search=t.suffix_search,
               infix_finditer=t.infix_finditer, url_match=t.url_match)
m = [k for k in keys if t.find_prefix(k) or t.find_suffix(k) or t.find_infix(k) or " " in k]
ent = []
for k in m:
    toks = [x.text for x in t2(k)]
    ent.append("(%s,&[%s])" % (rlit(k), ",".join(rlit(p) for p in toks)))
out.append("static MATCHER_PATTERNS: &[(&str, &[&str])] = &[" + ",\n".join(ent) + "];")
pc = sorted(Sentencizer.default_punct_chars)
assert all(len(c) == 1 for c in pc), pc
out.append("static SENT_PUNCT: &[char] = &[" + ",".join("'\\u{%x}'" % ord(c) for c in pc) + "];")
# alpha lower for URL TLD as rust regex class body
def rcls(rs): return "".join(("\\x{%X}" % a) if a == b else ("\\x{%X}-\\x{%X}" % (a, b)) for a, b in rs)
out.append("static URL_ALPHA_LOWER: &str = " + rlit(rcls(cls_ranges("[%s]" % cc.ALPHA_LOWER))) + ";")
out.append("// URL_PATTERN: " + URL_PATTERN.encode("unicode_escape").decode()[:0])
sys.stdout.write("\n".join(out) + "\n")
sys.stdout.write("static URL_WORD: &str = " + rlit(rcls(ranges_of(lambda c: chr(c).isalnum() or c == 0x5F))) + ";\n")
