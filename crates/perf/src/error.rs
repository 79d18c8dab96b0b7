//! The one error type of a run.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options describe no scenario that can run.
    #[error("invalid options: {0}")]
    Options(String),
    /// The broker refused something or the connection failed.
    #[error("broker: {0}")]
    Client(#[from] warren_client::Error),
    /// Writing the summary failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A producer or consumer task died (panicked or was cancelled).
    #[error("a load task failed: {0}")]
    Task(String),
}
