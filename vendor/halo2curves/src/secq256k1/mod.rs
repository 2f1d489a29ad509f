mod curve;

pub use curve::*;

pub use crate::secp256k1::{Fp as Fq, Fq as Fp};
