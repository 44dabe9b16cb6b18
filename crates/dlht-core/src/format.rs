//! TODO: filled by the format work
