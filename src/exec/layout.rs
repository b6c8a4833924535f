//! Where a run keeps its files: the output folder, `_work/` (markers, the
//! plan, the intermediate rows between segments) and `excluded/`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use crate::io::store;

/// Where a run keeps its files.
pub struct Layout {
    pub out: PathBuf,
    pub work: PathBuf,
    pub excluded: PathBuf,
}

impl Layout {
    pub fn new(out: &Path) -> Layout {
        Layout {
            out: out.to_path_buf(),
            work: out.join("_work"),
            excluded: out.join("excluded"),
        }
    }
    pub fn marker(&self, phase: &str, task: usize) -> PathBuf {
        self.work
            .join("markers")
            .join(phase)
            .join(format!("{task:05}.json"))
    }
    /// The tasks of `phase` with a completion marker, and when each was
    /// written (one listing, not a look-up per task: on S3 that is one
    /// request per thousand tasks).
    pub fn done(&self, phase: &str) -> Result<std::collections::HashMap<usize, SystemTime>> {
        let dir = self.work.join("markers").join(phase);
        Ok(store::list_files_modified(&dir)?
            .into_iter()
            .filter_map(|(p, when)| {
                let name = p.file_name()?.to_str()?;
                Some((name.strip_suffix(".json")?.parse().ok()?, when))
            })
            .collect())
    }
    pub(super) fn intermediate(&self, segment: usize) -> PathBuf {
        self.work.join(format!("s{segment}"))
    }
}
