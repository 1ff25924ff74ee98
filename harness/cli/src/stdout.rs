//! Standard output for the CLI, for readers that stop reading.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`smsim sweep … | head`).
//! [`outln!`](crate::outln) and [`out!`](crate::out) write the same text, and when the
//! reader is gone they end the program quietly with status 0, as `head`'s other writers
//! would. Any other write error still panics: output was lost and the user must know.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Writes `text` to stdout. Used by [`out!`](crate::out) and [`outln!`](crate::outln).
pub fn write(text: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => panic!("failed printing to stdout: {error}"),
    }
}

/// `print!` that ends the program quietly when stdout's reader has gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}

/// `println!` that ends the program quietly when stdout's reader has gone.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}
