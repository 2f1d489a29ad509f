#[macro_use]
pub mod common;
#[macro_use]
pub mod tower;
