//! A document as units (lines or paragraphs) between separators, and the
//! document rebuilt without some of its units. A unit's key is CCNet's
//! `normalize_for_dedup` (`text::ccnet`).

use super::Unit;

/// The byte ranges of a document's units, in order. Whitespace-only lines
/// are never units: they belong to the separators, so that removing a unit
/// (with the separator before it) never leaves a run of blank lines behind.
/// The separator before unit `k` is `units[k-1].1 .. units[k].0`.
pub fn split(text: &str, unit: Unit) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out: Vec<(usize, usize)> = vec![];
    let mut start = 0;
    // In paragraph mode: whether the last line was blank (a new paragraph
    // starts after a blank line or at the first non-blank one).
    let mut after_blank = true;
    while start <= bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let line = &text[start..end];
        if line.trim().is_empty() {
            after_blank = true;
        } else {
            match (unit, out.last_mut()) {
                (Unit::Paragraph, Some(last)) if !after_blank => last.1 = end,
                _ => out.push((start, end)),
            }
            after_blank = false;
        }
        start = end + 1;
    }
    out
}

/// The document without the units whose index `removed` holds (sorted,
/// ascending): what came before the first unit, the kept units each with
/// the separator that preceded it in the document (none before the first
/// one kept), and what came after the last unit.
pub fn rebuild(text: &str, units: &[(usize, usize)], removed: &[u32]) -> String {
    let (Some(first), Some(last)) = (units.first(), units.last()) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first.0]);
    let mut gone = removed.iter().peekable();
    let mut any_kept = false;
    for (k, &(s, e)) in units.iter().enumerate() {
        if gone.next_if(|&&r| r as usize == k).is_some() {
            continue;
        }
        if any_kept {
            out.push_str(&text[units[k - 1].1..s]);
        }
        out.push_str(&text[s..e]);
        any_kept = true;
    }
    out.push_str(&text[last.1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, unit: Unit) -> Vec<&str> {
        split(text, unit)
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect()
    }

    #[test]
    fn lines_and_paragraphs() {
        let t = "\n  \nA one\nA two\n\n \nB one\r\nB two\n";
        assert_eq!(
            pieces(t, Unit::Line),
            ["A one", "A two", "B one\r", "B two"]
        );
        assert_eq!(
            pieces(t, Unit::Paragraph),
            ["A one\nA two", "B one\r\nB two"]
        );
        assert!(split("", Unit::Line).is_empty());
        assert!(split(" \n\t\n", Unit::Paragraph).is_empty());
        assert_eq!(pieces("no newline", Unit::Line), ["no newline"]);
    }

    #[test]
    fn rebuilding_drops_a_unit_with_the_separator_before_it() {
        let t = "Intro\n\nShare this\n\nBody text\nMore body\n";
        let u = split(t, Unit::Line);
        assert_eq!(rebuild(t, &u, &[]), t);
        assert_eq!(rebuild(t, &u, &[1]), "Intro\n\nBody text\nMore body\n");
        assert_eq!(rebuild(t, &u, &[0]), "Share this\n\nBody text\nMore body\n");
        assert_eq!(rebuild(t, &u, &[3]), "Intro\n\nShare this\n\nBody text\n");
        assert_eq!(rebuild(t, &u, &[0, 1, 2, 3]), "\n");
        let p = split(t, Unit::Paragraph);
        assert_eq!(rebuild(t, &p, &[2]), "Intro\n\nShare this\n");
    }
}
