//! dlht-core: the learned part of dlht, in pure Rust with no knowledge of JavaScript.
//! A two-stage Recursive Model Index maps keys to ring positions in key order; the
//! rest (sampling, key encoding, curves, model files) feeds or ships that model.

pub mod curve;
pub mod error;
pub mod fedavg;
pub mod format;
pub mod key_code;
pub mod keyed_training;
pub mod keys;
pub mod model;
pub mod reservoir;
pub mod rmi;
pub mod text_code;

pub use error::{Error, Result};
pub use key_code::KeyCode;
pub use model::{KeyScale, ModelType};
pub use reservoir::{ReservoirSampler, SplitMix64};
pub use rmi::{Leaf, LeafStats, Rmi, RmiConfig, RootModel, TrainingStats};
