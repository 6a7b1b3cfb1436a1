//! Rate limiting of log lines that can repeat.

/// At most one log line per kind of repeating problem every
/// [`RateLimit::INTERVAL`], counting the ones left out: the first line of a
/// kind is logged, the next one after the interval says how many were left
/// out between them (Vector's internal events do the same).
#[derive(Debug, Default)]
pub struct RateLimit {
    /// By kind: when one was last logged, and how many since.
    seen: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

impl RateLimit {
    const INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

    /// `Some(left out since the last line)` when a line of `kind` may be
    /// logged now.
    pub fn allow(&self, kind: &str) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < Self::INTERVAL => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let left_out = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(left_out)
            }
            None => {
                // Kinds are closed sets (librdkafka's error codes and
                // facility names, reject reasons, event kinds); the bound
                // only guards the map.
                if seen.len() >= 256 {
                    seen.clear();
                }
                seen.insert(kind.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: with the broker unreachable each process logged 37
    /// client error lines a second.
    #[test]
    fn a_kind_is_logged_once_per_interval_with_how_many_were_left_out() {
        let lines = RateLimit::default();
        assert_eq!(lines.allow("error AllBrokersDown"), Some(0));
        for _ in 0..36 {
            assert_eq!(lines.allow("error AllBrokersDown"), None);
        }
        assert_eq!(lines.allow("error BrokerTransportFailure"), Some(0));
        assert_eq!(lines.allow("log FAIL"), Some(0));
    }
}
