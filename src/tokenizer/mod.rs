//! Byte-level BPE at run time and for the trainer: pre-tokenisation presets,
//! the BPE algorithm (training from word counts, and encoding), the
//! `tokenizer.json` sluice writes, and any Hugging Face tokenizer loaded for
//! encoding. The `train-tokenizer` command itself is in `train::tokenizer`.

pub mod bpe;
pub mod extend;
pub mod fast;
pub mod fxhash;
pub mod hf;
pub mod lm;
pub mod load;
pub mod pretok;
pub mod prune;
pub mod sentencepiece;
pub mod spm_bpe;
pub mod wordcount;

/// Makes glibc give every large block its own mapping, returned to the
/// system when freed. By default glibc raises that threshold each time such
/// a block is freed, after which the trainer's growing tables come from the
/// heap, which cannot shrink behind the blocks still in use: on 53 MB of
/// text that took peak memory from 112 to 160 MB. (A fixed threshold also
/// lets a growing table be remapped in place instead of copied.)
pub(crate) fn limit_heap_fragmentation() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before
    // the worker pool starts allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// Hands freed memory back to the system between the trainer's phases:
/// glibc keeps freed blocks in its arenas, where the next phase's different
/// sizes cannot reuse them, and peak memory is what users size machines by.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
