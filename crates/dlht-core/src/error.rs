//! Every way the core can refuse its input. Errors are data: each has a stable
//! `code()` that the binding hands to JavaScript, and a message that says what to fix.

/// Result alias for the core.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("training keys must not be empty")]
    EmptyKeys,
    #[error("training keys must be sorted ascending: key {key} at index {index} is smaller than the key before it")]
    UnsortedKeys { index: usize, key: f64 },
    #[error("key at index {index} is not a finite number ({key})")]
    NonFiniteKey { index: usize, key: f64 },
    #[error("unknown model type {0:?}: expected \"linear\" or \"cubic\"")]
    UnknownModelType(String),
    #[error("branching factor must be between 1 and {max}, got {got}")]
    InvalidBranchingFactor { got: u64, max: u64 },
    #[error("hash space size must be between 2 and 2^63, got {0}")]
    InvalidHashSpace(u128),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("corrupt model: {0}")]
    CorruptModel(String),
    #[error("unsupported model format version {0}")]
    UnsupportedFormatVersion(u16),
}

impl Error {
    /// Stable machine-readable code, the `code` of the JavaScript error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::EmptyKeys => "ERR_DLHT_EMPTY_KEYS",
            Error::UnsortedKeys { .. } => "ERR_DLHT_UNSORTED_KEYS",
            Error::NonFiniteKey { .. } => "ERR_DLHT_NON_FINITE_KEY",
            Error::UnknownModelType(_) => "ERR_DLHT_UNKNOWN_MODEL_TYPE",
            Error::InvalidBranchingFactor { .. } => "ERR_DLHT_INVALID_BRANCHING_FACTOR",
            Error::InvalidHashSpace(_) => "ERR_DLHT_INVALID_HASH_SPACE",
            Error::InvalidArgument(_) => "ERR_DLHT_INVALID_ARGUMENT",
            Error::CorruptModel(_) => "ERR_DLHT_CORRUPT_MODEL",
            Error::UnsupportedFormatVersion(_) => "ERR_DLHT_UNSUPPORTED_FORMAT_VERSION",
        }
    }
}
