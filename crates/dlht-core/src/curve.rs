//! TODO: filled by the curve work
