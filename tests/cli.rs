//! The built `unmask` binary: `unmask forward` on every fixture folder writes logits (and
//! MDLM log-probs) matching the golden files; failures exit non-zero with one clear line.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use unmask::batch::read_f32_tensors;

const BIN: &str = env!("CARGO_BIN_EXE_unmask");

/// Writes the golden batch as a forward input file; ids as I32 when asked, σ when given.
fn write_input(name: &str, path: &Path, ids_as_i32: bool, sigma: Option<&str>) {
    let bytes = std::fs::read(fixture(name).join("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for key in ["input_ids", "attention_mask", "token_type_ids"] {
        if let Ok(t) = st.tensor(key) {
            let (dtype, data) = if key == "input_ids" && ids_as_i32 {
                let v: Vec<u8> = t
                    .data()
                    .chunks_exact(8)
                    .flat_map(|c| (i64::from_le_bytes(c.try_into().unwrap()) as i32).to_le_bytes())
                    .collect();
                (Dtype::I32, v)
            } else {
                (t.dtype(), t.data().to_vec())
            };
            owned.push((key.into(), dtype, t.shape().to_vec(), data));
        }
    }
    if let Some(s) = sigma {
        let t = st.tensor(s).unwrap();
        owned.push((
            "sigma".into(),
            Dtype::F32,
            t.shape().to_vec(),
            t.data().to_vec(),
        ));
    }
    let views: HashMap<String, TensorView> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn run_forward(
    name: &str,
    sigma: Option<&str>,
    ids_as_i32: bool,
) -> HashMap<String, unmask::tensor::Tensor> {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (
        tmp.path().join("in.safetensors"),
        tmp.path().join("out.safetensors"),
    );
    write_input(name, &input, ids_as_i32, sigma);
    let out = Command::new(BIN)
        .args(["forward", "--model"])
        .arg(fixture(name))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--backend", "cpu"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_f32_tensors("out", &std::fs::read(&output).unwrap()).unwrap()
}

#[test]
fn forward_command_matches_golden_on_every_fixture() {
    for name in ["bert", "distilbert", "roberta", "modernbert", "llada"] {
        let got = run_forward(name, None, name == "llada");
        assert!(!got.contains_key("log_probs"), "{name} has no subs output");
        let (batch, g) = golden(name);
        assert_logits_match(
            &format!("cli {name}"),
            &got["logits"],
            &g["logits"],
            &batch,
            1e-4,
        );
    }
    for (name, k) in [("mdlm_dit", "1"), ("mdlm_dit_timecond", "2")] {
        let got = run_forward(name, Some(&format!("sigma.{k}")), false);
        let (batch, g) = golden(name);
        assert_logits_match(
            &format!("cli {name}"),
            &got["logits"],
            &g[&format!("backbone_logits.{k}")],
            &batch,
            1e-4,
        );
        assert_subs_match(
            &format!("cli {name}"),
            &got["log_probs"],
            &g[&format!("subs_log_probs.{k}")],
            1e-4,
        );
    }
}

fn fails_with(args: &[&str], parts: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    for p in parts {
        assert!(err.contains(p), "stderr {err:?} lacks {p:?}");
    }
}

#[test]
fn forward_command_errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("mdlm_dit");
    let model = model.to_str().unwrap();
    let out = tmp.path().join("o.safetensors");
    let out = out.to_str().unwrap();
    fails_with(
        &[
            "forward",
            "--model",
            model,
            "--input",
            "/nonexistent/in.safetensors",
            "--output",
            out,
        ],
        &["error:", "/nonexistent/in.safetensors"],
    );
    fails_with(
        &[
            "forward",
            "--model",
            "/nonexistent/m",
            "--input",
            "x",
            "--output",
            out,
        ],
        &["error:", "/nonexistent/m"],
    );
    // an input without input_ids
    let bad = tmp.path().join("bad.safetensors");
    let data = [0u8; 4];
    let v = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
    safetensors::serialize_to_file([("sigma", v)], None, &bad).unwrap();
    fails_with(
        &[
            "forward",
            "--model",
            model,
            "--input",
            bad.to_str().unwrap(),
            "--output",
            out,
        ],
        &["bad.safetensors", "input_ids", "missing"],
    );
    assert!(!Path::new(out).exists(), "no output on failure");
}
