//! Weights in the precision they were stored in: f16 and bf16 checkpoints are used in place
//! (their matrices stay 16-bit, no f32 copy) and compute the same logits as the f32 model with
//! the same rounded weights; q8_0 and q4_0 (`--weights q8|q4`, `unmask quantize`) stay within
//! their stated bounds of the f32 model on every fixture; a quantised folder reads back exactly.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use unmask::batch::Batch;
use unmask::engine::LoadOptions;
use unmask::model::matrix::{Precision, Quant};
use unmask::tensor::Tensor;

const FIXTURES: [&str; 9] = [
    "dream",
    "llada_gqa",
    "bert",
    "distilbert",
    "roberta",
    "modernbert",
    "llada",
    "mdlm_dit",
    "mdlm_dit_timecond",
];

/// The stated q8_0 bound against the f32 model: logits within this fraction of the largest
/// |logit| of the row set, and the argmax agreeing at this fraction of the real positions.
/// Measured on the fixtures (printed by `q8_is_within_its_bound_on_every_fixture`): at most
/// 2.7% (ModernBERT) and at least 95.1% (LLaDA-GQA); the bounds leave room for other draws.
const Q8_REL_BOUND: f32 = 0.05;
const Q8_TOP1_BOUND: f64 = 0.9;

/// The stated q4_0 bound against the f32 model, as [`Q8_REL_BOUND`] and [`Q8_TOP1_BOUND`].
/// Measured (printed by `q4_is_within_its_bound_on_every_fixture`): from 14.3% (RoBERTa) to
/// 37.7% (LLaDA) of the largest |logit|, and top-1 agreement from 100% (RoBERTa) down to 54.2%
/// (LLaDA) and 37.5% (MDLM-DiT with σ): about 15 times q8_0's error, as a step 16 times as
/// coarse gives. The fixtures' random weights leave many near-ties in the argmax, so
/// agreement is the looser measure; a trained model's is far higher. The bounds leave room for
/// other summation orders.
const Q4_REL_BOUND: f32 = 0.5;
const Q4_TOP1_BOUND: f64 = 0.3;

/// A copy of a fixture folder with every float tensor stored as `dtype`.
fn converted_fixture(name: &str, dtype: Dtype) -> (common::TempDir, std::path::PathBuf) {
    let tmp = common::tempdir();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture(name).join(f), dir.join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture(name).join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, t) in st.tensors() {
        if t.dtype() != Dtype::F32 {
            owned.push((n, t.dtype(), t.shape().to_vec(), t.data().to_vec()));
            continue;
        }
        let vals = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()));
        let b: Vec<u8> = match dtype {
            Dtype::F16 => vals.flat_map(|v| f16::from_f32(v).to_le_bytes()).collect(),
            _ => vals.flat_map(|v| bf16::from_f32(v).to_le_bytes()).collect(),
        };
        owned.push((n, dtype, t.shape().to_vec(), b));
    }
    let views: HashMap<String, TensorView> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    (tmp, dir)
}

fn load(dir: &Path, precision: Precision) -> unmask::Model {
    unmask::engine::load_model_with(dir, LoadOptions::precision(precision))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn logits(model: &unmask::Model, batch: &Batch) -> Tensor {
    cpu_forward(model, batch, false).unwrap().out.logits
}

/// (max |Δ| / max |want|, fraction of real positions whose argmax agrees)
fn compare(got: &Tensor, want: &Tensor, batch: &Batch) -> (f32, f64) {
    let v = want.cols();
    let (mut dmax, mut wmax, mut agree, mut n) = (0.0f32, 0.0f32, 0usize, 0usize);
    let argmax = |r: &[f32]| {
        r.iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &x)| if x > b.1 { (i, x) } else { b },
            )
            .0
    };
    for b in 0..batch.size {
        for i in 0..batch.len {
            if !batch.is_real(b, i) {
                continue;
            }
            let o = (b * batch.len + i) * v;
            let (g, w) = (&got.data[o..o + v], &want.data[o..o + v]);
            for (x, y) in g.iter().zip(w) {
                dmax = dmax.max((x - y).abs());
                wmax = wmax.max(y.abs());
            }
            agree += usize::from(argmax(g) == argmax(w));
            n += 1;
        }
    }
    (dmax / wmax, agree as f64 / n as f64)
}

#[test]
fn half_precision_is_used_in_place_and_matches_the_widened_model() {
    for name in FIXTURES {
        let (batch, _) = golden(name);
        for dtype in [Dtype::F16, Dtype::BF16] {
            let (_tmp, dir) = converted_fixture(name, dtype);
            let stored = load(&dir, Precision::Stored);
            let want_dtype = if dtype == Dtype::F16 { "f16" } else { "bf16" };
            // MDLM's folded linears hold new values in f32; every other matrix stays 16-bit
            let mats = stored.plan().unwrap().matrices();
            let half = mats.iter().filter(|m| m.dtype() == want_dtype).count();
            assert!(
                mats.iter()
                    .all(|m| m.dtype() == want_dtype || m.dtype() == "f32"),
                "{name} {dtype:?}"
            );
            assert!(
                half * 2 > mats.len(),
                "{name} {dtype:?}: only {half} of {} matrices kept 16-bit",
                mats.len()
            );
            assert!(stored.plan().unwrap().embeddings.tokens.dtype() == want_dtype);
            let widened = load(&dir, Precision::F32);
            assert!(widened
                .plan()
                .unwrap()
                .matrices()
                .iter()
                .all(|m| m.dtype() == "f32"));
            assert!(widened.plan().unwrap().matrix_bytes() > stored.plan().unwrap().matrix_bytes());
            // the same rounded weights: only the summation order differs
            let d = max_diff(&logits(&stored, &batch), &logits(&widened, &batch), &batch);
            eprintln!("{name} {dtype:?} in place vs widened: max |diff| {d:.2e}");
            assert!(d <= 1e-4, "{name} {dtype:?}: {d}");
            // quantising the mapped halves (which hands their pages back) gives the same model
            // as quantising the widened copy
            let q_mapped = load(&dir, Precision::Q8);
            let q_widened = unmask::engine::prepare(
                widened,
                LoadOptions {
                    fold_adaln: false,
                    precision: Precision::Q8,
                    ..LoadOptions::default()
                },
            )
            .unwrap();
            let (a, b) = (logits(&q_mapped, &batch), logits(&q_widened, &batch));
            assert!(a.data == b.data, "{name} {dtype:?}: q8 of the map differs");
            let q4_mapped = load(&dir, Precision::Q4);
            let q4_widened = unmask::engine::prepare(
                load(&dir, Precision::F32),
                LoadOptions {
                    fold_adaln: false,
                    precision: Precision::Q4,
                    ..LoadOptions::default()
                },
            )
            .unwrap();
            let (a, b) = (logits(&q4_mapped, &batch), logits(&q4_widened, &batch));
            assert!(a.data == b.data, "{name} {dtype:?}: q4 of the map differs");
            // the map's dropped pages read back from the file
            let again = max_diff(
                &logits(&stored, &batch),
                &logits(&load(&dir, Precision::Stored), &batch),
                &batch,
            );
            assert!(again == 0.0, "{name} {dtype:?}: {again}");
        }
    }
}

#[test]
fn q8_is_within_its_bound_on_every_fixture() {
    for name in FIXTURES {
        let (batch, _) = golden(name);
        let f32_model = load(&fixture(name), Precision::Stored);
        let q8 = load(&fixture(name), Precision::Q8);
        assert!(q8
            .plan()
            .unwrap()
            .matrices()
            .iter()
            .all(|m| m.dtype() == "q8_0"));
        let ratio = q8.plan().unwrap().matrix_bytes() as f64
            / f32_model.plan().unwrap().matrix_bytes() as f64;
        // 34 bytes per block of 32 values (rows padded to whole blocks) against 4 a value
        let want: usize = q8
            .plan()
            .unwrap()
            .matrices()
            .iter()
            .map(|m| m.rows * m.cols.div_ceil(32) * 34)
            .sum();
        assert_eq!(q8.plan().unwrap().matrix_bytes(), want, "{name}");
        assert!(ratio < 0.36, "{name}: q8 holds {ratio:.3} of the f32 bytes");
        let (rel, top1) = compare(&logits(&q8, &batch), &logits(&f32_model, &batch), &batch);
        eprintln!(
            "{name} q8_0: relative logit error {:.3}%, top-1 agreement {:.1}%, {:.3}× the f32 bytes",
            100.0 * rel,
            100.0 * top1,
            ratio
        );
        assert!(rel > 0.0 && rel <= Q8_REL_BOUND, "{name}: {rel}");
        assert!(top1 >= Q8_TOP1_BOUND, "{name}: {top1}");
    }
}

#[test]
fn q4_is_within_its_bound_on_every_fixture() {
    for name in FIXTURES {
        let (batch, _) = golden(name);
        let f32_model = load(&fixture(name), Precision::Stored);
        let q4 = load(&fixture(name), Precision::Q4);
        let plan = q4.plan().unwrap();
        assert!(plan.matrices().iter().all(|m| m.dtype() == "q4_0"));
        let ratio = plan.matrix_bytes() as f64 / f32_model.plan().unwrap().matrix_bytes() as f64;
        // 18 bytes (16 of packed values, an f16 scale) per block of 32 values, rows padded to
        // whole blocks: 4.5 bits a weight
        let want: usize = plan
            .matrices()
            .iter()
            .map(|m| m.rows * m.cols.div_ceil(32) * 18)
            .sum();
        assert_eq!(plan.matrix_bytes(), want, "{name}");
        assert!(ratio < 0.2, "{name}: q4 holds {ratio:.3} of the f32 bytes");
        let (rel, top1) = compare(&logits(&q4, &batch), &logits(&f32_model, &batch), &batch);
        eprintln!(
            "{name} q4_0: relative logit error {:.3}%, top-1 agreement {:.1}%, {:.3}× the f32 bytes",
            100.0 * rel,
            100.0 * top1,
            ratio
        );
        assert!(rel > 0.0 && rel <= Q4_REL_BOUND, "{name}: {rel}");
        assert!(top1 >= Q4_TOP1_BOUND, "{name}: {top1}");
    }
}

#[test]
fn a_quantized_folder_reads_back_as_the_same_model() {
    for (format, precision) in [(Quant::Q8, Precision::Q8), (Quant::Q4, Precision::Q4)] {
        for name in ["llada", "bert", "modernbert"] {
            let tmp = common::tempdir();
            let out = tmp.path().join(format.name());
            let mut calls = 0;
            let report =
                unmask::model::quantize::quantize_dir_as(&fixture(name), &out, format, |_, _| {
                    calls += 1
                })
                .unwrap();
            assert!(
                report.quantized > 0 && calls == report.tensors,
                "{report:?}"
            );
            // q8_0 matrices take 0.27 of their f32 bytes, q4_0 ones 0.14; the small tensors
            // (norms, biases, position tables) stay f32 (LLaDA's file: 0.21 of it in q4_0)
            let shrink = if format == Quant::Q8 { 3 } else { 4 };
            assert!(
                report.bytes_out * shrink < report.bytes_in,
                "{format:?} {report:?}"
            );
            let from_file = load(&out, Precision::Stored);
            assert!(from_file.warnings.is_empty(), "{:?}", from_file.warnings);
            assert!(from_file
                .plan()
                .unwrap()
                .matrices()
                .iter()
                .all(|m| m.dtype() == format.name()));
            let at_load = load(&fixture(name), precision);
            let (batch, _) = golden(name);
            let (a, b) = (logits(&from_file, &batch), logits(&at_load, &batch));
            assert!(
                a.data == b.data,
                "{name} {format:?}: quantised ahead of time differs from quantised at load"
            );
            // asked for in the format it already has, the file is used as it is
            let again = logits(&load(&out, precision), &batch);
            assert!(again.data == b.data, "{name} {format:?}");
            // a second run into the same folder is refused rather than mixing two models
            let e =
                unmask::model::quantize::quantize_dir_as(&fixture(name), &out, format, |_, _| {})
                    .unwrap_err()
                    .to_string();
            assert!(
                e.contains(format.name()) && e.contains("not an empty folder"),
                "{e}"
            );
        }
    }
}

#[test]
fn a_quantized_file_with_a_wrong_scale_shape_is_named() {
    for format in [Quant::Q8, Quant::Q4] {
        wrong_scale_shape_is_named(format);
    }
}

fn wrong_scale_shape_is_named(format: Quant) {
    let tmp = common::tempdir();
    let out = tmp.path().join(format.name());
    unmask::model::quantize::quantize_dir_as(&fixture("llada"), &out, format, |_, _| {}).unwrap();
    let path = out.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let target = format!(
        "model.transformer.blocks.0.q_proj.weight.{}_scale",
        format.name()
    );
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    for t in &mut owned {
        if t.0 == target {
            // the same bytes read as one row too few, one block per row too many
            let (r, c) = (t.2[0], t.2[1]);
            let n = (r * c) / (c + 1);
            t.2 = vec![n, c + 1];
            t.3.truncate(2 * n * (c + 1));
        }
    }
    let views: HashMap<String, TensorView> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let e = unmask::engine::load_model(&out)
        .err()
        .expect("broken scales load")
        .to_string();
    let needs = format!("{} matrix [64, 64] needs F16 [64, 2]", format.name());
    assert!(e.contains(&target) && e.contains(&needs), "{e}");
}

/// A copy of the fixture `name` whose tensor `tensor` holds `value` at flat index `at`.
fn fixture_with(name: &str, tensor: &str, at: usize, value: f32) -> common::TempDir {
    let tmp = common::tempdir();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture(name).join(f), tmp.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(fixture(name).join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let mut b = t.data().to_vec();
            if n == tensor {
                assert_eq!(t.dtype(), Dtype::F32);
                b[4 * at..4 * at + 4].copy_from_slice(&value.to_le_bytes());
            }
            (n, t.dtype(), t.shape().to_vec(), b)
        })
        .collect();
    let views: HashMap<String, TensorView> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &tmp.path().join("model.safetensors")).unwrap();
    tmp
}

/// q8 never hides or invents a value: a NaN or ±∞ weight, or one past what a q8_0 block's f16
/// scale holds, is refused by `--weights q8` (naming the matrix, row and column) and by
/// `unmask quantize` (naming the checkpoint's tensor), where f32 and bf16 refuse the non-finite
/// ones at the first pass. Before, q8 mapped NaN to 0 (a "repaired" model) and 9e6 to an
/// infinite scale.
#[test]
fn q8_refuses_weights_it_cannot_hold() {
    let tensor = "model.transformer.blocks.0.k_proj.weight";
    // k_proj is [64, 64]: flat index 64·3 + 40 is row 3, column 40
    for (value, says) in [
        (f32::NAN, "holds NaN: q8_0 cannot hold a non-finite weight"),
        (
            f32::NEG_INFINITY,
            "holds -inf: q8_0 cannot hold a non-finite weight",
        ),
        (9.0e6, "holds 9e6, beyond the ±8.319008e6"),
    ] {
        let tmp = fixture_with("llada", tensor, 64 * 3 + 40, value);
        let e = unmask::engine::load_model_with(tmp.path(), LoadOptions::precision(Precision::Q8))
            .err()
            .unwrap_or_else(|| panic!("{value}: --weights q8 loaded"))
            .to_string();
        // the fused q/k/v matrix: k's row 3 follows q's 64 rows
        assert_eq!(
            e,
            format!(
                "--weights q8: tensor `block 0 q/k/v projection`: row 67, column 40 {says}{}",
                if value.is_finite() {
                    " a q8_0 block's f16 scale can hold (65504 × 127); keep this model in f32, bf16 or as stored"
                } else {
                    " (f32 and bf16 refuse it at the first pass); the checkpoint is damaged"
                }
            ),
            "{value}"
        );
        let out = tmp.path().join("q8");
        let e = unmask::model::quantize::quantize_dir(tmp.path(), &out, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("tensor `{tensor}`: row 3, column 40 {says}")),
            "{value}: {e}"
        );
        eprintln!("{e}");
        if !value.is_finite() {
            // the precisions that keep the value refuse it when it is used
            for p in [Precision::Stored, Precision::F32, Precision::Bf16] {
                let m =
                    unmask::engine::load_model_with(tmp.path(), LoadOptions::precision(p)).unwrap();
                let (batch, _) = golden("llada");
                let e = cpu_forward(&m, &batch, false).err().map(|e| e.to_string());
                assert!(
                    e.as_deref()
                        .is_some_and(|e| e.starts_with("the model produced a non-finite logit")),
                    "{value} {p:?}: {e:?}"
                );
            }
        }
    }
}

/// q4 refuses what it cannot hold as q8 does, naming the matrix, row and column (`--weights
/// q4`) or the checkpoint's tensor (`unmask quantize --format q4`). Its limit is 16 times
/// lower (8 steps of the largest f16 scale, 5.2e5), and a weight between the two limits is
/// refused by q4 while q8, which the message offers, holds it.
#[test]
fn q4_refuses_weights_it_cannot_hold() {
    let tensor = "model.transformer.blocks.0.k_proj.weight";
    for (value, says) in [
        (f32::NAN, "holds NaN: q4_0 cannot hold a non-finite weight"),
        (
            f32::INFINITY,
            "holds inf: q4_0 cannot hold a non-finite weight",
        ),
        (6.0e5, "holds 6e5, beyond the ±5.24032e5"),
    ] {
        // k_proj is [64, 64]: flat index 64·3 + 40 is row 3, column 40
        let tmp = fixture_with("llada", tensor, 64 * 3 + 40, value);
        let e = unmask::engine::load_model_with(tmp.path(), LoadOptions::precision(Precision::Q4))
            .err()
            .unwrap_or_else(|| panic!("{value}: --weights q4 loaded"))
            .to_string();
        assert_eq!(
            e,
            format!(
                "--weights q4: tensor `block 0 q/k/v projection`: row 67, column 40 {says}{}",
                if value.is_finite() {
                    " a q4_0 block's f16 scale can hold (65504 × 8); keep this model in q8, f32, bf16 or as stored"
                } else {
                    " (f32 and bf16 refuse it at the first pass); the checkpoint is damaged"
                }
            ),
            "{value}"
        );
        let out = tmp.path().join("q4");
        let e = unmask::model::quantize::quantize_dir_as(tmp.path(), &out, Quant::Q4, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("tensor `{tensor}`: row 3, column 40 {says}")),
            "{value}: {e}"
        );
        eprintln!("{e}");
        if value.is_finite() {
            let q8 =
                unmask::engine::load_model_with(tmp.path(), LoadOptions::precision(Precision::Q8));
            assert!(q8.is_ok(), "q8 refused {value}");
        }
    }
}
