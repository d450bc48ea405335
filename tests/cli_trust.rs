//! Issue 21, round two of the hostile-input probe, on the `unmask` binary: no output overwrites
//! a file the run reads or is left half-written, limits hold and say so, and messages name what
//! the user wrote (docs/bad-inputs.md, "Round two").

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::fixture;

const BIN: &str = env!("CARGO_BIN_EXE_unmask");

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1 with one `error:` line holding every part, nothing on stdout, no panic.
fn assert_refused(what: &str, out: &Output, parts: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line in {err:?}");
    for p in parts {
        assert!(errors[0].contains(p), "{what}: {:?} lacks {p:?}", errors[0]);
    }
    assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
}

fn assert_ok(what: &str, out: &Output) {
    let err = stderr(out);
    assert!(out.status.success(), "{what}: {err}");
    assert!(
        !err.lines().any(|l| l.starts_with("error")),
        "{what}: an error line with exit 0: {err}"
    );
}

#[test]
fn unmask_memory_parses_or_is_an_error_naming_it() {
    let llada = fixture("llada");
    let folder = [
        "infill",
        "--backend",
        "cpu",
        "--model",
        path(&llada),
        "a [MASK] b",
    ];
    let embedded = ["infill", "--backend", "cpu", "a [MASK] b"];
    for args in [&folder[..], &embedded[..]] {
        for bad in ["lots", "1.2.3G", "-5M", "0", "2 GB B", "1e9"] {
            let out = run(args, &[("UNMASK_MEMORY", bad)]);
            assert_refused(bad, &out, &["UNMASK_MEMORY", &format!("`{bad}`")]);
        }
        for good in ["1.5G", "2GiB", "1GB", "512MiB", "4096m"] {
            assert_ok(good, &run(args, &[("UNMASK_MEMORY", good)]));
        }
    }
    // the embedded model keeps to the limit as a folder does
    let out = run(&embedded, &[("UNMASK_MEMORY", "1M")]);
    assert_refused(
        "embedded at 1M",
        &out,
        &[
            "<embedded default model>",
            "more than this machine's 1.0 MB",
        ],
    );
}
