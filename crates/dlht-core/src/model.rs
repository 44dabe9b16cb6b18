//! TODO: filled by the model work
