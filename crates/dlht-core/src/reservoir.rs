//! TODO: filled by the reservoir work
