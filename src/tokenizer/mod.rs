//! BPE tokenizer training (`sluice train-tokenizer`) and the tokenizer it
//! writes: pre-tokenisation presets, the trainer, `tokenizer.json`.

pub mod bpe;
pub mod fxhash;
pub mod hf;
pub mod pretok;
pub mod spec;
pub mod train;
pub mod wordcount;

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
