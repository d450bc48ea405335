//! Loading: sharded and half-precision checkpoints load and still match the golden outputs;
//! bad files, configs and inputs each give a clear error naming the culprit (never a panic).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use unmask::batch::Batch;

/// A writable copy of a fixture folder.
fn copy_fixture(name: &str) -> (common::TempDir, PathBuf) {
    let tmp = common::tempdir();
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture(name).join(f), dst.join(f)).unwrap();
    }
    (tmp, dst)
}

/// All tensors of a safetensors file as (dtype, shape, bytes).
fn read_all(path: &Path) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn write_all(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn load_err(dir: &Path) -> String {
    match unmask::engine::load_model(dir) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(
            msg.contains(p),
            "error message {msg:?} does not mention {p:?}"
        );
    }
}

#[test]
fn sharded_checkpoint_loads_and_matches() {
    let (_tmp, dir) = copy_fixture("llada");
    let tensors = read_all(&dir.join("model.safetensors"));
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let (a, b) = tensors.split_at(tensors.len() / 2);
    write_all(&dir.join("model-00001-of-00002.safetensors"), a);
    write_all(&dir.join("model-00002-of-00002.safetensors"), b);
    let mut map = serde_json::Map::new();
    for (part, file) in [
        (a, "model-00001-of-00002.safetensors"),
        (b, "model-00002-of-00002.safetensors"),
    ] {
        for t in part {
            map.insert(t.0.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    let model = unmask::engine::load_model(&dir).unwrap();
    let (batch, g) = golden("llada");
    let out = cpu_forward(&model, &batch, false).unwrap().out.logits;
    assert_logits_match("sharded llada", &out, &g["logits"], &batch, 1e-4);
}

/// F16 and BF16 copies of the MDLM fixture load; their logits stay near the f32 golden.
#[test]
fn half_precision_checkpoints_load() {
    for (dtype, tol) in [(Dtype::F16, 1e-2), (Dtype::BF16, 6e-2)] {
        let (_tmp, dir) = copy_fixture("mdlm_dit");
        let path = dir.join("model.safetensors");
        let converted: Vec<_> = read_all(&path)
            .into_iter()
            .map(|(n, _, s, b)| {
                let vals = b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()));
                let bytes: Vec<u8> = match dtype {
                    Dtype::F16 => vals.flat_map(|v| f16::from_f32(v).to_le_bytes()).collect(),
                    _ => vals.flat_map(|v| bf16::from_f32(v).to_le_bytes()).collect(),
                };
                (n, dtype, s, bytes)
            })
            .collect();
        write_all(&path, &converted);
        let model = unmask::engine::load_model(&dir).unwrap();
        let (batch, g) = golden("mdlm_dit");
        let out = cpu_forward(&model, &batch, false).unwrap().out.logits;
        let d = max_diff(&out, &g["backbone_logits.0"], &batch);
        eprintln!("{dtype:?}: max |diff| {d:.3e}");
        assert!(d < tol && d > 0.0, "{dtype:?}: {d}");
    }
}

#[test]
fn truncated_weights_file() {
    let (_tmp, dir) = copy_fixture("bert");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    assert_mentions(&load_err(&dir), &["model.safetensors", "truncated"]);
    std::fs::write(&path, &bytes[..5]).unwrap();
    assert_mentions(&load_err(&dir), &["model.safetensors", "8-byte header"]);
}

#[test]
fn absurd_header_sizes() {
    let (_tmp, dir) = copy_fixture("bert");
    let path = dir.join("model.safetensors");
    // a header length of 2^62 bytes
    let mut bytes = (1u64 << 62).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, &bytes).unwrap();
    assert_mentions(&load_err(&dir), &["model.safetensors", "absurdly large"]);
    // a header whose tensor claims 10^21 elements in 4 bytes of data
    let header =
        br#"{"w":{"dtype":"F32","shape":[1000000000000,1000000000],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 4]);
    std::fs::write(&path, &bytes).unwrap();
    let e = load_err(&dir);
    assert_mentions(&e, &["model.safetensors"]);
    assert!(e.contains("absurdly large") || e.contains("offset"), "{e}");
}

#[test]
fn wrong_shape_and_missing_tensor() {
    let (_tmp, dir) = copy_fixture("roberta");
    let path = dir.join("model.safetensors");
    let orig = read_all(&path);
    let name = "roberta.encoder.layer.1.intermediate.dense.weight";
    let reshaped: Vec<_> = orig
        .iter()
        .cloned()
        .map(|(n, d, s, b)| {
            if n == name {
                (n, d, vec![64, 128], b)
            } else {
                (n, d, s, b)
            }
        })
        .collect();
    write_all(&path, &reshaped);
    assert_mentions(&load_err(&dir), &[name, "[64, 128]", "expected [128, 64]"]);
    let missing: Vec<_> = orig.iter().filter(|t| t.0 != name).cloned().collect();
    write_all(&path, &missing);
    assert_mentions(&load_err(&dir), &[name, "missing"]);
}

#[test]
fn integer_weights_are_refused() {
    let (_tmp, dir) = copy_fixture("distilbert");
    let path = dir.join("model.safetensors");
    let name = "vocab_projector.bias";
    let t: Vec<_> = read_all(&path)
        .into_iter()
        .map(|(n, d, s, b)| {
            if n == name {
                (n, Dtype::I32, s, b)
            } else {
                (n, d, s, b)
            }
        })
        .collect();
    write_all(&path, &t);
    assert_mentions(&load_err(&dir), &[name, "I32"]);
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn bad_configs() {
    let (_tmp, dir) = copy_fixture("mdlm_dit");
    edit_config(&dir, |v| v["model_type"] = "gpt-neo".into());
    assert_mentions(
        &load_err(&dir),
        &["config.json", "model_type", "gpt-neo", "supported: mdlm"],
    );

    let (_tmp, dir) = copy_fixture("mdlm_dit");
    edit_config(&dir, |v| v["hidden_dim"] = "wide".into());
    assert_mentions(&load_err(&dir), &["config.json", "hidden_dim", "integer"]);

    let (_tmp, dir) = copy_fixture("mdlm_dit");
    edit_config(&dir, |v| v["n_heads"] = 5.into());
    assert_mentions(
        &load_err(&dir),
        &["config.json", "n_heads", "do not divide"],
    );

    let (_tmp, dir) = copy_fixture("llada");
    edit_config(&dir, |v| {
        v.as_object_mut().unwrap().remove("d_model");
    });
    assert_mentions(&load_err(&dir), &["config.json", "d_model", "missing"]);

    let (_tmp, dir) = copy_fixture("bert");
    edit_config(&dir, |v| {
        v["vocab_size"] = 1u64.checked_shl(40).unwrap().into()
    });
    assert_mentions(
        &load_err(&dir),
        &["config.json", "vocab_size", "out of range"],
    );

    let (_tmp, dir) = copy_fixture("llada");
    edit_config(&dir, |v| v["rope_theta"] = (-1.0).into());
    assert_mentions(
        &load_err(&dir),
        &["config.json", "rope_theta", "greater than 0"],
    );

    let (_tmp, dir) = copy_fixture("bert");
    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    assert_mentions(&load_err(&dir), &["config.json", "not valid JSON"]);

    let (_tmp, dir) = copy_fixture("bert");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert_mentions(&load_err(&dir), &["config.json"]);
}

#[test]
fn missing_folder_and_bad_tokenizer() {
    let e = load_err(Path::new("/nonexistent/model"));
    assert_mentions(&e, &["/nonexistent/model", "not a folder"]);
    let (_tmp, dir) = copy_fixture("bert");
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    assert_mentions(
        &load_err(&dir),
        &["tokenizer", "tokenizer.json", "cannot load"],
    );
}

fn forward_err(name: &str, batch: &Batch) -> String {
    let model = unmask::engine::load_model(&fixture(name)).unwrap();
    match cpu_forward(&model, batch, false) {
        Ok(_) => panic!("forward accepted bad input"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_inputs() {
    let mut b = Batch::single(vec![1, 2, 3, 98, 4]);
    assert_mentions(
        &forward_err("mdlm_dit", &b),
        &["input_ids[0, 3] = 98", "outside the vocabulary (size 98)"],
    );
    b = Batch::single(vec![0; 33]);
    assert_mentions(
        &forward_err("mdlm_dit", &b),
        &["length 33", "maximum of 32", "model_length"],
    );
    b = Batch::single(vec![0; 65]);
    // RoBERTa: 66 position rows, but real tokens start at pad + 1 = 2
    assert_mentions(&forward_err("roberta", &b), &["length 65", "maximum of 64"]);
    b = Batch::single(vec![]);
    assert_mentions(&forward_err("bert", &b), &["empty input"]);
    b = Batch::single(vec![2, 5, 3]);
    b.token_types = Some(vec![0, 2, 0]);
    assert_mentions(
        &forward_err("bert", &b),
        &["token_type_ids[0, 1] = 2", "2 token types"],
    );
    b = Batch::single(vec![2, 5, 3]);
    b.attention_mask = Some(vec![true; 2]);
    assert_mentions(
        &forward_err("bert", &b),
        &["attention_mask has 2 values, expected 3"],
    );
    b = Batch::single(vec![2, 5, 3]);
    b.sigma = Some(vec![f32::NAN]);
    assert_mentions(&forward_err("mdlm_dit", &b), &["sigma[0]"]);
}

#[test]
fn bad_input_files() {
    let tmp = common::tempdir();
    let path = tmp.path().join("in.safetensors");
    let read = |tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]| {
        let owned: Vec<_> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), *d, s.clone(), b.clone()))
            .collect();
        write_all(&path, &owned);
        Batch::read_safetensors(&path).unwrap_err().to_string()
    };
    let i32s = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let i64s = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let e = read(&[("input_ids", Dtype::I32, vec![1, 3], i32s(&[5, -1, 2]))]);
    assert_mentions(&e, &["in.safetensors", "input_ids[0, 1] = -1"]);
    let e = read(&[("input_ids", Dtype::I64, vec![3], i64s(&[5, 1, 2]))]);
    assert_mentions(&e, &["input_ids", "[3]", "[B, L]"]);
    let e = read(&[("input_ids", Dtype::F32, vec![1, 1], vec![0; 4])]);
    assert_mentions(&e, &["input_ids", "F32", "I64 or I32"]);
    let e = read(&[
        ("input_ids", Dtype::I64, vec![1, 2], i64s(&[5, 1])),
        ("attention_mask", Dtype::I64, vec![1, 2], i64s(&[1, 2])),
    ]);
    assert_mentions(&e, &["attention_mask", "value 2 at [0, 1]"]);
    let e = read(&[
        ("input_ids", Dtype::I64, vec![1, 2], i64s(&[5, 1])),
        ("token_type_ids", Dtype::I64, vec![2, 1], i64s(&[0, 0])),
    ]);
    assert_mentions(&e, &["token_type_ids", "[2, 1]", "like input_ids"]);
    let e = read(&[
        ("input_ids", Dtype::I64, vec![1, 2], i64s(&[5, 1])),
        ("sigma", Dtype::F32, vec![2], vec![0; 8]),
    ]);
    assert_mentions(&e, &["sigma", "F32 [1]"]);
    std::fs::write(&path, b"garbage").unwrap();
    let e = Batch::read_safetensors(&path).unwrap_err().to_string();
    assert_mentions(&e, &["in.safetensors", "not a valid safetensors file"]);
}

/// The browser's path: every fixture's checkpoint pushed through a `WeightStream` in odd-sized
/// chunks (elements split between chunks) builds a model whose logits equal, bit for bit, those
/// of the whole-file load; each tensor is moved into the model, never read twice.
#[test]
fn streamed_checkpoints_give_the_same_logits() {
    use unmask::model::config::Config;
    use unmask::model::stream::WeightStream;
    use unmask::model::Model;
    for name in [
        "bert",
        "distilbert",
        "roberta",
        "modernbert",
        "llada",
        "llada_gqa",
        "dream",
        "mdlm_dit",
        "mdlm_dit_timecond",
    ] {
        let dir = fixture(name);
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let mut s = WeightStream::new("model.safetensors");
        for chunk in bytes.chunks(4093) {
            s.push(chunk).unwrap();
        }
        let header = s.header().unwrap().clone();
        assert_eq!(header.file_len(), bytes.len() as u64, "{name}");
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let cfg = Config::parse("config.json", &text).unwrap();
        let streamed = Model::from_parts(&cfg, &s.finish().unwrap(), None).unwrap();
        let whole = unmask::model::Model::load(&dir).unwrap();
        let (batch, _) = golden(name);
        let a = cpu_forward(&streamed, &batch, false).unwrap().out.logits;
        let b = cpu_forward(&whole, &batch, false).unwrap().out.logits;
        assert!(
            a.data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name}"
        );
        eprintln!(
            "{name}: streamed = whole-file load, {} f32 bytes",
            header.f32_bytes()
        );
    }
}

/// Sizes a config declares are bounded before anything is allocated from them.
#[test]
fn absurd_config_sizes_are_named_errors() {
    for (name, field) in [
        ("mdlm_dit", "model_length"),
        ("bert", "max_position_embeddings"),
        ("modernbert", "max_position_embeddings"),
        ("llada", "max_sequence_length"),
    ] {
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |v| v[field] = (1u64 << 24).into());
        assert_mentions(
            &load_err(&dir),
            &["config.json", field, "16777216 tokens", "16384"],
        );
    }
    // RoPE models have no position table: the context is the config's word, capped
    assert_eq!(unmask::model::MAX_CONTEXT, 16384);
    let (_tmp, dir) = copy_fixture("mdlm_dit");
    edit_config(&dir, |v| v["n_blocks"] = 16_000_000.into());
    assert_mentions(&load_err(&dir), &["config.json", "n_blocks", "1024"]);
    // a position table the weights do not back
    let (_tmp, dir) = copy_fixture("bert");
    edit_config(&dir, |v| v["max_position_embeddings"] = 4096.into());
    assert_mentions(
        &load_err(&dir),
        &["position_embeddings.weight", "expected [4096"],
    );
    // sizes that shape tensors are checked against the file before any copy
    for field in ["hidden_dim", "vocab_size", "cond_dim"] {
        let (_tmp, dir) = copy_fixture("mdlm_dit");
        edit_config(&dir, |v| v[field] = (1u64 << 24).into());
        assert_mentions(&load_err(&dir), &["model.safetensors", "expected"]);
    }
}

/// Grouped-query attention: a kv head count that does not divide the query heads is refused,
/// naming the field; one that divides them but disagrees with the weights names the tensor.
#[test]
fn kv_heads_that_do_not_divide_the_heads_are_named_errors() {
    for (name, kv_field, heads_field, bad) in [
        ("llada_gqa", "n_kv_heads", "n_heads", 3),
        ("llada_gqa", "n_kv_heads", "n_heads", 8),
        ("dream", "num_key_value_heads", "num_attention_heads", 4),
        ("dream", "num_key_value_heads", "num_attention_heads", 12),
    ] {
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |v| v[kv_field] = bad.into());
        assert_mentions(
            &load_err(&dir),
            &[
                "config.json",
                kv_field,
                &format!("{bad} key/value heads do not divide"),
                heads_field,
            ],
        );
    }
    let (_tmp, dir) = copy_fixture("dream");
    edit_config(&dir, |v| v["num_key_value_heads"] = 3.into());
    assert_mentions(
        &load_err(&dir),
        &[
            "model.layers.0.self_attn.k_proj.weight",
            "expected [36, 72]",
        ],
    );
    let (_tmp, dir) = copy_fixture("llada_gqa");
    edit_config(&dir, |v| v["n_kv_heads"] = 4.into());
    assert_mentions(
        &load_err(&dir),
        &[
            "model.transformer.blocks.0.k_proj.weight",
            "expected [80, 80]",
        ],
    );
}

/// Dream's config: what the builder does not run is refused by field; the declared 131072
/// positions are capped at the longest canvas unmask runs; a tied head reads the embeddings.
#[test]
fn dream_config_fields() {
    let m = unmask::engine::load_model(&fixture("dream")).unwrap();
    assert_eq!(m.spec.max_len, unmask::model::MAX_CONTEXT);
    assert_eq!(
        m.spec.canvas,
        unmask::text::CanvasRule::Bos("<|beginoftext|>")
    );
    for (field, value, says) in [
        (
            "use_sliding_window",
            serde_json::json!(true),
            "not supported",
        ),
        (
            "rope_scaling",
            serde_json::json!({"type": "linear", "factor": 2.0}),
            "not supported",
        ),
        ("hidden_act", serde_json::json!("relu"), "relu"),
        // values the engine does not implement are refused, never run as something else
        (
            "hidden_act",
            serde_json::json!("gelu"),
            "`gelu` is not supported",
        ),
        ("use_mrope", serde_json::json!(true), "multimodal RoPE"),
        (
            "mask_token_id",
            serde_json::json!(456),
            "outside the vocabulary",
        ),
        ("model_type", serde_json::json!("dream"), "supported: "),
    ] {
        let (_tmp, dir) = copy_fixture("dream");
        edit_config(&dir, |v| v[field] = value.clone());
        assert_mentions(&load_err(&dir), &["config.json", field, says]);
    }
    let (_tmp, dir) = copy_fixture("dream");
    edit_config(&dir, |v| v["tie_word_embeddings"] = true.into());
    let tied = unmask::engine::load_model(&dir).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &tied.plan().unwrap().head.decoder.weight,
        &tied.plan().unwrap().embeddings.tokens
    ));
    assert_eq!(tied.warnings.len(), 1, "lm_head.weight goes unused");
}

/// Layers the config does not count, and layers it counts that the weights lack.
#[test]
fn layer_count_against_the_weights() {
    for (name, field, list) in [
        ("mdlm_dit", "n_blocks", "backbone.blocks.1."),
        ("bert", "num_hidden_layers", "bert.encoder.layer.1."),
        ("llada", "n_layers", "model.transformer.blocks.1."),
        ("dream", "num_hidden_layers", "model.layers.1."),
    ] {
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |v| v[field] = 1.into());
        assert_mentions(
            &load_err(&dir),
            &["config.json", field, "says 1 layers", "weights for 2", list],
        );
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |v| v[field] = 3.into());
        assert_mentions(&load_err(&dir), &["model.safetensors", ".2.", "missing"]);
    }
}

/// A tensor no builder reads (a pooler, an NSP head) is tolerated with a warning, as
/// transformers does; the model loads and says which.
#[test]
fn unused_tensors_are_a_warning() {
    let (_tmp, dir) = copy_fixture("bert");
    let path = dir.join("model.safetensors");
    let mut t = read_all(&path);
    for name in [
        "bert",
        "distilbert",
        "roberta",
        "modernbert",
        "llada",
        "llada_gqa",
        "dream",
        "mdlm_dit",
    ] {
        let model = unmask::engine::load_model(&fixture(name)).unwrap();
        assert!(model.warnings.is_empty(), "{name}: {:?}", model.warnings);
    }
    let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let model = unmask::engine::load_model(&default).unwrap();
    assert!(model.warnings.is_empty(), "default: {:?}", model.warnings);
    t.push((
        "bert.pooler.dense.weight".into(),
        Dtype::F32,
        vec![2],
        vec![0; 8],
    ));
    t.push((
        "bert.embeddings.position_ids".into(),
        Dtype::I64,
        vec![1],
        vec![0; 8],
    ));
    write_all(&path, &t);
    let model = unmask::engine::load_model(&dir).unwrap();
    assert_eq!(model.warnings.len(), 1, "{:?}", model.warnings);
    assert_mentions(
        &model.warnings[0],
        &[
            "model.safetensors",
            "1 tensor(s) not used",
            "`bert.pooler.dense.weight`",
        ],
    );
}

/// The tokenizer may have fewer ids than the model has rows (padding rows), never more.
#[test]
fn tokenizer_against_vocab_size() {
    let (_tmp, dir) = copy_fixture("mdlm_dit");
    let p = dir.join("tokenizer.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    for k in 0..5 {
        // added tokens take the next free ids (97 …), past the model's 98 rows
        v["added_tokens"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "id": 97 + k, "content": format!("<|extra{k}|>"), "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true
            }));
    }
    std::fs::write(&p, v.to_string()).unwrap();
    let ids = unmask::text::Tokenizer::from_file(&p).unwrap().id_bound();
    assert_eq!(ids, 102);
    assert_mentions(
        &load_err(&dir),
        &[
            "tokenizer.json",
            "has 102 tokens but",
            "config.json `vocab_size` is 98",
        ],
    );
    // fewer: the rows past the tokenizer are padding (ModernBERT's fixture: 420 ids, 448 rows)
    let model = unmask::engine::load_model(&fixture("modernbert")).unwrap();
    assert_eq!(model.spec.vocab_size, 448);
    assert_eq!(model.tokenizer.unwrap().id_bound(), 420);
}

/// Config values the engine does not implement are refused with the field named (issue 21:
/// Dream's are in `dream_config_fields`), as LLaDA's `activation_type` is.
#[test]
fn unimplemented_config_values_are_refused_by_field() {
    for (name, field, value, says) in [
        (
            "llada",
            "clip_qkv",
            serde_json::json!(8.0),
            "clamping q, k and v",
        ),
        (
            "llada",
            "activation_type",
            serde_json::json!("gelu"),
            "`gelu` is not supported",
        ),
        (
            "bert",
            "is_decoder",
            serde_json::json!(true),
            "causal attention",
        ),
        (
            "roberta",
            "is_decoder",
            serde_json::json!(true),
            "causal attention",
        ),
    ] {
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |v| v[field] = value.clone());
        let e = load_err(&dir);
        assert_mentions(&e, &["config.json", &format!("field `{field}`"), says]);
        eprintln!("{e}");
    }
    // the defaults these fields take when absent or null still load
    let (_tmp, dir) = copy_fixture("llada");
    edit_config(&dir, |v| v["clip_qkv"] = serde_json::Value::Null);
    unmask::engine::load_model(&dir).unwrap();
}

/// `llada` split into two shards: `place(i, name)` lists the shards tensor i goes into (the
/// index names the first).
fn sharded(place: impl Fn(usize, &str) -> Vec<usize>) -> (common::TempDir, PathBuf) {
    let (tmp, dir) = copy_fixture("llada");
    let tensors = read_all(&dir.join("model.safetensors"));
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let files = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut parts = [Vec::new(), Vec::new()];
    let mut map = serde_json::Map::new();
    for (i, t) in tensors.iter().enumerate() {
        let shards = place(i, &t.0);
        for &s in &shards {
            parts[s].push(t.clone());
        }
        map.insert(t.0.clone(), files[shards[0]].into());
    }
    for (part, file) in parts.iter().zip(files) {
        write_all(&dir.join(file), part);
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    (tmp, dir)
}

/// A tensor in two shards is an error naming both, and a tensor the index places in a shard
/// that lacks it is an error naming the index entry: never the copy of whichever shard was
/// read last.
#[test]
fn shards_are_read_as_the_index_says() {
    let dup = "model.transformer.blocks.0.q_proj.weight";
    let (_tmp, dir) = sharded(|i, n| if n == dup { vec![0, 1] } else { vec![i % 2] });
    assert_mentions(
        &load_err(&dir),
        &[
            dup,
            "is in two shards",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ],
    );
    // the index says shard 1, the tensor is in shard 2 only
    let (_tmp, dir) = sharded(|i, _| vec![i % 2]);
    let index = dir.join("model.safetensors.index.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let moved = v["weight_map"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, f)| *f == "model-00002-of-00002.safetensors")
        .map(|(t, _)| t.clone())
        .unwrap();
    v["weight_map"][&moved] = "model-00001-of-00002.safetensors".into();
    std::fs::write(&index, v.to_string()).unwrap();
    assert_mentions(
        &load_err(&dir),
        &[
            "model.safetensors.index.json",
            &format!("field `weight_map.{moved}`"),
            "places the tensor in `model-00001-of-00002.safetensors`, but it is in `model-00002-of-00002.safetensors`",
        ],
    );
    // and a well-formed split still loads
    let (_tmp, dir) = sharded(|i, _| vec![i % 2]);
    unmask::engine::load_model(&dir).unwrap();
}

/// A checkpoint file that is a named pipe is refused at once, not opened and waited on (the
/// open would block until a writer came); so are a folder in a file's place and a pipe as the
/// config or tokenizer.
#[cfg(unix)]
#[test]
fn checkpoint_files_that_are_not_regular_files_are_refused() {
    use std::sync::mpsc;
    use std::time::Duration;
    let mkfifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success(), "mkfifo {}", p.display());
    };
    for file in [
        "model.safetensors",
        "model-00002-of-00002.safetensors",
        "config.json",
        "tokenizer.json",
    ] {
        let (_tmp, dir) = if file.starts_with("model-") {
            sharded(|i, _| vec![i % 2])
        } else {
            copy_fixture("llada")
        };
        let path = dir.join(file);
        std::fs::remove_file(&path).unwrap();
        mkfifo(&path);
        let (tx, rx) = mpsc::channel();
        let d = dir.clone();
        std::thread::spawn(move || {
            let _ = tx.send(unmask::engine::load_model(&d).err().map(|e| e.to_string()));
        });
        let got = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(got) => got,
            Err(_) => {
                // unblock the waiting open so the test process can end, then fail
                let _ = std::fs::OpenOptions::new().write(true).open(&path);
                panic!("{file} as a named pipe: the load waited on it");
            }
        };
        let e = got.unwrap_or_else(|| panic!("{file} as a named pipe loaded"));
        assert_mentions(&e, &[file, "is a named pipe, not a regular file"]);
        eprintln!("{e}");
    }
    // a folder where the weights file should be
    let (_tmp, dir) = copy_fixture("llada");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    std::fs::create_dir(dir.join("model.safetensors")).unwrap();
    assert_mentions(&load_err(&dir), &["model.safetensors", "is a folder"]);
}

/// Sets a field of a config by its dotted path (`model.hidden_size`), or removes it (`None`).
fn set_path(v: &mut serde_json::Value, path: &str, value: Option<serde_json::Value>) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    let mut at = v;
    for p in parts {
        at = &mut at[p];
    }
    match value {
        Some(x) => at[last] = x,
        None => {
            at.as_object_mut().unwrap().remove(last);
        }
    }
}

/// UDLM, Duo and SEDD are recognised from their config.json (UDLM and Duo by `model_type`,
/// SEDD by its training config's `tokens` and `graph`, having no model_type) as the family,
/// reading, mask and noise schedule their reference code implies.
#[test]
fn uniform_and_score_families_are_recognised() {
    use unmask::model::{Architecture, Family, LogitReading, Noise};
    let log_linear = Some(Noise::LogLinear { eps: 1e-3 });
    for (name, arch, family, logits, mask, noise, vocab) in [
        (
            "udlm",
            Architecture::Udlm,
            Family::Uniform,
            LogitReading::LogSoftmax,
            None,
            log_linear,
            64,
        ),
        (
            "duo",
            Architecture::Duo,
            Family::Uniform,
            LogitReading::LogSoftmax,
            None,
            log_linear,
            64,
        ),
        (
            "sedd_absorb",
            Architecture::Sedd,
            Family::Score { uniform: false },
            LogitReading::LogScore {
                scale_by_sigma: true,
            },
            Some(64),
            log_linear,
            65,
        ),
        (
            "sedd_uniform",
            Architecture::Sedd,
            Family::Score { uniform: true },
            LogitReading::LogScore {
                scale_by_sigma: false,
            },
            None,
            Some(Noise::Geometric {
                sigma_min: 1e-4,
                sigma_max: 20.0,
            }),
            64,
        ),
    ] {
        let m = unmask::engine::load_model(&fixture(name)).unwrap();
        let s = &m.spec;
        assert_eq!(
            (s.arch, s.family, s.logits, s.noise, s.vocab_size),
            (arch, family, logits, noise, vocab),
            "{name}"
        );
        assert_eq!(m.mask_id().unwrap(), mask, "{name}");
        assert!(s.time_conditioning && m.warnings.is_empty(), "{name}");
    }
    let families: Vec<String> = ["udlm", "duo", "sedd_uniform"]
        .iter()
        .map(|n| serde_json::to_string(&common::model(n).spec.family).unwrap())
        .collect();
    assert_eq!(
        families,
        [
            "\"uniform\"",
            "\"uniform\"",
            "{\"score\":{\"uniform\":true}}"
        ]
    );
    // Duo's model_type is also seen lower-case
    let (_tmp, dir) = copy_fixture("duo");
    edit_config(&dir, |v| v["model_type"] = "duo".into());
    assert_eq!(
        unmask::engine::load_model(&dir).unwrap().spec.arch,
        Architecture::Duo
    );
}

/// What the uniform and score families' builders do not run, or cannot read, is refused with
/// the field named (dotted for SEDD's nested config).
#[test]
fn uniform_and_score_family_config_errors_name_the_field() {
    use serde_json::json;
    for (name, field, value, says) in [
        ("udlm", "cfg", Some(json!(true)), "class-conditional"),
        (
            "udlm",
            "time_conditioning",
            Some(json!(false)),
            "conditioned on σ",
        ),
        ("udlm", "n_blocks", Some(json!(1)), "says 1 layers"),
        ("duo", "causal", Some(json!(true)), "causal"),
        ("duo", "hidden_dim", None, "missing"),
        ("sedd_absorb", "graph.type", Some(json!("ring")), "`ring`"),
        (
            "sedd_absorb",
            "noise.type",
            Some(json!("cosine")),
            "`cosine`",
        ),
        ("sedd_absorb", "model.hidden_size", None, "missing"),
        (
            "sedd_absorb",
            "model.n_heads",
            Some(json!(3)),
            "do not divide",
        ),
        (
            "sedd_absorb",
            "model.n_blocks",
            Some(json!(1)),
            "says 1 layers",
        ),
        ("sedd_absorb", "tokens", None, "missing"),
        (
            "sedd_absorb",
            "model.length",
            Some(json!(1u64 << 24)),
            "16384",
        ),
        (
            "sedd_uniform",
            "model.scale_by_sigma",
            Some(json!(true)),
            "only defined for the absorb graph",
        ),
        (
            "sedd_uniform",
            "noise.sigma_min",
            Some(json!(-1.0)),
            "greater than 0",
        ),
    ] {
        let (_tmp, dir) = copy_fixture(name);
        edit_config(&dir, |v| set_path(v, field, value.clone()));
        let e = load_err(&dir);
        assert_mentions(&e, &["config.json", &format!("field `{field}`"), says]);
        eprintln!("{e}");
    }
    // a SEDD absorb score divides by e^σ − 1: σ = 0, or no σ, is refused naming it
    let m = common::model("sedd_absorb");
    let (mut batch, _) = golden("sedd_absorb");
    batch.sigma = None;
    let e = cpu_forward(&m, &batch, false).err().unwrap().to_string();
    assert_mentions(&e, &["sigma[0]", "σ > 0"]);
    batch.sigma = Some(vec![0.5, 0.0, 1.0]);
    let e = cpu_forward(&m, &batch, false).err().unwrap().to_string();
    assert_mentions(&e, &["sigma[1]", "σ > 0"]);
}
