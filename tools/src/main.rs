//! The `wse` binary: the command line of the `wse_tools` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let program = std::env::current_exe().unwrap_or_else(|_| "wse".into());
    ExitCode::from(wse_tools::run(std::env::args_os(), (program, Vec::new())))
}
