//! KenLM's binary format, as `build_binary` writes it (lm/binary_format.cc,
//! lm/search_hashed.cc, lm/vocab.cc): the probing and rest-probing types,
//! mapped into memory and read in place. Tries (`build_binary trie`) are
//! refused with the command that makes a probing file instead.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::table::{EntryKind, Table};
use super::{buckets, murmur_hash_64a, Model, MAX_ORDER};

const MAGIC_PREFIX: &[u8] = b"mmap lm http://kheafield.com/code";
const MAGIC: &[u8] = b"mmap lm http://kheafield.com/code format version 5\n";
const SANITY_LEN: usize = 88;
const MODEL_TYPES: [&str; 6] = [
    "probing hash tables",
    "probing hash tables with rest costs",
    "trie",
    "trie with quantization",
    "trie with array-compressed pointers",
    "trie with quantization and array-compressed pointers",
];

/// The 88 bytes every binary of this format version, byte order and
/// compiler layout starts with (`Sanity`).
pub(crate) fn sanity() -> [u8; SANITY_LEN] {
    let mut s = [0u8; SANITY_LEN];
    s[..MAGIC.len()].copy_from_slice(MAGIC);
    s[56..60].copy_from_slice(&0.0f32.to_le_bytes());
    s[60..64].copy_from_slice(&1.0f32.to_le_bytes());
    s[64..68].copy_from_slice(&(-0.5f32).to_le_bytes());
    s[68..72].copy_from_slice(&1u32.to_le_bytes());
    s[72..76].copy_from_slice(&u32::MAX.to_le_bytes());
    s[80..88].copy_from_slice(&1u64.to_le_bytes());
    s
}

/// Whether the file is a KenLM binary (else it is read as ARPA).
pub fn is_binary(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = vec![0u8; MAGIC_PREFIX.len()];
    Ok(f.read_exact(&mut head).is_ok() && head == MAGIC_PREFIX)
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

pub fn load(path: &Path) -> Result<Model> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is read-only and the file is not ours to change; a
    // process truncating it under a run would make reads fault, as for any
    // mapped model (KenLM maps it the same way).
    let map = unsafe { memmap2::Mmap::map(&file) }.context("cannot map the file")?;
    let data: super::table::Backing = Arc::new(map);
    let b: &[u8] = (*data).as_ref();
    if b.len() <= SANITY_LEN || b[..SANITY_LEN] != sanity() {
        if b.starts_with(b"mmap lm http://kheafield.com/code incomplete\n") {
            bail!("the binary file was not finished (build_binary stopped while writing it)");
        }
        bail!(
            "a KenLM binary of another format version, byte order or build: rebuild it with \
             this machine's `build_binary`, or give the ARPA file"
        );
    }
    let order = b[88] as usize;
    let multiplier = f32::from_le_bytes(b[92..96].try_into().expect("4 bytes"));
    let model_type = u32::from_le_bytes(b[96..100].try_into().expect("4 bytes"));
    let search_version = u32::from_le_bytes(b[104..108].try_into().expect("4 bytes"));
    let rest = match model_type {
        0 => false,
        1 => true,
        t => bail!(
            "KenLM binaries with {} (model type {t}) are not supported: rebuild it with \
             `build_binary probing model.arpa model.binary`, or give the ARPA file",
            MODEL_TYPES.get(t as usize).unwrap_or(&"an unknown layout")
        ),
    };
    if search_version != 0 {
        bail!("probing search version {search_version}; sluice reads version 0");
    }
    if !(2..=MAX_ORDER).contains(&order) {
        bail!("order {order}: sluice scores orders 2 to {MAX_ORDER}");
    }
    if multiplier.is_nan() || multiplier < 1.0 {
        bail!("probing multiplier {multiplier} is below 1");
    }
    let counts_end = 108 + 8 * order;
    if b.len() < counts_end {
        bail!("the file is cut short in its header");
    }
    let counts: Vec<u64> = (0..order)
        .map(|i| u64::from_le_bytes(b[108 + 8 * i..116 + 8 * i].try_into().expect("8 bytes")))
        .collect();
    if counts[0] == 0 || counts[0] >= u32::MAX as u64 {
        bail!("{} unigrams", counts[0]);
    }
    let mut at = align8(counts_end);
    // The vocabulary: a version, the number of ids, the hash table.
    let need = |at: usize, len: u64| -> Result<usize> {
        let end = (at as u64)
            .checked_add(len)
            .filter(|&e| e <= b.len() as u64);
        match end {
            Some(e) => Ok(e as usize),
            None => bail!(
                "the file is cut short: its header's counts need more than its {} bytes",
                b.len()
            ),
        }
    };
    need(at, 8)?;
    let version = u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    let bound = u32::from_le_bytes(b[at + 4..at + 8].try_into().expect("4 bytes"));
    if version != 0 {
        bail!("vocabulary version {version}; sluice reads version 0");
    }
    at += 8;
    let table = |buckets: u64, kind: EntryKind, at: &mut usize| -> Result<Table> {
        let end = need(*at, Table::bytes_len(buckets, kind))?;
        let t = Table::new(data.clone(), *at, buckets, kind);
        *at = end;
        Ok(t)
    };
    let vocab = table(buckets(counts[0], multiplier), EntryKind::Vocab, &mut at)?;
    let unigrams = table(counts[0] + 1, EntryKind::Unigram { rest }, &mut at)?;
    let mut middle = vec![];
    for n in 2..order {
        middle.push(table(
            buckets(counts[n - 1], multiplier),
            EntryKind::Middle { rest },
            &mut at,
        )?);
    }
    let longest = table(
        buckets(counts[order - 1], multiplier),
        EntryKind::Longest,
        &mut at,
    )?;
    if bound as u64 > counts[0] + 1 {
        bail!(
            "the vocabulary claims {bound} ids for {} unigrams",
            counts[0]
        );
    }
    let bos = vocab.vocab_id(murmur_hash_64a(b"<s>", 0));
    let eos = vocab.vocab_id(murmur_hash_64a(b"</s>", 0));
    if bos == 0 || eos == 0 {
        bail!("the vocabulary lacks <s> or </s>");
    }
    if bos as u64 > counts[0] || eos as u64 > counts[0] {
        bail!("the vocabulary gives <s> or </s> an id past the unigrams: the file is damaged");
    }
    Ok(Model {
        order,
        counts: counts.clone(),
        vocab,
        unigrams,
        middle,
        longest,
        bos,
        eos,
        path: Default::default(),
        bound,
        max_id: counts[0] as u32,
    })
}

/// Writes `model` in the layout `load` reads and KenLM's `build_binary`
/// writes for a probing model (lm/binary_format.cc, lm/vocab.cc,
/// lm/search_hashed.cc): the sanity header, the fixed-width parameters
/// (order, probing multiplier, model type 0, "has vocabulary", search
/// version 0), the counts, padding to 8; the vocabulary's version and
/// bound and its hash table; the unigrams; each middle order's table; the
/// longest order's; then the words, each ended by a NUL, in id order.
pub fn write(model: &Model, words: &[&str], path: &Path) -> Result<()> {
    use std::io::Write;
    anyhow::ensure!(
        words.len() as u64 == model.counts[0] && words.first() == Some(&"<unk>"),
        "write_binary needs the {} unigrams' words by id, <unk> first (a bug)",
        model.counts[0]
    );
    let tmp = path.with_extension("partial");
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    // KenLM writes "incomplete" first and the real header last, so that a
    // file cut short is recognised; here the file only takes its name when
    // whole.
    let mut head = sanity().to_vec();
    head.push(model.order as u8);
    head.extend_from_slice(&[0; 3]);
    head.extend_from_slice(&super::PROBING_MULTIPLIER.to_le_bytes());
    head.extend_from_slice(&0u32.to_le_bytes());
    head.push(1);
    head.extend_from_slice(&[0; 3]);
    head.extend_from_slice(&0u32.to_le_bytes());
    for c in &model.counts {
        head.extend_from_slice(&c.to_le_bytes());
    }
    head.resize(align8(head.len()), 0);
    out.write_all(&head)?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&model.bound.to_le_bytes())?;
    out.write_all(model.vocab.bytes())?;
    out.write_all(model.unigrams.bytes())?;
    for t in &model.middle {
        out.write_all(t.bytes())?;
    }
    out.write_all(model.longest.bytes())?;
    for w in words {
        out.write_all(w.as_bytes())?;
        out.write_all(&[0])?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
