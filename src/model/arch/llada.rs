//! LLaDA (`LLaDAModelLM`, `block_type: llama`): a bidirectional LLaMA — RMSNorm (eps from
//! config), RoPE rotate-half with θ = `rope_theta`, grouped-query attention when `n_kv_heads` <
//! `n_heads` (k/v projections of `n_kv_heads · head_dim` rows), no biases, SwiGLU where `ff_proj` is the
//! gate (it gets SiLU), `up_proj` the up projection and `ff_out` the down projection, an untied
//! `ff_out` head, raw logits, mask id from `mask_token_id` (126336 in LLaDA-8B).

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Embeddings, Ffn, Head, Keys, NormPlacement, Rope};
use crate::model::{Family, LogitReading, MaskToken};

pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    // The embedding (and the head) may be padded beyond the tokenizer's vocabulary.
    let rows = cfg.dim_or("embedding_size", vocab)?;
    cfg.require(
        rows >= vocab,
        "embedding_size",
        format!("{rows} is smaller than vocab_size {vocab}"),
    )?;
    let h = cfg.dim("d_model")?;
    let layers = layer_count(cfg, "n_layers")?;
    let heads = cfg.dim("n_heads")?;
    let kv = kv_heads(cfg, "n_kv_heads", heads, "n_heads")?;
    let inter = cfg.dim("mlp_hidden_size")?;
    let max_len = context(cfg, "max_sequence_length")?;
    let theta = cfg.positive_or("rope_theta", 10000.0)?;
    let eps = cfg.positive_or("rms_norm_eps", 1e-5)?;
    let hd = head_dim(cfg, h, heads, "n_heads")?;
    cfg.require(
        hd % 2 == 0,
        "n_heads",
        format!("head dim {hd} must be even for RoPE"),
    )?;
    for (field, want) in [
        ("block_type", "llama"),
        ("layer_norm_type", "rms"),
        ("activation_type", "silu"),
    ] {
        let got = cfg.str_or(field, want)?;
        cfg.require(
            got == want,
            field,
            format!("`{got}` is not supported (only `{want}`)"),
        )?;
    }
    for (field, want) in [
        ("rope", true),
        ("include_bias", false),
        ("include_qkv_bias", false),
        ("alibi", false),
        ("input_emb_norm", false),
        ("scale_logits", false),
        ("attention_layer_norm", false),
    ] {
        let got = cfg.bool_or(field, want)?;
        cfg.require(
            got == want,
            field,
            format!("`{got}` is not supported (only `{want}`)"),
        )?;
    }
    // OLMo's clamp of q, k and v to ±clip_qkv is not implemented
    cfg.require(
        !cfg.has("clip_qkv"),
        "clip_qkv",
        "clamping q, k and v is not supported (only null)",
    )?;
    let tied = cfg.bool_or("weight_tying", false)?;
    let mask = token_id(cfg, "mask_token_id", rows)?.unwrap_or(126336);
    cfg.require(
        (mask as usize) < rows,
        "mask_token_id",
        "outside the vocabulary",
    )?;

    let t = "model.transformer";
    let tokens = Arc::new(w.matrix(&format!("{t}.wte.weight"), rows, h)?);
    let mut blocks = Vec::with_capacity(layers);
    for i in 0..layers {
        let b = format!("{t}.blocks.{i}");
        let q = linear(w, &format!("{b}.q_proj"), h, h, false)?;
        let k = linear(w, &format!("{b}.k_proj"), kv * hd, h, false)?;
        let v = linear(w, &format!("{b}.v_proj"), kv * hd, h, false)?;
        let gate = linear(w, &format!("{b}.ff_proj"), inter, h, false)?;
        let up = linear(w, &format!("{b}.up_proj"), inter, h, false)?;
        blocks.push(Block {
            placement: NormPlacement::Pre,
            attn_norm: Some(rms_norm(w, &format!("{b}.attn_norm.weight"), h, eps)?),
            qkv: fused_qkv([q, k, v]),
            rope: Some(Rope::new(theta, hd)),
            head_norms: None,
            keys: Keys::All,
            attn_out: linear(w, &format!("{b}.attn_out"), h, h, false)?,
            ffn_norm: Some(rms_norm(w, &format!("{b}.ff_norm.weight"), h, eps)?),
            ffn: Ffn::Gated {
                up: stacked(gate, up),
                act: Activation::Silu,
                down: linear(w, &format!("{b}.ff_out"), h, inter, false)?,
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
        linear(w, &format!("{t}.ff_out"), rows, h, false)?
    };
    let spec = ModelSpec {
        arch: Architecture::Llada,
        family: Family::Absorbing,
        noise: None,
        vocab_size: rows,
        max_len,
        mask: MaskToken::Id(mask),
        pad_id: token_id(cfg, "pad_token_id", rows)?,
        type_vocab: 0,
        time_conditioning: false,
        logits: LogitReading::Raw,
        max_len_field: "max_sequence_length",
        canvas: crate::text::CanvasRule::Bos("<|startoftext|>"),
        vectors: None,
        attention_blocks: None,
    };
    let plan = Plan {
        hidden: h,
        heads,
        kv_heads: kv,
        head_dim: hd,
        vocab: rows,
        embeddings: Embeddings {
            tokens,
            positions: None,
            token_types: None,
            norm: None,
        },
        conditioning: None,
        blocks,
        head: Head {
            final_norm: Some(rms_norm(w, &format!("{t}.ln_f.weight"), h, eps)?),
            final_modulation: None,
            transform: None,
            decoder,
        },
        vectors: None,
    };
    Ok((spec, plan))
}
