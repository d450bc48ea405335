//! BERT and RoBERTa masked LMs (`BertForMaskedLM`, `RobertaForMaskedLM`): post-LN encoder,
//! learned absolute positions plus token types, erf-GELU, and the MLM head
//! `LN(gelu(dense(x)))·Eᵀ + bias` with the decoder tied to the word embeddings.
//! RoBERTa differs in its names, its `<mask>` token and its position ids, which start after
//! the padding id (real tokens at `pad + 1 …`).

use std::sync::Arc;

use super::*;
use crate::model::plan::{Block, Embeddings, Ffn, Head, Keys, NormPlacement, PositionIds};
use crate::model::{Family, LogitReading, MaskToken};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Bert,
    Roberta,
}

pub fn build(cfg: &Config, w: &Weights, flavour: Flavour) -> Result<(ModelSpec, Plan)> {
    let vocab = cfg.dim("vocab_size")?;
    let h = cfg.dim("hidden_size")?;
    let layers = layer_count(cfg, "num_hidden_layers")?;
    let heads = cfg.dim("num_attention_heads")?;
    let inter = cfg.dim("intermediate_size")?;
    let max_pos = context(cfg, "max_position_embeddings")?;
    let type_vocab = cfg.dim_or("type_vocab_size", 2)?;
    let eps = cfg.positive_or("layer_norm_eps", 1e-12)?;
    let act = activation(cfg, "hidden_act", "gelu")?;
    let hd = head_dim(cfg, h, heads, "num_attention_heads")?;
    let pos_type = cfg.str_or("position_embedding_type", "absolute")?;
    cfg.require(
        pos_type == "absolute",
        "position_embedding_type",
        format!("`{pos_type}` is not supported (only `absolute`)"),
    )?;
    // a decoder-configured BERT attends causally: not the bidirectional model built here
    cfg.require(
        !cfg.bool_or("is_decoder", false)?,
        "is_decoder",
        "`true` (causal attention) is not supported (only false)",
    )?;

    let (root, positions, max_len, mask, arch) = match flavour {
        Flavour::Bert => (
            "bert",
            PositionIds::FromZero,
            max_pos,
            "[MASK]",
            Architecture::Bert,
        ),
        Flavour::Roberta => {
            let pad = token_id(cfg, "pad_token_id", vocab)?.unwrap_or(1);
            // positions pad+1 … pad+L must exist in the table
            let max_len = max_pos
                .checked_sub(pad as usize + 1)
                .filter(|&m| m > 0)
                .ok_or_else(|| {
                    Error::config(
                        &cfg.path,
                        "max_position_embeddings",
                        format!("{max_pos} leaves no positions after the padding id {pad}"),
                    )
                })?;
            (
                "roberta",
                PositionIds::AfterPadding { pad_id: pad },
                max_len,
                "<mask>",
                Architecture::Roberta,
            )
        }
    };

    let e = format!("{root}.embeddings");
    let tokens = Arc::new(w.matrix(&format!("{e}.word_embeddings.weight"), vocab, h)?);
    let embeddings = Embeddings {
        tokens: tokens.clone(),
        positions: Some((
            w.get(&format!("{e}.position_embeddings.weight"), &[max_pos, h])?,
            positions,
        )),
        token_types: Some(w.get(
            &format!("{e}.token_type_embeddings.weight"),
            &[type_vocab, h],
        )?),
        norm: Some(layer_norm(w, &format!("{e}.LayerNorm"), h, true, eps)?),
    };

    let mut blocks = Vec::with_capacity(layers);
    for i in 0..layers {
        let l = format!("{root}.encoder.layer.{i}");
        let q = linear(w, &format!("{l}.attention.self.query"), h, h, true)?;
        let k = linear(w, &format!("{l}.attention.self.key"), h, h, true)?;
        let v = linear(w, &format!("{l}.attention.self.value"), h, h, true)?;
        blocks.push(Block {
            placement: NormPlacement::Post,
            attn_norm: Some(layer_norm(
                w,
                &format!("{l}.attention.output.LayerNorm"),
                h,
                true,
                eps,
            )?),
            qkv: fused_qkv([q, k, v]),
            rope: None,
            head_norms: None,
            keys: Keys::All,
            attn_out: linear(w, &format!("{l}.attention.output.dense"), h, h, true)?,
            ffn_norm: Some(layer_norm(
                w,
                &format!("{l}.output.LayerNorm"),
                h,
                true,
                eps,
            )?),
            ffn: Ffn::Plain {
                up: linear(w, &format!("{l}.intermediate.dense"), inter, h, true)?,
                act,
                down: linear(w, &format!("{l}.output.dense"), h, inter, true)?,
            },
            modulation: None,
        });
    }

    let (dense, norm, decoder_w, bias_names) = match flavour {
        Flavour::Bert => (
            "cls.predictions.transform.dense",
            "cls.predictions.transform.LayerNorm",
            "cls.predictions.decoder.weight",
            ["cls.predictions.bias", "cls.predictions.decoder.bias"],
        ),
        Flavour::Roberta => (
            "lm_head.dense",
            "lm_head.layer_norm",
            "lm_head.decoder.weight",
            ["lm_head.bias", "lm_head.decoder.bias"],
        ),
    };
    // save_pretrained drops the tied copy; some hub files keep it.
    let decoder_weight = match w.matrix_opt(decoder_w, vocab, h)? {
        Some(t) => Arc::new(t),
        None => tokens,
    };
    let head = Head {
        final_norm: None,
        final_modulation: None,
        transform: Some((
            linear(w, dense, h, h, true)?,
            act,
            layer_norm(w, norm, h, true, eps)?,
        )),
        decoder: Linear {
            weight: decoder_weight,
            bias: Some(w.get_any(&bias_names, &[vocab])?.data),
        },
    };

    let spec = ModelSpec {
        arch,
        family: Family::Absorbing,
        noise: None,
        vocab_size: vocab,
        max_len,
        mask: MaskToken::Text(mask),
        pad_id: token_id(cfg, "pad_token_id", vocab)?,
        type_vocab,
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
