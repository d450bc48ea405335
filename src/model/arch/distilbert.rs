//! DistilBERT (`DistilBertForMaskedLM`): BERT's post-LN encoder without token types, LayerNorm
//! eps fixed at 1e-12, and the head `vocab_layer_norm(gelu(vocab_transform(x)))` with the
//! projector tied to the word embeddings.

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Embeddings, Ffn, Head, Keys, NormPlacement, PositionIds};
use crate::model::{Family, LogitReading, MaskToken};

const EPS: f64 = 1e-12;

pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("dim")?;
    let layers = layer_count(cfg, "n_layers")?;
    let heads = cfg.dim("n_heads")?;
    let inter = cfg.dim("hidden_dim")?;
    let max_pos = context(cfg, "max_position_embeddings")?;
    let act = activation(cfg, "activation", "gelu")?;
    let hd = head_dim(cfg, h, heads, "n_heads")?;

    let e = "distilbert.embeddings";
    let tokens = Arc::new(w.matrix(&format!("{e}.word_embeddings.weight"), vocab, h)?);
    let embeddings = Embeddings {
        tokens: tokens.clone(),
        // sinusoidal tables are stored in the checkpoint like learned ones
        positions: Some((
            w.get(&format!("{e}.position_embeddings.weight"), &[max_pos, h])?,
            PositionIds::FromZero,
        )),
        token_types: None,
        norm: Some(layer_norm(w, &format!("{e}.LayerNorm"), h, true, EPS)?),
    };

    let mut blocks = Vec::with_capacity(layers);
    for i in 0..layers {
        let l = format!("distilbert.transformer.layer.{i}");
        let q = linear(w, &format!("{l}.attention.q_lin"), h, h, true)?;
        let k = linear(w, &format!("{l}.attention.k_lin"), h, h, true)?;
        let v = linear(w, &format!("{l}.attention.v_lin"), h, h, true)?;
        blocks.push(Block {
            placement: NormPlacement::Post,
            attn_norm: Some(layer_norm(w, &format!("{l}.sa_layer_norm"), h, true, EPS)?),
            qkv: fused_qkv([q, k, v]),
            rope: None,
            head_norms: None,
            keys: Keys::All,
            attn_out: linear(w, &format!("{l}.attention.out_lin"), h, h, true)?,
            ffn_norm: Some(layer_norm(
                w,
                &format!("{l}.output_layer_norm"),
                h,
                true,
                EPS,
            )?),
            ffn: Ffn::Plain {
                up: linear(w, &format!("{l}.ffn.lin1"), inter, h, true)?,
                act,
                down: linear(w, &format!("{l}.ffn.lin2"), h, inter, true)?,
            },
            modulation: None,
        });
    }

    let decoder_weight = match w.matrix_opt("vocab_projector.weight", vocab, h)? {
        Some(t) => Arc::new(t),
        None => tokens,
    };
    let head = Head {
        final_norm: None,
        final_modulation: None,
        transform: Some((
            linear(w, "vocab_transform", h, h, true)?,
            act,
            layer_norm(w, "vocab_layer_norm", h, true, EPS)?,
        )),
        decoder: Linear {
            weight: decoder_weight,
            bias: Some(w.get("vocab_projector.bias", &[vocab])?.data),
        },
    };
    let spec = ModelSpec {
        arch: Architecture::DistilBert,
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
