//! TODO: filled by the keys work
