//! MDLM's DiT (`kuleshov-group/mdlm` `models/dit.py`, HF `MDLM` → `DITBackbone`): pre-LN blocks
//! with adaLN modulation from σ, LayerNorm without bias (eps 1e-5), GELU-tanh MLP, RoPE
//! rotate-half (base 10000), untied output linear, "subs" logit reading, mask id `vocab − 1`.
//!
//! With `time_conditioning: false` (the released checkpoints) σ is zeroed, so the conditioning
//! vector and every modulation are constants: they are folded into the norms and linears here,
//! leaving a plain pre-LN encoder (dlm-reference §2.5).

use std::sync::Arc;

use super::*;
use crate::backend::cpu::{adaln, matmul};
use crate::model::plan::{Block, Conditioning, Embeddings, Ffn, Head, NormPlacement, Rope};
use crate::model::{LogitReading, MaskToken};

const FREQ_DIM: usize = 256;
const LN_EPS: f64 = 1e-5;

pub fn build(cfg: &Config, w: &Weights, opts: LoadOptions) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("hidden_dim")?;
    let heads = cfg.dim("n_heads")?;
    let n_blocks = cfg.dim("n_blocks")?;
    let cond_dim = cfg.dim("cond_dim")?;
    let max_len = cfg.dim("model_length")?;
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
    let fold = opts.fold_adaln && !time_conditioning;
    let c = fold.then(|| adaln::conditioning(&conditioning, 0.0));

    let inv_freq = match w.get_opt(&format!("{p}rotary_emb.inv_freq"), &[hd / 2])? {
        Some(t) => t.data,
        None => Rope::new(10000.0, hd).inv_freq,
    };

    let plain_ln = |name: &str| -> Result<Norm> { layer_norm(w, name, h, false, LN_EPS) };
    let mut blocks = Vec::with_capacity(n_blocks);
    for i in 0..n_blocks {
        let b = format!("{p}blocks.{i}");
        let mut attn_norm = plain_ln(&format!("{b}.norm1"))?;
        let mut ffn_norm = plain_ln(&format!("{b}.norm2"))?;
        let mut attn_out = linear(w, &format!("{b}.attn_out"), h, h, false)?;
        let up = linear(w, &format!("{b}.mlp.0"), ff, h, true)?;
        let mut down = linear(w, &format!("{b}.mlp.2"), h, ff, true)?;
        let ada = linear(w, &format!("{b}.adaLN_modulation"), 6 * h, cond_dim, true)?;
        let modulation = match &c {
            Some(c) => {
                let m = matmul::linear(c, 1, &ada);
                let part = |k: usize| &m[k * h..(k + 1) * h];
                fold_modulation(&mut attn_norm, part(0), part(1));
                scale_rows(&mut attn_out, part(2));
                fold_modulation(&mut ffn_norm, part(3), part(4));
                scale_rows(&mut down, part(5));
                None
            }
            None => Some(ada),
        };
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
    let mut final_norm = plain_ln(&format!("{o}.norm_final"))?;
    let final_ada = linear(w, &format!("{o}.adaLN_modulation"), 2 * h, cond_dim, true)?;
    let final_modulation = match &c {
        Some(c) => {
            let m = matmul::linear(c, 1, &final_ada);
            fold_modulation(&mut final_norm, &m[..h], &m[h..]);
            None
        }
        None => Some(final_ada),
    };

    let spec = ModelSpec {
        arch: Architecture::Mdlm,
        vocab_size: vocab,
        max_len,
        mask: MaskToken::Id(mask),
        pad_id: None,
        type_vocab: 0,
        time_conditioning,
        logits: LogitReading::Subs,
        max_len_field: "model_length",
        canvas: crate::text::CanvasRule::EosBothEnds,
    };
    let plan = Plan {
        hidden: h,
        heads,
        head_dim: hd,
        vocab,
        embeddings: Embeddings {
            tokens: Arc::new(w.get(&format!("{p}vocab_embed.embedding"), &[vocab, h])?),
            positions: None,
            token_types: None,
            norm: None,
        },
        conditioning: (!fold).then_some(conditioning),
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

/// `LN(x)·w·(1 + scale) + shift` is a LayerNorm with weight `w ⊙ (1 + scale)` and bias `shift`.
fn fold_modulation(norm: &mut Norm, shift: &[f32], scale: &[f32]) {
    for (w, s) in norm.weight.iter_mut().zip(scale) {
        *w *= 1.0 + s;
    }
    norm.bias = Some(shift.to_vec());
}

/// `gate ⊙ (x·Wᵀ + b)` is a linear with row j of W and b_j scaled by `gate_j`.
fn scale_rows(lin: &mut Linear, gate: &[f32]) {
    let k = lin.in_dim();
    let wt = Arc::make_mut(&mut lin.weight);
    for (row, g) in wt.data.chunks_exact_mut(k).zip(gate) {
        row.iter_mut().for_each(|v| *v *= g);
    }
    if let Some(b) = &mut lin.bias {
        b.iter_mut().zip(gate).for_each(|(v, g)| *v *= g);
    }
}
