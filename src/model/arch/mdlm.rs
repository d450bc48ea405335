//! MDLM's DiT (`kuleshov-group/mdlm` `models/dit.py`, HF `MDLM` → `DITBackbone`): pre-LN blocks
//! with adaLN modulation from σ, LayerNorm without bias (eps 1e-5), GELU-tanh MLP, RoPE
//! rotate-half (base 10000), untied output linear, "subs" logit reading, mask id `vocab − 1`.
//!
//! With `time_conditioning: false` (the released checkpoints) σ is zeroed, so the conditioning
//! vector and every modulation are constants (`Conditioning::zero_sigma`). The plan keeps them
//! as the checkpoint has them; `backend::cpu::modulate::fold_constant` folds them into the norms
//! and linears when the engine loads the model, leaving a plain pre-LN encoder
//! (σ is zeroed in `_process_sigma`, kuleshov-group/mdlm@c112c526d1:diffusion.py).

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Conditioning, Embeddings, Ffn, Head, NormPlacement, Rope};
use crate::model::{Family, LogitReading, MaskToken};

const FREQ_DIM: usize = 256;
const LN_EPS: f64 = 1e-5;

pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("hidden_dim")?;
    let heads = cfg.dim("n_heads")?;
    let n_blocks = layer_count(cfg, "n_blocks")?;
    let cond_dim = cfg.dim("cond_dim")?;
    let max_len = context(cfg, "model_length")?;
    let time_conditioning = cfg.bool_or("time_conditioning", false)?;
    let hd = head_dim(cfg, h, heads, "n_heads")?;
    cfg.require(
        hd % 2 == 0,
        "n_heads",
        format!("head dim {hd} must be even for RoPE"),
    )?;
    cfg.require(
        vocab >= 2,
        "vocab_size",
        "needs at least one token and the mask",
    )?;
    // The GPT-2 tokenizer has no mask token: MDLM appends one as the last id.
    let mask = token_id(cfg, "mask_token_id", vocab)?.unwrap_or((vocab - 1) as u32);

    // SEDD-style state dicts carry the same names without the `backbone.` prefix.
    let p = if w.contains("vocab_embed.embedding") {
        ""
    } else {
        "backbone."
    };
    let ff = 4 * h; // mlp_ratio is hard-coded to 4 in DDiTBlock

    let conditioning = Conditioning {
        freq_dim: FREQ_DIM,
        mlp_in: linear(w, &format!("{p}sigma_map.mlp.0"), cond_dim, FREQ_DIM, true)?,
        mlp_out: linear(w, &format!("{p}sigma_map.mlp.2"), cond_dim, cond_dim, true)?,
        zero_sigma: !time_conditioning,
    };

    let inv_freq = match w.get_opt(&format!("{p}rotary_emb.inv_freq"), &[hd / 2])? {
        Some(t) => t.data,
        None => Rope::new(10000.0, hd).inv_freq,
    };

    let plain_ln = |name: &str| -> Result<Norm> { layer_norm(w, name, h, false, LN_EPS) };
    let mut blocks = Vec::with_capacity(n_blocks);
    for i in 0..n_blocks {
        let b = format!("{p}blocks.{i}");
        let attn_norm = plain_ln(&format!("{b}.norm1"))?;
        let ffn_norm = plain_ln(&format!("{b}.norm2"))?;
        let attn_out = linear(w, &format!("{b}.attn_out"), h, h, false)?;
        let up = linear(w, &format!("{b}.mlp.0"), ff, h, true)?;
        let down = linear(w, &format!("{b}.mlp.2"), h, ff, true)?;
        let modulation = Some(linear(
            w,
            &format!("{b}.adaLN_modulation"),
            6 * h,
            cond_dim,
            true,
        )?);
        blocks.push(Block {
            placement: NormPlacement::Pre,
            attn_norm: Some(attn_norm),
            qkv: linear(w, &format!("{b}.attn_qkv"), 3 * h, h, false)?,
            rope: Some(Rope {
                inv_freq: inv_freq.clone(),
            }),
            window: None,
            attn_out,
            ffn_norm: Some(ffn_norm),
            ffn: Ffn::Plain {
                up,
                act: Activation::GeluTanh,
                down,
            },
            modulation,
        });
    }

    let o = format!("{p}output_layer");
    let final_norm = plain_ln(&format!("{o}.norm_final"))?;
    let final_modulation = Some(linear(
        w,
        &format!("{o}.adaLN_modulation"),
        2 * h,
        cond_dim,
        true,
    )?);

    let spec = ModelSpec {
        arch: Architecture::Mdlm,
        vocab_size: vocab,
        max_len,
        mask: MaskToken::Id(mask),
        pad_id: None,
        type_vocab: 0,
        time_conditioning,
        family: Family::Absorbing,
        logits: LogitReading::Subs,
        max_len_field: "model_length",
        canvas: crate::text::CanvasRule::EosBothEnds,
    };
    let plan = Plan {
        hidden: h,
        heads,
        kv_heads: heads,
        head_dim: hd,
        vocab,
        embeddings: Embeddings {
            tokens: Arc::new(w.matrix(&format!("{p}vocab_embed.embedding"), vocab, h)?),
            positions: None,
            token_types: None,
            norm: None,
        },
        conditioning: Some(conditioning),
        blocks,
        head: Head {
            final_norm: Some(final_norm),
            final_modulation,
            transform: None,
            decoder: linear(w, &format!("{o}.linear"), vocab, h, true)?,
        },
    };
    Ok((spec, plan))
}
