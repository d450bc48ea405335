//! Shared helpers: fixture paths, golden files and the parity comparison.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use unmask::batch::{read_f32_tensors, Batch};
use unmask::tensor::Tensor;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The golden batch (ids, masks, token types) and all F32 tensors of `golden.safetensors`.
pub fn golden(name: &str) -> (Batch, HashMap<String, Tensor>) {
    let path = fixture(name).join("golden.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let batch = Batch::from_safetensors_bytes(&path.display().to_string(), &bytes).unwrap();
    let tensors = read_f32_tensors(&path.display().to_string(), &bytes).unwrap();
    (batch, tensors)
}

/// Max |got − want| over the real (non-padding) positions of `[B, L, D]` tensors.
pub fn max_diff(got: &Tensor, want: &Tensor, batch: &Batch) -> f32 {
    assert_eq!(got.shape, want.shape, "shapes");
    let d = got.cols();
    let mut m = 0.0f32;
    for b in 0..batch.size {
        for i in 0..batch.len {
            if !batch.is_real(b, i) {
                continue;
            }
            let o = (b * batch.len + i) * d;
            for k in 0..d {
                let diff = (got.data[o + k] - want.data[o + k]).abs();
                if diff.is_nan() {
                    return f32::INFINITY;
                }
                m = m.max(diff);
            }
        }
    }
    m
}

/// Max over real positions of |got − want| / (1e-3 + 1e-3·|want|): at most 1 means within
/// atol = rtol = 1e-3, the GPU tolerance.
pub fn scaled_err(got: &Tensor, want: &Tensor, batch: &Batch) -> f32 {
    assert_eq!(got.shape, want.shape, "shapes");
    let v = got.cols();
    let mut m = 0.0f32;
    for b in 0..batch.size {
        for i in 0..batch.len {
            if !batch.is_real(b, i) {
                continue;
            }
            let o = (b * batch.len + i) * v;
            for k in 0..v {
                let (a, w) = (got.data[o + k], want.data[o + k]);
                let e = (a - w).abs() / (1e-3 + 1e-3 * w.abs());
                if e.is_nan() {
                    return f32::INFINITY;
                }
                m = m.max(e);
            }
        }
    }
    m
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Parity on logits: max |Δ| within `tol` and the argmax equal at every real position.
pub fn assert_logits_match(what: &str, got: &Tensor, want: &Tensor, batch: &Batch, tol: f32) {
    let d = max_diff(got, want, batch);
    assert!(d <= tol, "{what}: max |diff| {d} > {tol}");
    let v = got.cols();
    for b in 0..batch.size {
        for i in 0..batch.len {
            if batch.is_real(b, i) {
                let o = (b * batch.len + i) * v;
                assert_eq!(
                    argmax(&got.data[o..o + v]),
                    argmax(&want.data[o..o + v]),
                    "{what}: argmax differs at [{b}, {i}]"
                );
            }
        }
    }
    eprintln!("{what}: max |diff| = {d:.2e}");
}

/// Subs log-probs: values at or below −1e5 are "−∞-like" on both sides; the rest within `tol`.
pub fn assert_subs_match(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.shape, want.shape);
    let mut m = 0.0f32;
    for (i, (&g, &w)) in got.data.iter().zip(&want.data).enumerate() {
        if w <= -1e5 {
            assert!(
                g <= -1e5,
                "{what}: element {i} is {g}, expected −∞-like ({w})"
            );
        } else {
            let d = (g - w).abs();
            assert!(d.is_finite(), "{what}: element {i} is {g}");
            m = m.max(d);
        }
    }
    assert!(m <= tol, "{what}: max |diff| {m} > {tol}");
    eprintln!("{what}: max |diff| = {m:.2e}");
}

/// A fixture folder prepared for execution, as the CLI loads it.
pub fn model(name: &str) -> unmask::Model {
    unmask::engine::load_model(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The forward contract on the CPU.
pub fn cpu_forward(
    model: &unmask::Model,
    batch: &Batch,
    capture: bool,
) -> unmask::Result<unmask::engine::Forward> {
    let mut d = unmask::backend::CpuDenoiser::new(model.plan()?.clone());
    unmask::blocking::block_on(unmask::engine::forward(model, &mut d, batch, capture))
}

/// An infiller on the CPU for a fixture folder.
pub fn cpu_infiller(name: &str) -> unmask::engine::Engine {
    unmask::engine::cpu_infiller(model(name)).unwrap()
}

/// A fresh folder under the system's temporary directory, removed when dropped. (A dev-dependency
/// such as `tempfile` would change the feature set of shared dependencies and make
/// `cargo test` rebuild what `cargo build` already built.)
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tempdir() -> TempDir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "unmask-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    TempDir(dir)
}

/// The GPU adapter for a test, or `None` with the reason printed. Under `CI=true` a missing
/// adapter fails the test instead: CI installs lavapipe so that GPU tests run there.
#[cfg(feature = "gpu")]
pub fn gpu_or_skip() -> Option<std::sync::Arc<unmask::backend::gpu::Gpu>> {
    match unmask::blocking::block_on(unmask::backend::gpu::Gpu::new()) {
        Ok(g) => {
            eprintln!("adapter: {}", g.describe());
            Some(std::sync::Arc::new(g))
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true but {e}"),
        Err(e) => {
            eprintln!("skipping the GPU part: {e}");
            None
        }
    }
}

/// The `unmask` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_unmask");

/// Runs `unmask args…` with `stdin` piped in; stdout and stderr captured.
pub fn run_cli(args: &[&str], stdin: &[u8]) -> std::process::Output {
    run_cli_with(args, stdin, &[])
}

/// [`run_cli`] with environment variables set for the run.
pub fn run_cli_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut c = Command::new(BIN);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{BIN}: {e}"));
    let mut pipe = child.stdin.take().expect("piped");
    // a run that exits before reading its input closes the pipe: not the test's failure
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("the child ran")
}

/// Runs `unmask args…` on a pseudo-terminal (util-linux `script`), as a user at a terminal
/// would, and returns what the terminal showed, after checking the run succeeded. `None`, with
/// the reason printed, where there is no `script`; under `CI=true` that fails instead.
pub fn run_on_terminal(args: &[&str]) -> Option<String> {
    use std::process::{Command, Stdio};
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no `script` (util-linux) to make a terminal"
        );
        eprintln!("skipping the terminal run: no `script` to make a terminal");
        return None;
    }
    let cmd = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script ran");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    Some(screen)
}
