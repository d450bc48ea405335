//! Qwen3 A2D (`model_type: "a2d-qwen3"`, dllm's Tiny-A2D: `dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1`
//! and `-bd3lm-v0.1`): Qwen3 converted to a masked diffusion model by dllm's `convert.py`, which
//! copies the weights and swaps the causal mask for a padding-only one. The layout is Qwen3's —
//! RMSNorm, RoPE rotate-half (θ = `rope_theta`), grouped-query attention with `head_dim` set
//! apart from `hidden_size / heads` (0.6B: 16 × 128 on 1024), per-head RMSNorm of q and k
//! before RoPE (`q_norm`, `k_norm`), no biases unless `attention_bias`, SwiGLU, `lm_head` tied
//! to the embeddings (and then not stored). Logits are not shifted (dllm's samplers pass
//! `right_shift_logits=False`). The mask is `mask_token_id` when the config has it, else the
//! tokenizer's `<|mask|>` (dllm's `get_tokenizer` adds it; 151669 in the 0.6B); a tokenizer.json
//! saved without it gets it added the way dllm adds it (`add_mask_token`).
//!
//! The MDLM and BD3LM checkpoints share this config: which attention one was trained with is a
//! load option (`Model::set_attention`), defaulting to bidirectional (families-reference §7).

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Embeddings, Ffn, Head, HeadNorms, Keys, NormPlacement, Rope};
use crate::model::{Family, LogitReading, MaskToken};
use crate::text::Tokenizer;

/// The mask dllm gives Qwen3 A2D (`tokenizer.add_special_tokens({"mask_token": "<|mask|>"})`).
const MASK: &str = "<|mask|>";

pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("hidden_size")?;
    let layers = layer_count(cfg, "num_hidden_layers")?;
    let heads = cfg.dim("num_attention_heads")?;
    let kv = kv_heads(cfg, "num_key_value_heads", heads, "num_attention_heads")?;
    let inter = cfg.dim("intermediate_size")?;
    // Qwen3-0.6B declares 40960 positions; RoPE has no table to run out of, so unmask's own
    // limit is the one that bites.
    let max_len = cfg.dim("max_position_embeddings")?.min(MAX_CONTEXT);
    let theta = cfg.positive_or("rope_theta", 10000.0)?;
    let eps = cfg.positive_or("rms_norm_eps", 1e-6)?;
    let hd = if cfg.has("head_dim") {
        cfg.dim("head_dim")?
    } else {
        head_dim(cfg, h, heads, "num_attention_heads")?
    };
    cfg.require(
        hd % 2 == 0,
        "head_dim",
        format!("head dim {hd} must be even for RoPE"),
    )?;
    cfg.require(
        !cfg.has("rope_scaling"),
        "rope_scaling",
        "scaled RoPE is not supported (only null)",
    )?;
    cfg.require(
        !cfg.bool_or("use_sliding_window", false)?,
        "use_sliding_window",
        "`true` is not supported (A2D attends to the whole canvas)",
    )?;
    let act = activation(cfg, "hidden_act", "silu")?;
    cfg.require(
        act == Activation::Silu,
        "hidden_act",
        format!(
            "`{}` is not supported (only `silu`, Qwen3's SwiGLU)",
            cfg.str_or("hidden_act", "silu")?
        ),
    )?;
    let bias = cfg.bool_or("attention_bias", false)?;
    // Qwen3's default is tied (the 0.6B); a checkpoint that unties stores `lm_head.weight`
    let tied = cfg.bool_or("tie_word_embeddings", true)?;
    let mask = match token_id(cfg, "mask_token_id", vocab)? {
        Some(id) => MaskToken::Id(id),
        None => MaskToken::Text(MASK),
    };
    // a config may carry the block length it was trained with; none of dllm's do
    let blocks = match cfg.uint_opt("block_size")? {
        Some(0) => {
            return Err(Error::config(
                &cfg.path,
                "block_size",
                "0 is not a block length",
            ))
        }
        b => b,
    };

    let tokens = Arc::new(w.matrix("model.embed_tokens.weight", vocab, h)?);
    let mut blocks_out = Vec::with_capacity(layers);
    for i in 0..layers {
        let b = format!("model.layers.{i}");
        let a = format!("{b}.self_attn");
        let q = linear(w, &format!("{a}.q_proj"), heads * hd, h, bias)?;
        let k = linear(w, &format!("{a}.k_proj"), kv * hd, h, bias)?;
        let v = linear(w, &format!("{a}.v_proj"), kv * hd, h, bias)?;
        let gate = linear(w, &format!("{b}.mlp.gate_proj"), inter, h, false)?;
        let up = linear(w, &format!("{b}.mlp.up_proj"), inter, h, false)?;
        blocks_out.push(Block {
            placement: NormPlacement::Pre,
            attn_norm: Some(rms_norm(w, &format!("{b}.input_layernorm.weight"), h, eps)?),
            qkv: fused_qkv([q, k, v]),
            head_norms: Some(HeadNorms {
                q: rms_norm(w, &format!("{a}.q_norm.weight"), hd, eps)?,
                k: rms_norm(w, &format!("{a}.k_norm.weight"), hd, eps)?,
            }),
            rope: Some(Rope::new(theta, hd)),
            keys: blocks.map_or(Keys::All, Keys::BlockCausal),
            attn_out: linear(w, &format!("{a}.o_proj"), h, heads * hd, bias)?,
            ffn_norm: Some(rms_norm(
                w,
                &format!("{b}.post_attention_layernorm.weight"),
                h,
                eps,
            )?),
            ffn: Ffn::Gated {
                up: stacked(gate, up),
                act,
                down: linear(w, &format!("{b}.mlp.down_proj"), h, inter, false)?,
            },
            modulation: None,
        });
    }
    let decoder = if tied && !w.contains("lm_head.weight") {
        Linear {
            weight: tokens.clone(),
            bias: None,
        }
    } else {
        linear(w, "lm_head", vocab, h, false)?
    };
    let spec = ModelSpec {
        arch: Architecture::A2dQwen3,
        family: Family::Absorbing,
        noise: None,
        vocab_size: vocab,
        max_len,
        mask,
        pad_id: token_id(cfg, "pad_token_id", vocab)?,
        type_vocab: 0,
        time_conditioning: false,
        logits: LogitReading::Raw,
        max_len_field: "max_position_embeddings",
        // Qwen's post-processor adds nothing: the canvas is the text as given
        canvas: crate::text::CanvasRule::PostProcessor,
        vectors: None,
        attention_blocks: blocks,
    };
    let plan = Plan {
        hidden: h,
        heads,
        kv_heads: kv,
        head_dim: hd,
        vocab,
        embeddings: Embeddings {
            tokens,
            positions: None,
            token_types: None,
            norm: None,
        },
        conditioning: None,
        blocks: blocks_out,
        head: Head {
            final_norm: Some(rms_norm(w, "model.norm.weight", h, eps)?),
            final_modulation: None,
            transform: None,
            decoder,
        },
        vectors: None,
    };
    Ok((spec, plan))
}

/// dllm never saves `<|mask|>` into the checkpoint's tokenizer: its `get_tokenizer`
/// (`dllm/utils/models.py`) adds it with `tokenizer.add_special_tokens({"mask_token": "<|mask|>"})`
/// each time it loads one, which gives it the next id, `len(tokenizer)` — 151669 for Qwen3's
/// (151643 BPE ids and 26 added tokens), inside the 0.6B's 151936 embedding rows. A tokenizer.json
/// without it (Qwen3's own, or one saved before the token was added) gets the same token and id
/// here, with a warning, when the config names no `mask_token_id`. An id with no embedding row
/// is refused, naming the file and the token.
pub(in crate::model) fn add_mask_token(
    spec: &ModelSpec,
    tok: Tokenizer,
    cfg: &Config,
    warnings: &mut Vec<String>,
) -> Result<Tokenizer> {
    if spec.mask != MaskToken::Text(MASK) || tok.token_to_id(MASK).is_some() {
        return Ok(tok);
    }
    let (with, id) = tok.with_special_token(MASK);
    if id as usize >= spec.vocab_size {
        return Err(Error::Tokenizer {
            path: tok.path().to_string(),
            msg: format!(
                "has no `{MASK}` token, the mask of a Qwen3 A2D model, and the id dllm would add it as \
                 (`len(tokenizer)` = {id}) has no row in the model: {} `vocab_size` is {}; \
                 add `{MASK}` to the tokenizer or set `mask_token_id` in the config",
                cfg.path, spec.vocab_size
            ),
        });
    }
    warnings.push(format!(
        "{}: has no `{MASK}` token; added as id {id} (`len(tokenizer)`), as dllm's `get_tokenizer` adds it",
        tok.path()
    ));
    Ok(with)
}

#[cfg(test)]
mod tests {
    use crate::model::{Config, Model, Weights};
    use crate::text::Tokenizer;

    fn fixture() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/a2d_qwen3")
    }

    /// The fixture's tokenizer.json with `<|mask|>` (id 305, the last) taken out.
    fn tokenizer_without_mask() -> Tokenizer {
        let text = std::fs::read_to_string(fixture().join("tokenizer.json")).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let added = json["added_tokens"].as_array_mut().unwrap();
        let before = added.len();
        added.retain(|t| t["content"] != "<|mask|>");
        assert_eq!(added.len(), before - 1);
        Tokenizer::from_bytes("no-mask/tokenizer.json", json.to_string().as_bytes()).unwrap()
    }

    fn config(vocab: usize) -> Config {
        let text = std::fs::read_to_string(fixture().join("config.json")).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["vocab_size"] = vocab.into();
        Config::parse("no-mask/config.json", &json.to_string()).unwrap()
    }

    #[test]
    fn a_tokenizer_without_the_mask_gets_it_as_dllm_adds_it() {
        let tok = tokenizer_without_mask();
        assert_eq!(tok.token_to_id("<|mask|>"), None);
        // `len(tokenizer)`: 300 BPE ids and 5 added tokens
        assert_eq!(tok.vocab_size(), 305);
        let weights = Weights::open_dir(&fixture()).unwrap();
        let model = Model::from_parts(&config(320), &weights, Some(tok)).unwrap();
        assert_eq!(model.mask_id().unwrap(), Some(305));
        assert_eq!(model.mask_text().as_deref(), Some("<|mask|>"));
        let t = model.tokenizer.as_ref().unwrap();
        // the text of the mask reads as the mask, as it does for dllm's tokenizer
        assert_eq!(t.encode("a<|mask|>", false).unwrap().last(), Some(&305));
        assert!(
            model
                .warnings
                .iter()
                .any(|w| w.contains("no-mask/tokenizer.json") && w.contains("id 305")),
            "{:?}",
            model.warnings
        );
        // a tokenizer that has it loads as it is, with no warning about it
        let full = Model::load(&fixture()).unwrap();
        assert_eq!(full.mask_id().unwrap(), Some(305));
        assert!(!full.warnings.iter().any(|w| w.contains("<|mask|>")));
    }

    #[test]
    fn a_mask_id_past_the_vocabulary_is_refused_naming_the_file_and_token() {
        // added tokens up to the model's last row (305..=319): `<|mask|>` would come next, as 320
        let text = std::fs::read_to_string(fixture().join("tokenizer.json")).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let added = json["added_tokens"].as_array_mut().unwrap();
        added.retain(|t| t["content"] != "<|mask|>");
        for id in 305..320 {
            let mut extra = added[0].clone();
            extra["id"] = id.into();
            extra["content"] = format!("<|extra_{id}|>").into();
            added.push(extra);
        }
        let tok =
            Tokenizer::from_bytes("full/tokenizer.json", json.to_string().as_bytes()).unwrap();
        let weights = Weights::open_dir(&fixture()).unwrap();
        let err = match Model::from_parts(&config(320), &weights, Some(tok)) {
            Ok(_) => panic!("loaded with a mask id past the vocabulary"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("full/tokenizer.json"), "{err}");
        assert!(err.contains("`<|mask|>`"), "{err}");
        assert!(err.contains("= 320"), "{err}");
        assert!(err.contains("`vocab_size` is 320"), "{err}");
    }
}
