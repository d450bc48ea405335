//! ModernBERT (`ModernBertForMaskedLM`): pre-LN encoder with LayerNorm without bias by default,
//! fused Wqkv, RoPE rotate-half (global layers θ = `global_rope_theta`, local layers
//! `local_rope_theta` with a sliding window of ±`local_attention/2`; every
//! `global_attn_every_n_layers`-th layer is global, counting from 0), GeGLU MLP, no position
//! embeddings, a norm after the embeddings, layer 0 without an attention norm, and the head
//! `norm(act(dense(x)))·Eᵀ + decoder.bias` tied to the token embeddings.

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Embeddings, Ffn, Head, Keys, NormPlacement, Rope};
use crate::model::{Family, LogitReading, MaskToken};

pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("hidden_size")?;
    let layers = layer_count(cfg, "num_hidden_layers")?;
    let heads = cfg.dim("num_attention_heads")?;
    let inter = cfg.dim("intermediate_size")?;
    let max_pos = context(cfg, "max_position_embeddings")?;
    let eps = cfg.positive_or("norm_eps", 1e-5)?;
    let norm_bias = cfg.bool_or("norm_bias", false)?;
    let attn_bias = cfg.bool_or("attention_bias", false)?;
    let mlp_bias = cfg.bool_or("mlp_bias", false)?;
    let cls_bias = cfg.bool_or("classifier_bias", false)?;
    let dec_bias = cfg.bool_or("decoder_bias", true)?;
    let every = cfg.dim_or("global_attn_every_n_layers", 3)?;
    let local = cfg.dim_or("local_attention", 128)?;
    let global_theta = cfg.positive_or("global_rope_theta", 160000.0)?;
    let local_theta = cfg.positive_or("local_rope_theta", global_theta)?;
    let act = activation(cfg, "hidden_activation", "gelu")?;
    let head_act = activation(cfg, "classifier_activation", "gelu")?;
    let hd = head_dim(cfg, h, heads, "num_attention_heads")?;
    cfg.require(
        hd % 2 == 0,
        "num_attention_heads",
        format!("head dim {hd} must be even for RoPE"),
    )?;

    let norm = |name: &str| layer_norm(w, name, h, norm_bias, eps);
    let tokens = Arc::new(w.matrix("model.embeddings.tok_embeddings.weight", vocab, h)?);
    let embeddings = Embeddings {
        tokens: tokens.clone(),
        positions: None,
        token_types: None,
        norm: Some(norm("model.embeddings.norm")?),
    };

    let mut blocks = Vec::with_capacity(layers);
    for i in 0..layers {
        let l = format!("model.layers.{i}");
        let global = i % every == 0;
        // The first layer's attention norm is an Identity: the embedding norm precedes it.
        let attn_norm = if i == 0 && !w.contains(&format!("{l}.attn_norm.weight")) {
            None
        } else {
            Some(norm(&format!("{l}.attn_norm"))?)
        };
        blocks.push(Block {
            placement: NormPlacement::Pre,
            attn_norm,
            qkv: linear(w, &format!("{l}.attn.Wqkv"), 3 * h, h, attn_bias)?,
            rope: Some(Rope::new(
                if global { global_theta } else { local_theta },
                hd,
            )),
            head_norms: None,
            keys: if global {
                Keys::All
            } else {
                Keys::Window(local / 2)
            },
            attn_out: linear(w, &format!("{l}.attn.Wo"), h, h, attn_bias)?,
            ffn_norm: Some(norm(&format!("{l}.mlp_norm"))?),
            ffn: Ffn::Gated {
                up: linear(w, &format!("{l}.mlp.Wi"), 2 * inter, h, mlp_bias)?,
                act,
                down: linear(w, &format!("{l}.mlp.Wo"), h, inter, mlp_bias)?,
            },
            modulation: None,
        });
    }

    let decoder_weight = match w.matrix_opt("decoder.weight", vocab, h)? {
        Some(t) => Arc::new(t),
        None => tokens,
    };
    let head = Head {
        final_norm: Some(norm("model.final_norm")?),
        final_modulation: None,
        transform: Some((
            linear(w, "head.dense", h, h, cls_bias)?,
            head_act,
            norm("head.norm")?,
        )),
        decoder: Linear {
            weight: decoder_weight,
            bias: if dec_bias {
                Some(w.get("decoder.bias", &[vocab])?.data)
            } else {
                None
            },
        },
    };
    let spec = ModelSpec {
        arch: Architecture::ModernBert,
        family: Family::Absorbing,
        noise: None,
        vocab_size: vocab,
        max_len: max_pos,
        mask: MaskToken::Text("[MASK]"),
        pad_id: token_id(cfg, "pad_token_id", vocab)?,
        type_vocab: 0,
        time_conditioning: false,
        logits: LogitReading::Raw,
        max_len_field: "max_position_embeddings",
        canvas: crate::text::CanvasRule::PostProcessor,
        vectors: None,
        attention_blocks: None,
    };
    let plan = Plan {
        hidden: h,
        heads,
        kv_heads: heads,
        head_dim: hd,
        vocab,
        embeddings,
        conditioning: None,
        blocks,
        head,
        vectors: None,
    };
    Ok((spec, plan))
}
