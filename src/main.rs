//! splitwise: command-line entry point (dispatch only).
fn main() {}
