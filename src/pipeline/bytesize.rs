//! Sizes in specs: an integer of bytes, or a string with a unit
//! (`"512MB"`, `"1GiB"`, `"1.5 GB"`). Decimal units are powers of 1000,
//! binary ones (`KiB`, `MiB`, `GiB`, `TiB`) powers of 1024.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write bytes, or a number with a unit such as \"512MB\" or \"1GiB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}` (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    if !num.is_finite() || num < 0.0 {
        return Err(format!("`{s}` is not a size"));
    }
    Ok((num * mult as f64).round() as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size: bytes as an integer, or a string such as \"1GB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// As the spec would write it: whole binary units where they fit
/// (`"2GiB"`), else bytes. `sluice ops` shows defaults this way.
impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n.is_multiple_of(1u64 << shift) {
                return s.serialize_str(&format!("{}{unit}", n >> shift));
            }
        }
        s.serialize_u64(n)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn shown_as_written() {
        let show = |n| {
            toml::Value::try_from(super::ByteSize(n))
                .unwrap()
                .to_string()
        };
        assert_eq!(show(2 << 30), "\"2GiB\"");
        assert_eq!(show(512 << 20), "\"512MiB\"");
        assert_eq!(show(1000), "1000");
        assert_eq!(parse("2GiB"), Ok(2 << 30), "what it shows reads back");
    }

    #[test]
    fn units() {
        assert_eq!(parse("1GB"), Ok(1_000_000_000));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("1.5 gb"), Ok(1_500_000_000));
        assert_eq!(parse("512MiB"), Ok(512 << 20));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("1 GG").unwrap_err().contains("unknown unit"));
        assert!(parse("lots").is_err());
    }
}
