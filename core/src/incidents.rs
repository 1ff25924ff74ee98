//! Historical bugs, re-introduced on purpose for the simulator to find.
//!
//! Compiled only with the `incidents` cargo feature; without it this module is empty
//! and the engine is exactly the normal one.
