//! Date-times as the Brevo sandbox keeps and shows them: unix milliseconds
//! inside, `YYYY-MM-DDTHH:mm:ss.SSSZ` on the wire (what Brevo's
//! `createdAt`/`modifiedAt` look like), and the `modifiedSince` query value
//! read as RFC 3339 with or without fractions or an offset.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Now, in unix milliseconds.
pub(super) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2026-01-02T03:04:05.678Z` (UTC, milliseconds).
pub(super) fn format_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_default()
}

/// An RFC 3339 date-time (`2026-01-02T03:04:05.678Z`, `…+02:00`, no
/// fraction) in unix milliseconds; `None` when it is not one.
pub(super) fn parse_ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_brevo_and_reads_back_with_or_without_offset() {
        assert_eq!(format_ms(1_767_323_045_678), "2026-01-02T03:04:05.678Z");
        assert_eq!(parse_ms("2026-01-02T03:04:05.678Z"), Some(1_767_323_045_678));
        assert_eq!(parse_ms("2026-01-02T05:04:05.678+02:00"), Some(1_767_323_045_678));
        assert_eq!(parse_ms("2026-01-02T03:04:05Z"), Some(1_767_323_045_000));
        assert_eq!(parse_ms("yesterday"), None);
    }
}
