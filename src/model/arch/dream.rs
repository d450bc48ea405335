//! Dream (`DreamModel`, `model_type: "Dream"`, e.g. `Dream-org/Dream-v0-Base-7B`): the Qwen2.5
//! layout run bidirectionally — RMSNorm (`rms_norm_eps`), RoPE rotate-half with θ = `rope_theta`,
//! grouped-query attention (`num_key_value_heads`), biases on q/k/v only, SwiGLU
//! (`gate_proj` activated, `up_proj`, `down_proj`), an untied `lm_head` unless
//! `tie_word_embeddings`, mask id from `mask_token_id` (151666 in Dream-7B).
//!
//! Dream was initialised from an autoregressive model and keeps its reading of the output: the
//! prediction for position i is output row i − 1 (row 0 for position 0). The spec says so
//! ([`LogitReading::Shifted`]); the sampler and `eval` read their rows through it, while
//! `unmask forward` returns the rows as the model computes them. The canvas starts with
//! `<|beginoftext|>` (its tokenizer's BOS, what Dream's evaluation prepends), so that every hole
//! has a row before it.

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Embeddings, Ffn, Head, Keys, NormPlacement, Rope};
use crate::model::{Family, LogitReading, MaskToken};

pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("hidden_size")?;
    let layers = layer_count(cfg, "num_hidden_layers")?;
    let heads = cfg.dim("num_attention_heads")?;
    let kv = kv_heads(cfg, "num_key_value_heads", heads, "num_attention_heads")?;
    let inter = cfg.dim("intermediate_size")?;
    // The config declares Qwen2.5's 131072 positions; RoPE has no table to run out of, so the
    // limit that matters is unmask's own (Dream itself was trained on 2048-token sequences).
    let max_len = cfg.dim("max_position_embeddings")?.min(MAX_CONTEXT);
    let theta = cfg.positive_or("rope_theta", 10000.0)?;
    let eps = cfg.positive_or("rms_norm_eps", 1e-6)?;
    let hd = head_dim(cfg, h, heads, "num_attention_heads")?;
    cfg.require(
        hd % 2 == 0,
        "num_attention_heads",
        format!("head dim {hd} must be even for RoPE"),
    )?;
    cfg.require(
        !cfg.has("rope_scaling"),
        "rope_scaling",
        "scaled RoPE is not supported (only null)",
    )?;
    let sliding = cfg.bool_or("use_sliding_window", false)?;
    cfg.require(
        !sliding,
        "use_sliding_window",
        "`true` is not supported (Dream attends to the whole canvas)",
    )?;
    // Dream's checkpoints are SwiGLU with silu, the one activation checked against the
    // reference; Qwen2-style RoPE over three position streams (mrope) is not implemented
    let act = activation(cfg, "hidden_act", "silu")?;
    cfg.require(
        act == Activation::Silu,
        "hidden_act",
        format!(
            "`{}` is not supported (only `silu`, Dream's SwiGLU)",
            cfg.str_or("hidden_act", "silu")?
        ),
    )?;
    cfg.require(
        !cfg.bool_or("use_mrope", false)?,
        "use_mrope",
        "`true` (multimodal RoPE) is not supported (only false)",
    )?;
    let tied = cfg.bool_or("tie_word_embeddings", false)?;
    let mask = token_id(cfg, "mask_token_id", vocab)?.unwrap_or(151666);
    cfg.require(
        (mask as usize) < vocab,
        "mask_token_id",
        format!("{mask} (the default) is outside the vocabulary (size {vocab})"),
    )?;

    let tokens = Arc::new(w.matrix("model.embed_tokens.weight", vocab, h)?);
    let mut blocks = Vec::with_capacity(layers);
    for i in 0..layers {
        let b = format!("model.layers.{i}");
        let a = format!("{b}.self_attn");
        let q = linear(w, &format!("{a}.q_proj"), h, h, true)?;
        let k = linear(w, &format!("{a}.k_proj"), kv * hd, h, true)?;
        let v = linear(w, &format!("{a}.v_proj"), kv * hd, h, true)?;
        let gate = linear(w, &format!("{b}.mlp.gate_proj"), inter, h, false)?;
        let up = linear(w, &format!("{b}.mlp.up_proj"), inter, h, false)?;
        blocks.push(Block {
            placement: NormPlacement::Pre,
            attn_norm: Some(rms_norm(w, &format!("{b}.input_layernorm.weight"), h, eps)?),
            qkv: fused_qkv([q, k, v]),
            rope: Some(Rope::new(theta, hd)),
            head_norms: None,
            keys: Keys::All,
            attn_out: linear(w, &format!("{a}.o_proj"), h, h, false)?,
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
    let decoder = if tied {
        Linear {
            weight: tokens.clone(),
            bias: None,
        }
    } else {
        linear(w, "lm_head", vocab, h, false)?
    };
    let spec = ModelSpec {
        arch: Architecture::Dream,
        family: Family::Absorbing,
        noise: None,
        vocab_size: vocab,
        max_len,
        mask: MaskToken::Id(mask),
        pad_id: token_id(cfg, "pad_token_id", vocab)?,
        type_vocab: 0,
        time_conditioning: false,
        logits: LogitReading::Shifted,
        max_len_field: "max_position_embeddings",
        canvas: crate::text::CanvasRule::Bos("<|beginoftext|>"),
        vectors: None,
        attention_blocks: None,
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
        blocks,
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
