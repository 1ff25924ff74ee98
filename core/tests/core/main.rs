//! Integration tests of smsim-core, linked once.
