//! Sizes and durations as people write them in compose files.

use std::time::Duration;

/// A size, CPU share or duration that cannot be read. The messages name the text as written
/// and show a form that works; callers add which key or flag it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid memory size `{0}`: expected a number, e.g. `512KiB`, `1MiB`")]
    MemoryNoNumber(String),
    #[error("invalid memory unit `{unit}` in `{text}`: use B, KiB, MiB, GiB, KB, MB or GB")]
    MemoryUnit { unit: String, text: String },
    #[error("invalid memory size `{0}`")]
    MemoryInvalid(String),
    #[error("memory size `{0}` is too large")]
    MemoryTooLarge(String),
    #[error("invalid CPU share `{0}`: write a fraction of one core such as `0.25`, or `25%`")]
    CpuInvalid(String),
    #[error("CPU share `{0}` is too large")]
    CpuTooLarge(String),
    #[error("duration `{0}` has no unit; write e.g. `{0}s` or `{0}ms`")]
    DurationNoUnit(String),
    #[error("invalid duration `{text}`: {reason}; write e.g. `5s` or `250ms`")]
    DurationInvalid { text: String, reason: String },
}

/// Parses a memory size: plain bytes (`65536`) or a number with a unit. `KiB`/`MiB`/`GiB` and
/// Docker's single letters `k`/`m`/`g` are powers of 1024; `KB`/`MB`/`GB` are powers of 1000
/// (as written on the tin). Units are case-insensitive except that `kb` means KB.
pub fn parse_memory(text: &str) -> Result<u64, UnitError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    if num.is_empty() {
        return Err(UnitError::MemoryNoNumber(text.to_string()));
    }
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(UnitError::MemoryUnit {
                unit: unit.to_string(),
                text: text.to_string(),
            })
        }
    };
    let bytes = if num.contains('.') {
        let f: f64 = num.parse().map_err(|_| UnitError::MemoryInvalid(text.to_string()))?;
        let b = f * mult as f64;
        if !b.is_finite() || b >= u64::MAX as f64 {
            return Err(UnitError::MemoryTooLarge(text.to_string()));
        }
        b as u64
    } else {
        let n: u64 = num.parse().map_err(|_| UnitError::MemoryTooLarge(text.to_string()))?;
        n.checked_mul(mult)
            .ok_or_else(|| UnitError::MemoryTooLarge(text.to_string()))?
    };
    Ok(bytes)
}

/// Parses a CPU share into thousandths of a core: a fraction (`0.25`, `1`) or a percentage
/// (`25%`, `2.5%`). Only the syntax is checked here; the caller checks the range.
pub fn parse_cpu(text: &str) -> Result<u32, UnitError> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 10.0),
        None => (t, 1000.0),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && number.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| UnitError::CpuInvalid(text.to_string()))?;
    cpu_milli(value * scale).ok_or_else(|| UnitError::CpuTooLarge(text.to_string()))
}

/// Thousandths of a core, rounded, from a value already scaled to thousandths.
pub fn cpu_milli(scaled: f64) -> Option<u32> {
    let rounded = scaled.round();
    (rounded.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&rounded)).then_some(rounded as u32)
}

/// Parses a duration such as `5s`, `250ms`, `1m 30s` (humantime). A bare number is refused:
/// seconds or milliseconds would both be plausible guesses.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return Err(UnitError::DurationNoUnit(t.to_string()));
    }
    humantime::parse_duration(t).map_err(|e| UnitError::DurationInvalid {
        text: text.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_memory("1MiB"), Ok(1 << 20));
        assert_eq!(parse_memory("4MB"), Ok(4_000_000));
        assert_eq!(parse_memory("65536"), Ok(65536));
        assert_eq!(parse_memory("64k"), Ok(65536));
        assert_eq!(parse_memory("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_memory("2 GiB"), Ok(2 << 30));
        assert!(parse_memory("12 parsecs").is_err());
        assert!(parse_memory("MiB").is_err());
        assert!(parse_memory("99999999999999999999GiB").is_err());
    }

    #[test]
    fn cpu_shares() {
        assert_eq!(parse_cpu("0.25"), Ok(250));
        assert_eq!(parse_cpu("25%"), Ok(250));
        assert_eq!(parse_cpu(" 2.5 % "), Ok(25));
        assert_eq!(parse_cpu("1"), Ok(1000));
        assert_eq!(parse_cpu("150%"), Ok(1500));
        assert!(parse_cpu("half").is_err());
        assert!(parse_cpu("-0.5").is_err());
        assert!(parse_cpu("1e3").is_err());
        assert!(parse_cpu("NaN").is_err());
        assert!(parse_cpu("%").is_err());
        assert!(parse_cpu("99999999999999999999").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").unwrap_err().to_string().contains("no unit"));
        assert!(parse_duration("soon").is_err());
    }
}
