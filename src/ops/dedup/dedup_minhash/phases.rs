//! The observer (signatures and band keys per input task) and the middle
//! phases: buckets, components, clusters (decisions).

use super::signature::{mix, signature};
use super::*;

pub(super) struct MinhashObserver {
    pub(super) op: Arc<DedupMinhashView>,
    /// Band keys: `(key, row, score)` per band, in the band's partition.
    pub(super) out: PartWriter,
    /// Every row's id, read back only for kept documents that others
    /// duplicate, so ids never travel through the sort.
    pub(super) ids: RowStoreWriter,
    /// Every row's shingle hashes, when verifying.
    pub(super) shingles: Option<RowStoreWriter>,
}

/// What an observer needs of the op (cheap to share).
pub(super) struct DedupMinhashView {
    pub(super) seeds: Vec<u64>,
    pub(super) bands: usize,
    pub(super) rows: usize,
    pub(super) per_band: usize,
    pub(super) ngram: usize,
    pub(super) mode: ShingleMode,
    pub(super) lang_column: String,
    pub(super) keep: Option<String>,
}

impl Observer for MinhashObserver {
    fn observe(&mut self, batch: &DocBatch, first_row: u64) -> Result<()> {
        let v = &self.op;
        let langs = batch
            .data
            .column_by_name(&v.lang_column)
            .and_then(|c| cast(c, &DataType::Utf8).ok())
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
        let scores = KeepScores::read(batch, v.keep.as_deref(), "dedup_minhash")?;
        let mut blob = vec![];
        for (i, (text, id)) in batch.texts().iter().zip(batch.ids().iter()).enumerate() {
            let row = first_row + i as u64;
            let chars = match v.mode {
                ShingleMode::Chars => true,
                ShingleMode::Words => false,
                ShingleMode::Auto => langs
                    .as_ref()
                    .is_some_and(|l| !l.is_null(i) && UNSPACED_LANGS.contains(&l.value(i))),
            };
            let sh = shingles(text.unwrap_or(""), v.ngram, chars);
            self.ids.push(id.unwrap_or("").as_bytes())?;
            if let Some(store) = &mut self.shingles {
                blob.clear();
                blob.extend(sh.iter().flat_map(|s| s.to_le_bytes()));
                store.push(&blob)?;
            }
            if sh.is_empty() {
                continue; // nothing to compare: never a duplicate
            }
            let score = scores.get(i);
            let sig = signature(&v.seeds, &sh);
            for band in 0..v.bands {
                let bytes: Vec<u8> = sig[band * v.rows..(band + 1) * v.rows]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                let key = xxh3_64_with_seed(&bytes, band as u64);
                let p = band * v.per_band + (key % v.per_band as u64) as usize;
                let buf = self.out.part(p);
                put_u64(buf, key);
                put_u64(buf, row);
                put_u64(buf, score.to_bits());
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        if let Some(s) = self.shingles {
            s.finish()?;
        }
        self.ids.finish()?;
        self.out.finish()
    }
}

/// A document in the components phase: its place, its keep score.
#[derive(Clone, Copy)]
pub(super) struct Doc {
    g: u64,
    score: u64,
}

impl DedupMinhash {
    /// Phase 1, per (band, key range): documents sharing a key are
    /// candidates; edges join them. The keys are sorted externally, so a
    /// partition larger than the memory budget spills to sorted runs.
    pub(super) fn buckets(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let budget = self.budget(ctx);
        let mut sorter =
            ExternalSorter::<3>::new(&Self::sort_dir(ctx, "buckets", partition), budget / 2)?;
        for t in 0..ctx.tasks {
            let path = Self::observe_file(ctx, t);
            for [key, row, score] in records::<3>(&read_part(&path, partition)?, &path)? {
                sorter.push([key, global(t, row), score])?;
            }
        }
        // Earlier runs' documents of this band and key range, as tasks
        // numbered after this run's.
        let per_band = self.per_band(ctx);
        let (band, range) = (partition / per_band, (partition % per_band) as u64);
        for (i, old) in self.index_tasks.iter().enumerate() {
            for [key, row, score] in records::<3>(&read_part(&old.parts, band)?, &old.parts)? {
                if key % per_band as u64 == range {
                    sorter.push([key, global(ctx.tasks + i, row), score])?;
                }
            }
        }
        let mut store = self.shingle_store(ctx);
        let mut out =
            PartWriter::with_spill(&Self::edge_file(ctx, partition), 1, (budget / 8) as usize);
        let mut group: Vec<[u64; 3]> = vec![];
        let mut sorted = sorter.finish()?.peekable();
        while let Some(r) = sorted.next() {
            let r = r?;
            group.push(r);
            if let Some(Ok(next)) = sorted.peek() {
                if next[0] == r[0] {
                    continue;
                }
            }
            if group.len() > 1 {
                self.bucket_edges(&group, &mut store, &mut out)?;
            }
            group.clear();
        }
        out.finish()
    }

    /// Edges of one bucket (documents sharing a band key), as
    /// `(g, score, g, score)`.
    pub(super) fn bucket_edges(
        &self,
        group: &[[u64; 3]],
        store: &mut RowStore,
        out: &mut PartWriter,
    ) -> Result<()> {
        if !self.config.verify_jaccard {
            // Unverified candidates: a star around the group's first.
            for e in &group[1..] {
                put_record(out.part(0), &[group[0][1], group[0][2], e[1], e[2]]);
            }
            return Ok(());
        }
        // Each member is joined to the most recent of the 64 before it that
        // it really resembles: enough to connect the component; the clusters
        // phase then decides on true similarity to the documents it keeps.
        // Only the window's shingles are held.
        let mut window: std::collections::VecDeque<(&[u64; 3], Vec<u64>)> = Default::default();
        for b in group {
            let sb = store.get_u64s(task_of(b[1]), row_of(b[1]))?;
            if let Some((a, _)) = window
                .iter()
                .rev()
                .find(|(_, sa)| jaccard(sa, &sb) >= self.config.threshold)
            {
                put_record(out.part(0), &[a[1], a[2], b[1], b[2]]);
            }
            window.push_back((b, sb));
            if window.len() > 64 {
                window.pop_front();
            }
        }
        Ok(())
    }

    /// Phase 2, one task: union-find over every edge. Holds only the
    /// documents that have an edge (about 40 bytes each), never the corpus;
    /// writes each component's members to the clusters partition of its root.
    pub(super) fn components(&self, ctx: &GlobalCtx) -> Result<()> {
        let mut index: HashMap<u64, u32> = HashMap::new();
        let mut docs: Vec<Doc> = vec![];
        let mut parent: Vec<u32> = vec![];
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                parent[x as usize] = parent[parent[x as usize] as usize];
                x = parent[x as usize];
            }
            x
        }
        for p in 0..self.partitions(ctx) {
            let path = Self::edge_file(ctx, p);
            for [ga, sa, gb, sb] in records::<4>(&read_part(&path, 0)?, &path)? {
                let mut ends = [0u32; 2];
                for (end, (g, score)) in ends.iter_mut().zip([(ga, sa), (gb, sb)]) {
                    *end = *index.entry(g).or_insert_with(|| {
                        docs.push(Doc { g, score });
                        parent.push(parent.len() as u32);
                        parent.len() as u32 - 1
                    });
                }
                let (ra, rb) = (find(&mut parent, ends[0]), find(&mut parent, ends[1]));
                if ra != rb {
                    // The root is the earlier document: components get stable ids.
                    let (lo, hi) = if docs[ra as usize].g < docs[rb as usize].g {
                        (ra, rb)
                    } else {
                        (rb, ra)
                    };
                    parent[hi as usize] = lo;
                }
            }
        }
        drop(index);
        let partitions = self.partitions(ctx);
        let mut out = PartWriter::with_spill(
            &Self::component_file(ctx),
            partitions,
            (self.budget(ctx) / 8) as usize,
        );
        for i in 0..docs.len() {
            let root = docs[find(&mut parent, i as u32) as usize].g;
            let p = (mix(root) % partitions as u64) as usize;
            put_record(out.part(p), &[root, docs[i].g, docs[i].score]);
        }
        if let Some(dir) = &self.config.save_index {
            // Written once, here; each filter task then writes its part. A
            // reader checks that all `tasks` parts are there.
            let meta = IndexMeta {
                tasks: ctx.tasks,
                ..self.meta.clone()
            };
            write_atomic(&dir.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
        }
        out.finish()
    }

    /// Phase 3, per partition of components: which members go. Components
    /// are independent, so the greedy verification spreads over tasks.
    pub(super) fn clusters(&self, ctx: &GlobalCtx, partition: usize) -> Result<()> {
        let path = Self::component_file(ctx);
        let mut sorter = ExternalSorter::<3>::new(
            &Self::sort_dir(ctx, "clusters", partition),
            self.budget(ctx) / 4,
        )?;
        for r in records::<3>(&read_part(&path, partition)?, &path)? {
            sorter.push(r)?;
        }
        let mut shingles = self.shingle_store(ctx);
        let mut ids = self.id_store(ctx);
        let mut out = PartWriter::with_spill(
            &Self::decision_file(ctx, partition),
            ctx.tasks,
            (self.budget(ctx) / 4) as usize,
        );
        let mut members: Vec<Doc> = vec![];
        let mut sorted = sorter.finish()?.peekable();
        while let Some(r) = sorted.next() {
            let [root, g, score] = r?;
            members.push(Doc { g, score });
            if let Some(Ok(next)) = sorted.peek() {
                if next[0] == root {
                    continue;
                }
            }
            self.decide(ctx, root, &mut members, &mut shingles, &mut ids, &mut out)?;
            members.clear();
        }
        out.finish()
    }

    /// Keeps and removes the members of one component (`root` = its first
    /// document, its id).
    pub(super) fn decide(
        &self,
        ctx: &GlobalCtx,
        root: u64,
        members: &mut [Doc],
        shingles: &mut RowStore,
        ids: &mut RowStore,
        out: &mut PartWriter,
    ) -> Result<()> {
        // Keep order: documents of earlier runs first (kept already), then
        // the largest score, then input order.
        let old = |d: &Doc| task_of(d.g) >= ctx.tasks;
        members.sort_by(|a, b| {
            old(b)
                .cmp(&old(a))
                .then(f64::from_bits(b.score).total_cmp(&f64::from_bits(a.score)))
                .then(a.g.cmp(&b.g))
        });
        let verify = self.config.verify_jaccard;
        // With verification a document goes only when it is within the
        // threshold of a document already kept (checked on the shingles, not
        // on the bucket edges, which only say who is connected), so every
        // removal names a kept document it really resembles. Without it, one
        // document per component stays, as in datatrove.
        let mut kept: Vec<(u64, Vec<u64>, Option<String>)> = vec![];
        for m in members.iter() {
            let sh = if verify {
                shingles.get_u64s(task_of(m.g), row_of(m.g))?
            } else {
                vec![]
            };
            if old(m) {
                kept.push((m.g, sh, None));
                continue; // not this run's to write
            }
            let partner = if verify {
                kept.iter()
                    .position(|(_, k, _)| jaccard(&sh, k) >= self.config.threshold)
            } else {
                (!kept.is_empty()).then_some(0)
            };
            let kept_id = match partner {
                Some(i) => {
                    let (g, _, id) = &mut kept[i];
                    if id.is_none() {
                        *id = Some(ids.get_str(task_of(*g), row_of(*g))?);
                    }
                    id.clone()
                }
                None => {
                    kept.push((m.g, sh, None));
                    None
                }
            };
            put_decision(
                out.part(task_of(m.g)),
                row_of(m.g),
                root,
                members.len() as u64,
                kept_id.as_deref(),
            );
        }
        Ok(())
    }
}
