//! The hashes against KenLM's values, and back-off scoring on a small ARPA
//! worked by hand. Scores against KenLM itself (the `kenlm` module, and
//! binaries from `build_binary`) are in tests/lm.rs.

use super::*;

const ARPA: &str = "\\data\\
ngram 1=5
ngram 2=4
ngram 3=2

\\1-grams:
-1.0\t<unk>\t0
0\t<s>\t-0.5
-0.5\t</s>\t0
-0.7\ta\t-0.3
-0.9\tb\t-0.2

\\2-grams:
-0.3\t<s> a\t-0.1
-0.4\ta b\t-0.25
-0.2\tb </s>
-0.6\ta </s>

\\3-grams:
-0.1\t<s> a b
-0.05\ta b </s>

\\end\\
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn murmur_and_key_hashes_are_kenlms() {
    // Values of KenLM's util/murmur_hash.cc and lm/search_hashed.hh.
    assert_eq!(murmur_hash_64a(b"", 0), 0);
    assert_eq!(murmur_hash_64a(b"a", 0), 0x0717_17d2_d36b_6b11);
    assert_eq!(murmur_hash_64a(b"<unk>", 0), 0xea91_e756_1f5b_392b);
    assert_eq!(murmur_hash_64a(b"</s>", 0), 0x6be0_737d_f1f7_6c0a);
    assert_eq!(murmur_hash_64a(b"hello world!", 0), 0x64db_099b_d151_2951);
    assert_eq!(murmur_hash_64a("▁the".as_bytes(), 0), 0x5ff3_4cae_913b_33cd);
    assert_eq!(combine(5, 7), 0xadb0_5cd1_23e9_83a1);
    assert_eq!(combine(combine(5, 4), 3), 0x97c0_1e51_1bee_84be);
    assert_eq!(buckets(5, 1.5), 7);
    assert_eq!(buckets(1, 1.5), 2);
    assert_eq!(buckets(16_777_217, 1.5), 25_165_824);
}

#[test]
fn backoff_scores_worked_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Model::load(&write(tmp.path(), "m.arpa", ARPA)).unwrap();
    assert_eq!(m.order(), 3);
    let close = |a: f32, b: f32| assert!((a - b).abs() < 1e-6, "{a} != {b}");
    // p(a|<s>) bigram, p(b|<s> a) and p(</s>|a b) trigrams.
    close(m.score("a b", true, true), -0.3 - 0.1 - 0.05);
    // p(b|<s>) = p(b) + bow(<s>); p(a|<s> b) = p(a) + bow(b);
    // p(</s>|b a) = p(</s>|a) (no bow: "b a" is not in the model).
    close(
        m.score("b a", true, true),
        (-0.9 - 0.5) + (-0.7 - 0.2) - 0.6,
    );
    // An unknown word is <unk> (with <s>'s backoff), and ends the context.
    close(m.score("zzz", true, true), (-1.0 - 0.5) - 0.5);
    close(
        m.score("  a \t b\n", true, true),
        m.score("a b", true, true),
    );
    // Without <s>: p(a) and p(b|a); without </s>: nothing after.
    close(m.score("a b", false, false), -0.7 - 0.4);
    assert_eq!(m.index(b"a"), 3);
    assert_eq!(m.index(b"<unk>"), 0);
    assert_eq!(m.vocab_size(), 5);
    // gzip is read too.
    let gz = tmp.path().join("m.arpa.gz");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut e, ARPA.as_bytes()).unwrap();
    e.finish().unwrap();
    close(
        Model::load(&gz).unwrap().score("b a", true, true),
        m.score("b a", true, true),
    );
}

#[test]
fn missing_suffixes_are_filled_with_their_backoff_estimate() {
    // "x a b" without "a b": KenLM inserts the blank "a b" with
    // p(b) + bow(a), so p(b | y a) backs off to it.
    let arpa = "\\data\\\nngram 1=6\nngram 2=5\nngram 3=1\n\n\\1-grams:\n-1\t<unk>\t0\n0\t<s>\t0\n-0.5\t</s>\t0\n-0.7\ta\t-0.3\n-0.9\tb\t0\n-1.1\tx\t-0.4\n\n\\2-grams:\n-0.2\tx a\t-0.15\n-0.6\tb </s>\n-0.5\t<s> x\t0\n-1.0\tx x\n-1.0\tx b\n\n\\3-grams:\n-0.1\tx a b\n\n\\end\\\n";
    let tmp = tempfile::tempdir().unwrap();
    let m = Model::load(&write(tmp.path(), "m.arpa", arpa)).unwrap();
    let close = |a: f32, b: f32| assert!((a - b).abs() < 1e-6, "{a} != {b}");
    // <s> x: -0.5; x a: -0.2; x a b: -0.1; b </s>: -0.6.
    close(m.score("x a b", true, true), -0.5 - 0.2 - 0.1 - 0.6);
    // a b after <s>: p(a|<s>) = -0.7 + bow(<s>) 0; p(b|<s> a) = blank "a b"
    // (-0.9 + bow(a) -0.3); p(</s>|a b) = p(</s>|b) -0.6 + bow("a b") 0.
    close(m.score("a b", true, true), -0.7 + (-0.9 - 0.3) - 0.6);
}

#[test]
fn bad_files_are_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = |name: &str, text: &str| {
        format!(
            "{:#}",
            Model::load(&write(tmp.path(), name, text)).err().unwrap()
        )
    };
    assert!(err("a.arpa", "hello\n").contains("not an ARPA file"));
    let e = err("p.arpa", &ARPA.replace("-0.7\ta", "0.7\ta"));
    assert!(
        e.contains("positive log probability") && e.contains("line 10"),
        "{e}"
    );
    let e = err("c.arpa", &ARPA.replace("-0.05\ta b </s>\n", ""));
    assert!(e.contains("3-grams"), "{e}");
    let e = err("w.arpa", &ARPA.replace("-0.2\tb </s>", "-0.2\tq </s>"));
    assert!(e.contains("`q`"), "{e}");
    // A KenLM binary of another layout is named, not misread.
    let mut trie = vec![0u8; 200];
    trie[..51].copy_from_slice(b"mmap lm http://kheafield.com/code format version 4\n");
    std::fs::write(tmp.path().join("t.bin"), &trie).unwrap();
    let e = format!(
        "{:#}",
        Model::load(&tmp.path().join("t.bin")).err().unwrap()
    );
    assert!(e.contains("another format version"), "{e}");
}
