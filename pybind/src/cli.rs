//! `_wse_main`: the `wse` command line (`wse_tools::run`) inside Python, so
//! `python -m wse_server serve|log|bench ...` and the `wse` script of the
//! wheel are the very command the `wse` binary is: one parser, one set of
//! flags, defaults and `WSE_*` variables.

use pyo3::prelude::*;

/// Run the `wse` command line with `argv` (program name first) and return
/// its exit status. `self_command` (program, then leading arguments) is how
/// a child process starts it again (`wse bench` runs `wse serve`). The GIL
/// is released for the whole run: `serve` blocks until SIGINT or SIGTERM.
#[pyfunction]
#[pyo3(name = "_wse_main")]
pub fn wse_main(py: Python<'_>, argv: Vec<String>, self_command: Vec<String>) -> u8 {
    let mut parts = self_command.into_iter();
    let program = parts.next().unwrap_or_else(|| "wse".to_owned());
    let leading = parts.map(Into::into).collect();
    py.detach(|| wse_tools::run(argv, (program.into(), leading)))
}
