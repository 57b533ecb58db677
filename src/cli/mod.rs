//! The binary's own parts: drawing progress and rendering results. Not in the library.

pub mod base_images;
pub mod migrate;
pub mod progress;
pub mod stdout;
