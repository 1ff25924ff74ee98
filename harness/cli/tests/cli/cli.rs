//! The `smsim` binary as a shell user meets it.

use std::process::{Command, Stdio};

fn smsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smsim"))
}

#[test]
fn listing_the_clauses_prints_one_per_line() {
    let output = smsim().args(["certify", "--list"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().any(|line| line.starts_with("submit.batch ")), "{text}");
    assert!(text.lines().count() >= 30, "{text}");
}

/// `smsim … | head` closes the pipe early; the program ends quietly instead of panicking.
#[test]
fn a_reader_that_goes_away_ends_the_program_quietly() {
    let mut child = smsim().args(["certify", "--list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
