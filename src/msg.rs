//! What sluice tells the person running it, on stderr: every message goes
//! through here, with one prefix and a level, so that a log shows at a
//! glance what came from sluice and what needs a look.
//!
//! ```text
//! sluice: phase s0: 12/40 tasks, …             (info: progress, what was chosen)
//! sluice: note: --workers 0 taken as 1          (note: a choice made for the user)
//! sluice: warning: /data has 3.1 GB free; …     (warning: the run goes on, but look)
//! sluice: error: spec.toml:4: …                 (error: the command failed)
//! ```
//!
//! Errors a user can act on say what to do; a failure that can only be a
//! bug in sluice says so with [`BUG`].

use std::fmt::Display;

/// How much a message matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Note,
    Warning,
    Error,
}

/// The words that mark an internal error: what went wrong is sluice's
/// fault, not the input's or the spec's.
pub const BUG: &str = "internal error (a bug; please report it)";

/// The line as printed (without the newline).
pub fn format(level: Level, message: impl Display) -> String {
    let tag = match level {
        Level::Info => "",
        Level::Note => "note: ",
        Level::Warning => "warning: ",
        Level::Error => "error: ",
    };
    format!("sluice: {tag}{message}")
}

pub fn say(level: Level, message: impl Display) {
    eprintln!("{}", format(level, message));
}

pub fn info(message: impl Display) {
    say(Level::Info, message)
}

pub fn note(message: impl Display) {
    say(Level::Note, message)
}

pub fn warning(message: impl Display) {
    say(Level::Warning, message)
}

pub fn error(message: impl Display) {
    say(Level::Error, message)
}

/// 1234567 as "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_prefix_and_the_level() {
        assert_eq!(format(Level::Info, "phase s0"), "sluice: phase s0");
        assert_eq!(format(Level::Note, "x"), "sluice: note: x");
        assert_eq!(format(Level::Warning, "x"), "sluice: warning: x");
        assert_eq!(format(Level::Error, "x"), "sluice: error: x");
    }
}
