//! Running the built `wse` binary from the CLI tests: one command to
//! completion with its input, and its output as text or JSON lines.

#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The `wse` binary built for these tests.
pub fn wse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wse"))
}

/// Run `wse args...` with `stdin`, to completion.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = wse()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wse");
    let written = child.stdin.take().expect("stdin").write_all(stdin);
    // A command that fails before reading its input (a locked directory)
    // may close the pipe first: its exit status and stderr tell the rest.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait for wse")
}

/// [`run`], which must succeed.
pub fn run_ok(args: &[&str], stdin: &[u8]) -> Output {
    let o = run(args, stdin);
    assert!(o.status.success(), "wse {args:?} failed: {}", stderr(&o));
    o
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Append `input` to `topic` with `wse log append`; panics unless it works.
pub fn append(dir: &Path, topic: &str, input: &[u8]) -> String {
    stdout(&run_ok(&["log", "append", path(dir), topic], input))
}

pub fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A temporary directory and a data directory path inside it (not created).
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    (tmp, dir)
}
