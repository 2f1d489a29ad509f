mod curve;
mod fp;
mod fq;

pub use curve::*;
pub use fp::*;
pub use fq::*;
