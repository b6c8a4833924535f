//! Saved indexes (`save_index`, `index`): what must match between an
//! index and the run that reads it, and writing one task's kept documents.

use super::*;

/// Version of the index layout (ids in their own files since 2).
pub(super) const INDEX_FORMAT: u32 = 2;

/// What must match between an index and the run that reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub(super) struct IndexMeta {
    pub(super) bands: usize,
    pub(super) rows: usize,
    pub(super) seed: u64,
    pub(super) ngram: usize,
    pub(super) shingle: String,
    pub(super) verify_jaccard: bool,
    /// Tasks of the run that wrote the index: its parts are 0..tasks (a
    /// folder reused by a smaller run may hold stale higher-numbered parts).
    #[serde(default)]
    pub(super) tasks: usize,
    #[serde(default)]
    pub(super) format: u32,
}

/// One task of an earlier run's index.
pub(super) struct IndexTask {
    pub(super) parts: PathBuf,
    pub(super) ids: PathBuf,
    pub(super) shingles: PathBuf,
}

impl DedupMinhash {
    /// Writes the kept documents of one task as index entries: their band
    /// keys (one partition per band), their ids and, when verifying, their
    /// shingles.
    pub(super) fn save_index(
        &self,
        ctx: &GlobalCtx,
        task: usize,
        dir: &Path,
        decisions: &[Decision],
    ) -> Result<()> {
        let removed: std::collections::HashSet<u64> = decisions
            .iter()
            .filter(|d| d.kept.is_some())
            .map(|d| d.row)
            .collect();
        let per_band = self.per_band(ctx);
        let mut out = PartWriter::with_spill(
            &dir.join("parts").join(format!("{task:05}.part")),
            self.bands,
            (self.budget(ctx) / 2) as usize,
        );
        for p in 0..self.partitions(ctx) {
            let path = Self::observe_file(ctx, task);
            for r in records::<3>(&read_part(&path, p)?, &path)? {
                if !removed.contains(&r[1]) {
                    put_record(out.part(p / per_band), &r);
                }
            }
        }
        out.finish()?;
        let copy = |from: PathBuf, sub: &str| -> Result<()> {
            store::copy(&from, &dir.join(sub).join(format!("{task:05}.bin")))
        };
        copy(Self::id_file(ctx, task), "ids")?;
        if self.config.verify_jaccard {
            copy(Self::shingle_file(ctx, task), "shingles")?;
        }
        Ok(())
    }
}
