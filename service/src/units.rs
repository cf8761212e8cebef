//! Sizes written by people: `512MiB`, `4 GiB`, `10GB`, shared by the configuration file and SQL.

/// Parses a size in bytes: a number with an optional unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`;
/// `K`/`KB`, `M`/`MB`, ... mean the same powers of 1024, as memory sizes usually do).
///
/// ```
/// use osprey_service::parse_byte_size;
///
/// assert_eq!(parse_byte_size("4GiB"), Ok(4 << 30));
/// assert_eq!(parse_byte_size("1.5 KB"), Ok(1536));
/// assert!(parse_byte_size("ten").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. 512MiB or 4GiB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "invalid size unit {other:?} in {text:?}: use B, KiB, MiB, GiB or TiB"
            ));
        }
    };
    if number < 0.0 || !number.is_finite() {
        return Err(format!("invalid size {text:?}: must be a positive number"));
    }
    Ok((number * multiplier as f64) as u64)
}

/// Parses a duration in whole seconds: a number with an optional unit (`s`, `m`, `h`, `d`).
///
/// ```
/// use osprey_service::parse_seconds;
///
/// assert_eq!(parse_seconds("90"), Ok(90));
/// assert_eq!(parse_seconds("10m"), Ok(600));
/// assert!(parse_seconds("soon").is_err());
/// ```
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 90s, 10m or 2h"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "seconds" => 1,
        "m" | "min" | "mins" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}
