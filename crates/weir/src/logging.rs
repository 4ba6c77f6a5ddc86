//! Where `weir` and `weir-agent` log.

/// Logs go to stderr at `default_level` (warnings: a truncated log tail, a
/// skipped damaged file); RUST_LOG overrides it.
pub(crate) fn init_logging(default_level: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
}
