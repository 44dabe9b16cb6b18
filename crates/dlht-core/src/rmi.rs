//! TODO: filled by the rmi work
