mod curve;
mod fp;
mod fq;
mod pallas;
mod vesta;

pub use fp::*;
pub use fq::*;
pub use pallas::*;
pub use vesta::*;
