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

/// A size in bytes as written on a command line: `64MiB`, `512KB`, `65536` ([`parse_memory`]).
/// A clap value type, so a bad size is refused at its flag; shown in the largest unit that
/// keeps it exact, so what is printed parses back to the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        parse_memory(text).map(ByteSize)
    }
}

impl TryFrom<String> for ByteSize {
    type Error = UnitError;

    fn try_from(text: String) -> Result<Self, UnitError> {
        text.parse()
    }
}

impl From<ByteSize> for String {
    fn from(size: ByteSize) -> String {
        size.to_string()
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [(u64, &str); 6] = [
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
            (1_000_000_000, "GB"),
            (1_000_000, "MB"),
            (1_000, "KB"),
        ];
        let n = self.0;
        match UNITS.iter().find(|(size, _)| n != 0 && n % size == 0) {
            Some((size, unit)) => write!(f, "{}{unit}", n / size),
            None => write!(f, "{n}B"),
        }
    }
}

/// A duration as written on a command line: `5s`, `250ms`, `1m 30s` ([`parse_duration`]; a
/// bare number is refused). A clap value type, so a bad duration is refused at its flag;
/// shown in humantime's units, which parse back to the same duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Span(pub Duration);

impl Span {
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl std::str::FromStr for Span {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, UnitError> {
        parse_duration(text).map(Span)
    }
}

impl TryFrom<String> for Span {
    type Error = UnitError;

    fn try_from(text: String) -> Result<Self, UnitError> {
        text.parse()
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        span.to_string()
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
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

    #[test]
    fn byte_sizes_print_exactly_and_parse_back() {
        for (text, bytes, shown) in [
            ("64MiB", 64 << 20, "64MiB"),
            ("512KB", 512_000, "500KiB"),
            ("3MB", 3_000_000, "3MB"),
            ("65536", 65536, "64KiB"),
            ("1000", 1000, "1KB"),
            ("1025", 1025, "1025B"),
            ("0", 0, "0B"),
            ("1.5GiB", 3 << 29, "1536MiB"),
            ("4MB", 4_000_000, "4MB"),
        ] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.bytes(), bytes, "{text}");
            assert_eq!(size.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<ByteSize>(), Ok(size), "{shown} parses back");
        }
        assert_eq!(
            "12 parsecs".parse::<ByteSize>().unwrap_err().to_string(),
            "invalid memory unit `parsecs` in `12 parsecs`: use B, KiB, MiB, GiB, KB, MB or GB"
        );
        assert_eq!(serde_json::to_string(&ByteSize(1 << 20)).unwrap(), "\"1MiB\"");
        assert_eq!(serde_json::from_str::<ByteSize>("\"2KiB\"").unwrap(), ByteSize(2048));
    }

    #[test]
    fn spans_print_in_units_and_parse_back() {
        for (text, duration) in [
            ("5s", Duration::from_secs(5)),
            ("250ms", Duration::from_millis(250)),
            ("1m 30s", Duration::from_secs(90)),
            ("1h 2m 3s 4ms", Duration::from_millis(3_723_004)),
            ("0s", Duration::ZERO),
        ] {
            let span: Span = text.parse().unwrap();
            assert_eq!(span.duration(), duration, "{text}");
            assert_eq!(span.to_string().parse::<Span>(), Ok(span), "{span} parses back");
        }
        assert_eq!(Span(Duration::from_secs(90)).to_string(), "1m 30s");
        assert!("10"
            .parse::<Span>()
            .unwrap_err()
            .to_string()
            .contains("write e.g. `10s`"));
        assert!("soon".parse::<Span>().is_err());
        assert_eq!(
            serde_json::to_string(&Span(Duration::from_millis(1500))).unwrap(),
            "\"1s 500ms\""
        );
    }
}
