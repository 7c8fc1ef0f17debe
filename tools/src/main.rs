//! The `wse` command.
fn main() {}
