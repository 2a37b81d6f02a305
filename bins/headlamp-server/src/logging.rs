//! The tracing subscriber: the only place a subscriber is installed.
//!
//! Logs go to stderr so stdout stays clean for `--print-config` and
//! `--help`. Human-readable text (coloured when stderr is a terminal) by
//! default; `-log-format=json` writes one JSON object per line with the
//! event's fields at the top level, which log collectors index directly.
//! Secrets never reach here: configuration and tokens are redacted types,
//! and request spans record the path only (a query may carry an OAuth
//! `code`).

use std::io::IsTerminal;

use headlamp_config::{LogFormat, LogLevel, LoggingSettings};
use tracing_subscriber::filter::LevelFilter;

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

/// Installs the global subscriber. A second call (only possible in tests)
/// keeps the first.
pub(crate) fn init(settings: &LoggingSettings) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level_filter(settings.level))
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        _ => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // Already installed: keep the existing one rather than fail the start.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_maps() {
        assert_eq!(level_filter(LogLevel::Trace), LevelFilter::TRACE);
        assert_eq!(level_filter(LogLevel::Debug), LevelFilter::DEBUG);
        assert_eq!(level_filter(LogLevel::Info), LevelFilter::INFO);
        assert_eq!(level_filter(LogLevel::Warn), LevelFilter::WARN);
        assert_eq!(level_filter(LogLevel::Error), LevelFilter::ERROR);
    }
}
