//! One non-finite element in one weight never gives a quiet answer. For every architecture, each
//! tensor of its fixture checkpoint in turn gets one NaN at an element the canvas reads (a row
//! of a token in the canvas for vocabulary tables, a position the canvas uses for position
//! tables, the first element otherwise), and the model must then refuse on the CPU and on the
//! GPU alike: `infill` with `Error::NonFinite` at the same step and row, the forward contract
//! with `Error::NonFiniteLogits`, and `eval` naming the non-finite log-probability. Before the
//! CPU softmax kept NaN score rows, one NaN in a single query or key weight gave finite, wrong
//! logits on the CPU only.

mod common;

use unmask::blocking::block_on;
use unmask::diffusion::SamplerOptions;
use unmask::engine::{self, Engine, LoadOptions};
use unmask::model::config::Config;
use unmask::model::{Model, Weights};
use unmask::text::Tokenizer;
use unmask::Error;

const TEMPLATE: &str = "the cat [MASK*3] on the [MASK] .";

/// A checkpoint's tensors: name, dtype, shape and byte range in the file.
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    start: usize,
}

fn entries(bytes: &[u8]) -> Vec<Entry> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<Entry> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| Entry {
            name: k.clone(),
            dtype: v["dtype"].as_str().unwrap().to_string(),
            shape: v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect(),
            start: 8 + n + v["data_offsets"][0].as_u64().unwrap() as usize,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The fixture `name` with the weights `bytes`, prepared as the CLI prepares it.
fn build(name: &str, bytes: Vec<u8>) -> Model {
    let dir = common::fixture(name);
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let cfg = Config::parse("config.json", &text).unwrap();
    let weights = Weights::from_bytes("poisoned", bytes).unwrap();
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let model = Model::from_parts(&cfg, &weights, Some(tok)).unwrap();
    engine::prepare(model, LoadOptions::default()).unwrap()
}

/// The element of `e` to poison (flat index): one the canvas reads.
fn element(e: &Entry, vocab: usize, token: usize) -> usize {
    let cols = e.shape[1..].iter().product::<usize>();
    let row = if e.shape[0] == vocab {
        // token tables, decoders and decoder biases: the row of a token in the canvas
        token
    } else if e.name.contains("position") && e.shape.len() == 2 {
        // absolute position tables: a position every canvas uses (RoBERTa's start at 2)
        2
    } else {
        0
    };
    row * cols
}

fn poisoned(bytes: &[u8], e: &Entry, at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let (size, nan): (usize, &[u8]) = match e.dtype.as_str() {
        "F32" => (4, &f32::NAN.to_le_bytes()),
        "F16" => (2, &half::f16::NAN.to_le_bytes()),
        "BF16" => (2, &half::bf16::NAN.to_le_bytes()),
        other => panic!("{}: dtype {other}", e.name),
    };
    b[e.start + at * size..][..size].copy_from_slice(nan);
    b
}

/// The error of a default fill of `TEMPLATE`, of the forward contract on its canvas, and of
/// `eval` on a short text.
fn refusals(inf: &mut Engine) -> (Error, Error, Error) {
    let o = SamplerOptions::default();
    let fill = block_on(inf.infill(TEMPLATE, &o, &mut |_| {}))
        .err()
        .unwrap_or_else(|| Error::input("no error: the fill succeeded"));
    let canvas = inf.canvas(TEMPLATE).unwrap();
    let batch = unmask::batch::Batch::single(canvas.ids.clone());
    let fwd = match block_on(engine::forward(
        &inf.model,
        &mut inf.denoiser,
        &batch,
        false,
    )) {
        Ok(_) => Error::input("no error: the forward pass succeeded"),
        Err(e) => e,
    };
    let text = "the cat sat on the mat . the dog ran to the cat .";
    let eval = block_on(unmask::diffusion::eval::evaluate(
        inf,
        text,
        &Default::default(),
    ))
    .err()
    .unwrap_or_else(|| Error::input("no error: eval gave figures"));
    (fill, fwd, eval)
}

fn assert_eval_refused(e: &Error, what: &str) {
    let msg = e.to_string();
    assert!(
        msg.contains("not finite") || matches!(e, Error::NonFinite { .. }),
        "{what}: eval gave {e:?}"
    );
}

fn each_weight_refuses(name: &str) {
    let path = common::fixture(name).join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let clean = engine::cpu_infiller(build(name, bytes.clone())).unwrap();
    let vocab = clean.model.plan().unwrap().vocab;
    let canvas = clean.canvas(TEMPLATE).unwrap();
    // a token of the known text the model may also propose ("the")
    let token = canvas
        .ids
        .iter()
        .enumerate()
        .find(|(i, &id)| !canvas.holes.contains(i) && clean.allowed[id as usize])
        .map(|(_, &id)| id as usize)
        .expect("the template has an ordinary known token");
    let unused: Vec<String> = clean.model.warnings.clone();
    #[cfg(feature = "gpu")]
    let gpu = common::gpu_or_skip();
    let mut tested = 0;
    for e in entries(&bytes) {
        if unused.iter().any(|w| w.contains(&format!("`{}`", e.name))) {
            eprintln!("{name}: {} is not used by the model: not poisoned", e.name);
            continue;
        }
        let at = element(&e, vocab, token);
        let weights = poisoned(&bytes, &e, at);
        let what = format!("{name}: NaN at element {at} of {} {:?}", e.name, e.shape);
        let mut cpu = engine::cpu_infiller(build(name, weights.clone())).unwrap();
        let (fill, fwd, eval) = refusals(&mut cpu);
        // a poisoned vocabulary row is read only where its token is: eval's text tokenises
        // differently from the template, so only tensors every token reads are checked there
        let every_token = e.shape[0] != vocab;
        if every_token {
            assert_eval_refused(&eval, &format!("{what} (CPU)"));
        }
        assert!(
            matches!(fill, Error::NonFinite { step: 1, .. }),
            "{what}: infill on the CPU gave {fill:?}"
        );
        assert!(
            matches!(fwd, Error::NonFiniteLogits { .. }),
            "{what}: forward on the CPU gave {fwd:?}"
        );
        #[cfg(feature = "gpu")]
        if let Some(g) = &gpu {
            use unmask::engine::{AnyDenoiser, WeightFormat};
            let model = build(name, weights);
            let d = block_on(AnyDenoiser::gpu(g.clone(), &model, WeightFormat::F32)).unwrap();
            let mut on_gpu = Engine::new(model, d).unwrap();
            let (gfill, gfwd, geval) = refusals(&mut on_gpu);
            if every_token {
                assert_eval_refused(&geval, &format!("{what} (GPU)"));
            }
            assert_eq!(
                gfill.to_string(),
                fill.to_string(),
                "{what}: the GPU and the CPU refuse the fill differently"
            );
            // the first non-finite logit may differ in value (NaN or ±∞), not in kind
            assert!(
                matches!(gfwd, Error::NonFiniteLogits { .. }),
                "{what}: forward on the GPU gave {gfwd:?}"
            );
        }
        tested += 1;
    }
    eprintln!("{name}: {tested} tensors poisoned one element at a time, each refused");
    assert!(tested >= 8, "{name}: only {tested} tensors poisoned");
}

#[test]
fn mdlm_dit_refuses_one_nan_in_any_weight() {
    each_weight_refuses("mdlm_dit");
}

#[test]
fn mdlm_dit_timecond_refuses_one_nan_in_any_weight() {
    each_weight_refuses("mdlm_dit_timecond");
}

#[test]
fn bert_refuses_one_nan_in_any_weight() {
    each_weight_refuses("bert");
}

#[test]
fn distilbert_refuses_one_nan_in_any_weight() {
    each_weight_refuses("distilbert");
}

#[test]
fn roberta_refuses_one_nan_in_any_weight() {
    each_weight_refuses("roberta");
}

#[test]
fn modernbert_refuses_one_nan_in_any_weight() {
    each_weight_refuses("modernbert");
}

#[test]
fn llada_refuses_one_nan_in_any_weight() {
    each_weight_refuses("llada");
}

#[test]
fn llada_gqa_refuses_one_nan_in_any_weight() {
    each_weight_refuses("llada_gqa");
}

#[test]
fn dream_refuses_one_nan_in_any_weight() {
    each_weight_refuses("dream");
}
