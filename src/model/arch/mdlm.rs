//! MDLM's DiT (`kuleshov-group/mdlm` `models/dit.py`, HF `MDLM` → `DITBackbone`): pre-LN blocks
//! with adaLN modulation from σ, LayerNorm without bias (eps 1e-5), GELU-tanh MLP, RoPE
//! rotate-half (base 10000), untied output linear, "subs" logit reading, mask id `vocab − 1`.
//!
//! With `time_conditioning: false` (the released checkpoints) σ is zeroed, so the conditioning
//! vector and every modulation are constants (`Conditioning::zero_sigma`). The plan keeps them
//! as the checkpoint has them; `backend::cpu::modulate::fold_constant` folds them into the norms
//! and linears when the engine loads the model, leaving a plain pre-LN encoder
//! (σ is zeroed in `_process_sigma`, kuleshov-group/mdlm@c112c526d1:diffusion.py).
//!
//! The same DiT, always time-conditioned on σ (so never folded), is the backbone of three
//! other families; only the config, the key prefix and the reading of the output differ:
//! - UDLM (`kuleshov-group/udlm-lm1b`, discrete-diffusion-guidance@edb0f8c28b
//!   `models/hf/modeling_udlm.py`): MDLM's config keys and `backbone.` names; uniform-state,
//!   read as a plain log-softmax; `cfg: true` (a class-conditional backbone) is refused.
//! - Duo (`s-sahoo/duo`, duo@7c9b498f5b `models/dit.py`): the same keys (`model_type` "DUO",
//!   `causal`), uniform-state, plain log-softmax; its vocabulary's last id is `[PAD]`, not a
//!   mask.
//! - SEDD (`louaaron/sedd-small`, Score-Entropy-Discrete-Diffusion@0605786da5
//!   `model/transformer.py`): config.json is the training config (`tokens`, `graph.type`,
//!   `noise.*`, `model.*`), names without `backbone.`; the output is a log score; the absorb
//!   graph appends the mask as id `tokens`.

use std::sync::Arc;

use super::*;
use crate::model::plan::{
    Block, Conditioning, Embeddings, Ffn, Head, Keys, NormPlacement, Readout, Rope, VectorIo,
};
use crate::model::{Family, LogitReading, MaskToken, Noise, VectorSpec};
use crate::text::CanvasRule;

const FREQ_DIM: usize = 256;
const LN_EPS: f64 = 1e-5;
/// ε of the log-linear schedule UDLM and Duo train with (`LogLinearNoise`, `LogLinear`).
const LOG_LINEAR_EPS: f64 = 1e-3;

/// The checkpoints that run on this DiT.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Mdlm,
    Udlm,
    Duo,
    Sedd,
    /// Our continuous families (`train/continuous.py`): the DiT fed vectors.
    Gaussian,
    Bits,
}

/// The sizes a flavour reads from its config, and the facts it states.
struct Dit {
    hidden: usize,
    heads: usize,
    heads_field: &'static str,
    blocks: usize,
    cond_dim: usize,
    spec: ModelSpec,
}

/// The config of an MDLM-layout checkpoint (MDLM, UDLM, Duo): `vocab_size`, `hidden_dim`,
/// `n_heads`, `n_blocks`, `cond_dim`, `model_length`.
fn mdlm_layout(cfg: &Config, flavour: Flavour) -> Result<Dit> {
    let vocab = cfg.dim("vocab_size")?;
    let time_conditioning = match flavour {
        Flavour::Mdlm => cfg.bool_or("time_conditioning", false)?,
        // UDLMConfig defaults to true; the uniform runs assert it
        _ => cfg.bool_or("time_conditioning", true)?,
    };
    let (arch, family, mask, logits, noise, canvas) = match flavour {
        Flavour::Mdlm => {
            cfg.require(
                vocab >= 2,
                "vocab_size",
                "needs at least one token and the mask",
            )?;
            // The GPT-2 tokenizer has no mask token: MDLM appends one as the last id.
            let mask = token_id(cfg, "mask_token_id", vocab)?.unwrap_or((vocab - 1) as u32);
            (
                Architecture::Mdlm,
                Family::Absorbing,
                MaskToken::Id(mask),
                LogitReading::Subs,
                None,
                CanvasRule::EosBothEnds,
            )
        }
        Flavour::Udlm => {
            cfg.require(
                !cfg.bool_or("cfg", false)?,
                "cfg",
                "a class-conditional UDLM (classifier-free guidance labels) is not supported: its conditioning adds a label embedding (`cond_map`) that unmask does not run",
            )?;
            cfg.require(
                time_conditioning,
                "time_conditioning",
                "a uniform-state model must be conditioned on σ (UDLM asserts it)",
            )?;
            (
                Architecture::Udlm,
                Family::Uniform,
                MaskToken::None,
                LogitReading::LogSoftmax,
                Some(Noise::LogLinear {
                    eps: LOG_LINEAR_EPS,
                }),
                // LM1B with bert-base-uncased: [CLS] … [SEP]; our own uniform model: EOS ends
                CanvasRule::PostProcessorElseEos,
            )
        }
        Flavour::Duo => {
            cfg.require(
                !cfg.bool_or("causal", false)?,
                "causal",
                "a causal (autoregressive) Duo backbone has no σ conditioning and is not a diffusion model; unmask runs the non-causal one",
            )?;
            cfg.require(
                time_conditioning,
                "time_conditioning",
                "a uniform-state model must be conditioned on σ (Duo asserts it)",
            )?;
            (
                Architecture::Duo,
                Family::Uniform,
                MaskToken::None,
                LogitReading::LogSoftmax,
                Some(Noise::LogLinear {
                    eps: LOG_LINEAR_EPS,
                }),
                // OpenWebText with GPT-2, wrapped between <|endoftext|> as MDLM's
                CanvasRule::EosBothEnds,
            )
        }
        Flavour::Sedd | Flavour::Gaussian | Flavour::Bits => {
            unreachable!("SEDD and the continuous families have their own layouts")
        }
    };
    let max_len = context(cfg, "model_length")?;
    Ok(Dit {
        hidden: cfg.dim("hidden_dim")?,
        heads: cfg.dim("n_heads")?,
        heads_field: "n_heads",
        blocks: layer_count(cfg, "n_blocks")?,
        cond_dim: cfg.dim("cond_dim")?,
        spec: ModelSpec {
            arch,
            family,
            noise,
            vocab_size: vocab,
            max_len,
            mask,
            pad_id: None,
            type_vocab: 0,
            time_conditioning,
            logits,
            max_len_field: "model_length",
            canvas,
            vectors: None,
            attention_blocks: None,
        },
    })
}

/// SEDD's config: its Hydra training config as `PyTorchModelHubMixin` saved it. The vocabulary
/// is `tokens` (+ 1 for the absorb graph's mask, the last id), the sizes are under `model.`,
/// the noise under `noise.` (`model/transformer.py:SEDD.__init__`, `noise_lib.get_noise`).
fn sedd_layout(cfg: &Config) -> Result<Dit> {
    let tokens = cfg.dim("tokens")?;
    let uniform = match cfg.str("graph.type")? {
        "absorb" => false,
        "uniform" => true,
        other => {
            return Err(Error::config(
                &cfg.path,
                "graph.type",
                format!("graph `{other}` is not supported (absorb, uniform)"),
            ))
        }
    };
    let vocab = if uniform { tokens } else { tokens + 1 };
    let scale_by_sigma = cfg.bool_or("model.scale_by_sigma", false)?;
    cfg.require(
        !(uniform && scale_by_sigma),
        "model.scale_by_sigma",
        "scaling the score by σ is only defined for the absorb graph (SEDD asserts it)",
    )?;
    let noise = match cfg.str("noise.type")? {
        "loglinear" => Noise::LogLinear {
            eps: LOG_LINEAR_EPS,
        },
        "geometric" => {
            let sigma_min = cfg.positive_or("noise.sigma_min", 1e-3)?;
            let sigma_max = cfg.positive_or("noise.sigma_max", 1.0)?;
            cfg.require(
                sigma_min < sigma_max,
                "noise.sigma_max",
                format!("{sigma_max} must be greater than noise.sigma_min ({sigma_min})"),
            )?;
            Noise::Geometric {
                sigma_min,
                sigma_max,
            }
        }
        other => {
            return Err(Error::config(
                &cfg.path,
                "noise.type",
                format!("noise `{other}` is not supported (loglinear, geometric)"),
            ))
        }
    };
    let max_len = context(cfg, "model.length")?;
    Ok(Dit {
        hidden: cfg.dim("model.hidden_size")?,
        heads: cfg.dim("model.n_heads")?,
        heads_field: "model.n_heads",
        blocks: layer_count(cfg, "model.n_blocks")?,
        cond_dim: cfg.dim("model.cond_dim")?,
        spec: ModelSpec {
            arch: Architecture::Sedd,
            family: Family::Score { uniform },
            noise: Some(noise),
            vocab_size: vocab,
            max_len,
            mask: if uniform {
                MaskToken::None
            } else {
                MaskToken::Id(tokens as u32)
            },
            pad_id: None,
            type_vocab: 0,
            time_conditioning: true,
            logits: LogitReading::LogScore { scale_by_sigma },
            max_len_field: "model.length",
            // OpenWebText with GPT-2, documents separated by <|endoftext|>
            canvas: CanvasRule::EosBothEnds,
            vectors: None,
            attention_blocks: None,
        },
    })
}

/// The config of our continuous models (`train/export.py`): MDLM's keys plus the family's
/// (`embed_dim`, `gamma_min`, `gamma_max`; or `bits`, `bit_scale`), returning the vector width.
fn continuous_layout(cfg: &Config, flavour: Flavour) -> Result<(Dit, usize)> {
    let vocab = cfg.dim("vocab_size")?;
    let str_is = |field: &str, want: &str| -> Result<()> {
        let got = cfg.str_or(field, want)?;
        cfg.require(
            got == want,
            field,
            format!("`{got}` is not supported (this model type samples `{want}`)"),
        )
    };
    str_is("conditioning", "neg_log_snr")?;
    str_is("known_text", "clean")?;
    let (arch, family, noise, width) = if flavour == Flavour::Gaussian {
        str_is("schedule", "linear_gamma")?;
        let gamma_min = cfg.float_or("gamma_min", -3.0)?;
        let gamma_max = cfg.float_or("gamma_max", 6.0)?;
        cfg.require(
            gamma_min.is_finite() && gamma_max.is_finite() && gamma_min < gamma_max,
            "gamma_max",
            format!("{gamma_max} must be finite and above gamma_min ({gamma_min})"),
        )?;
        let width = cfg.dim("embed_dim")?;
        (
            Architecture::Gaussian,
            Family::Gaussian,
            Noise::LinearGamma {
                gamma_min,
                gamma_max,
            },
            width,
        )
    } else {
        str_is("schedule", "cosine")?;
        let bits = cfg.dim("bits")?;
        cfg.require(
            bits <= 24 && (1usize << bits) >= vocab,
            "bits",
            format!("{bits} bits cannot number {vocab} tokens (at most 24 bits)"),
        )?;
        (Architecture::Bits, Family::Bits, Noise::Cosine, bits)
    };
    let max_len = context(cfg, "model_length")?;
    Ok((
        Dit {
            hidden: cfg.dim("hidden_dim")?,
            heads: cfg.dim("n_heads")?,
            heads_field: "n_heads",
            blocks: layer_count(cfg, "n_blocks")?,
            cond_dim: cfg.dim("cond_dim")?,
            spec: ModelSpec {
                arch,
                family,
                noise: Some(noise),
                vocab_size: vocab,
                max_len,
                mask: MaskToken::None,
                pad_id: None,
                type_vocab: 0,
                time_conditioning: true,
                // the x0 distribution (Gaussian) or per-bit logits: read as they are
                logits: LogitReading::LogSoftmax,
                max_len_field: "model_length",
                // trained on rows framed by <|endoftext|> as the default model
                canvas: CanvasRule::EosBothEnds,
                vectors: None,
                attention_blocks: None,
            },
        },
        width,
    ))
}

/// The continuous input path and the clean-vector table (see [`VectorIo`]).
fn vector_io(
    cfg: &Config,
    w: &Weights,
    flavour: Flavour,
    vocab: usize,
    h: usize,
    width: usize,
) -> Result<(VectorIo, Matrix)> {
    let p = "backbone.";
    let input = w.get(&format!("{p}input_linear.weight"), &[h, width])?;
    let selfcond = w.get(&format!("{p}selfcond_linear.weight"), &[h, width])?;
    let bias = w.get(&format!("{p}input_linear.bias"), &[h])?.data;
    let mut joined = Vec::with_capacity(h * 2 * width);
    for r in 0..h {
        joined.extend_from_slice(&input.data[r * width..(r + 1) * width]);
        joined.extend_from_slice(&selfcond.data[r * width..(r + 1) * width]);
    }
    let input = Linear::from_matrix(Matrix::f32(h, 2 * width, joined), Some(bias));
    let (table, readout) = if flavour == Flavour::Gaussian {
        // Plaid's `EmbeddingMatrix`: rows used at unit norm
        let name = format!("{p}embedding_matrix");
        let mut e = w.get(&name, &[vocab, width])?.data;
        for (i, row) in e.chunks_mut(width).enumerate() {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !(norm.is_finite() && norm > 0.0) {
                return Err(Error::tensor(
                    w.origin(),
                    &name,
                    format!("row {i} has norm {norm}: it cannot be scaled to unit length"),
                ));
            }
            row.iter_mut().for_each(|v| *v /= norm);
        }
        (e, Readout::Softmax)
    } else {
        let scale = cfg.float_or("bit_scale", 0.5)?;
        cfg.require(
            scale.is_finite() && scale > 0.0,
            "bit_scale",
            format!("{scale} must be a positive number"),
        )?;
        let scale = scale as f32;
        // MSB first, ±scale (`int2bits`, then `(2b − 1)·b_scale`)
        let e = (0..vocab)
            .flat_map(|id| {
                (0..width).map(move |b| {
                    if (id >> (width - 1 - b)) & 1 == 1 {
                        scale
                    } else {
                        -scale
                    }
                })
            })
            .collect();
        (e, Readout::Bits { scale })
    };
    Ok((
        VectorIo {
            width,
            input,
            readout,
        },
        Matrix::f32(vocab, width, table),
    ))
}

pub fn build(cfg: &Config, w: &Weights, flavour: Flavour) -> Result<(ModelSpec, Plan)> {
    let (dit, width) = match flavour {
        Flavour::Sedd => (sedd_layout(cfg)?, 0),
        Flavour::Gaussian | Flavour::Bits => continuous_layout(cfg, flavour)?,
        _ => (mdlm_layout(cfg, flavour)?, 0),
    };
    let (vocab, h, heads, n_blocks, cond_dim) = (
        dit.spec.vocab_size,
        dit.hidden,
        dit.heads,
        dit.blocks,
        dit.cond_dim,
    );
    let time_conditioning = dit.spec.time_conditioning;
    let hd = head_dim(cfg, h, heads, dit.heads_field)?;
    cfg.require(
        hd % 2 == 0,
        dit.heads_field,
        format!("head dim {hd} must be even for RoPE"),
    )?;

    // HF ports (MDLM, UDLM, Duo) hold the DiT as `backbone`; SEDD's state dict is the DiT's
    // own, the same names without the prefix.
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
            head_norms: None,
            keys: Keys::All,
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

    let mut spec = dit.spec;
    let (vectors, tokens) = if width > 0 {
        let (io, table) = vector_io(cfg, w, flavour, vocab, h, width)?;
        let table = Arc::new(table);
        spec.vectors = Some(VectorSpec {
            width,
            table: table.clone(),
            readout: io.readout,
        });
        (Some(io), table)
    } else {
        (
            None,
            Arc::new(w.matrix(&format!("{p}vocab_embed.embedding"), vocab, h)?),
        )
    };
    let out_dim = match vectors.as_ref().map(|io| io.readout) {
        Some(Readout::Bits { .. }) => width,
        _ => vocab,
    };
    let plan = Plan {
        hidden: h,
        heads,
        kv_heads: heads,
        head_dim: hd,
        vocab: out_dim,
        embeddings: Embeddings {
            tokens,
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
            decoder: linear(w, &format!("{o}.linear"), out_dim, h, true)?,
        },
        vectors,
    };
    Ok((spec, plan))
}
