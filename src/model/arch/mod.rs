//! One builder per architecture: it reads the config, states the architecture's facts
//! (mask token, tied decoder, position ids, logit reading) and composes the generic ops
//! of [`Plan`] from the weights. Nothing outside this folder knows a checkpoint's key names.

mod bert;
mod distilbert;
mod dream;
mod llada;
mod mdlm;
mod modernbert;
pub(super) mod qwen3;

use super::config::Config;
use super::matrix::Matrix;
use super::plan::{Activation, Linear, Norm, NormKind, Plan};
use super::stream::{DeviceRule, DeviceUse};
use super::weights::Weights;
use super::{Architecture, ModelSpec, MAX_CONTEXT, MAX_LAYERS};
use crate::error::{Error, Result};

/// Builds the spec and plan, then refuses weights for layers beyond the config's count (a
/// config with too few layers would otherwise run silently on a prefix of the model).
pub fn build(cfg: &Config, w: &Weights) -> Result<(ModelSpec, Plan)> {
    let arch = Architecture::from_model_type(cfg)?;
    let built = match arch {
        Architecture::Mdlm => mdlm::build(cfg, w, mdlm::Flavour::Mdlm),
        Architecture::Udlm => mdlm::build(cfg, w, mdlm::Flavour::Udlm),
        Architecture::Duo => mdlm::build(cfg, w, mdlm::Flavour::Duo),
        Architecture::Sedd => mdlm::build(cfg, w, mdlm::Flavour::Sedd),
        Architecture::Gaussian => mdlm::build(cfg, w, mdlm::Flavour::Gaussian),
        Architecture::Bits => mdlm::build(cfg, w, mdlm::Flavour::Bits),
        Architecture::Bert => bert::build(cfg, w, bert::Flavour::Bert),
        Architecture::Roberta => bert::build(cfg, w, bert::Flavour::Roberta),
        Architecture::DistilBert => distilbert::build(cfg, w),
        Architecture::ModernBert => modernbert::build(cfg, w),
        Architecture::Llada => llada::build(cfg, w),
        Architecture::Dream => dream::build(cfg, w),
        Architecture::A2dQwen3 => qwen3::build(cfg, w),
    }?;
    check_extra_layers(cfg, w, arch, built.1.blocks.len())?;
    Ok(built)
}

/// Which tensors a streamed load may send to a GPU as they arrive (`stream::MatrixSink`):
/// architectures whose builder reads every 2-D tensor as a weight matrix and nothing of them on
/// the host (no folding, no position table). The large real models (LLaDA, Dream, Qwen3 A2D)
/// are these; the others load as before, widened in host memory.
pub fn device_rule(arch: Architecture) -> Option<DeviceRule> {
    fn llama_like(name: &str, _shape: &[usize]) -> Option<DeviceUse> {
        Some(
            if name.ends_with("embed_tokens.weight") || name.ends_with(".wte.weight") {
                DeviceUse::Table
            } else {
                DeviceUse::Product
            },
        )
    }
    match arch {
        Architecture::Llada | Architecture::Dream | Architecture::A2dQwen3 => Some(llama_like),
        _ => None,
    }
}

/// The config field holding an architecture's layer count.
pub fn layers_field(arch: Architecture) -> &'static str {
    match arch {
        Architecture::Mdlm
        | Architecture::Udlm
        | Architecture::Duo
        | Architecture::Gaussian
        | Architecture::Bits => "n_blocks",
        Architecture::Sedd => "model.n_blocks",
        Architecture::Bert
        | Architecture::Roberta
        | Architecture::ModernBert
        | Architecture::Dream
        | Architecture::A2dQwen3 => "num_hidden_layers",
        Architecture::DistilBert | Architecture::Llada => "n_layers",
    }
}

/// The layer list a tensor name belongs to and its index: `model.layers.7.mlp.Wo.weight` →
/// (`model.layers.`, 7). The first all-digit segment of the name is the index.
pub fn layer_of(name: &str) -> Option<(&str, usize)> {
    let mut at = 0;
    for seg in name.split('.') {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            return Some((&name[..at], seg.parse().ok()?));
        }
        at += seg.len() + 1;
    }
    None
}

/// Where each architecture keeps its layers: `<list><i>.…` (the DiT families with or without
/// the `backbone.` prefix of the HF ports).
fn layer_lists(arch: Architecture) -> &'static [&'static str] {
    match arch {
        Architecture::Mdlm
        | Architecture::Udlm
        | Architecture::Duo
        | Architecture::Sedd
        | Architecture::Gaussian
        | Architecture::Bits => &["backbone.blocks.", "blocks."],
        Architecture::Bert => &["bert.encoder.layer."],
        Architecture::Roberta => &["roberta.encoder.layer."],
        Architecture::DistilBert => &["distilbert.transformer.layer."],
        Architecture::ModernBert | Architecture::Dream | Architecture::A2dQwen3 => {
            &["model.layers."]
        }
        Architecture::Llada => &["model.transformer.blocks."],
    }
}

/// A tensor of the architecture's layer list whose index is at or past the config's layer
/// count: the weights have more layers than the config says.
fn check_extra_layers(cfg: &Config, w: &Weights, arch: Architecture, layers: usize) -> Result<()> {
    let lists = layer_lists(arch);
    let names = w.names();
    let extra = names
        .iter()
        .filter_map(|n| layer_of(n).map(|(list, i)| (n, list, i)))
        .filter(|(_, list, i)| *i >= layers && lists.contains(list))
        .max_by_key(|(_, _, i)| *i);
    if let Some((name, _, i)) = extra {
        return Err(Error::config(
            &cfg.path,
            layers_field(arch),
            format!(
                "says {layers} layers but {} has weights for {} (tensor `{name}`); running only the first {layers} would give wrong output",
                w.origin(),
                i + 1
            ),
        ));
    }
    Ok(())
}

/// A context length read from the config: at most [`MAX_CONTEXT`] tokens.
fn context(cfg: &Config, field: &str) -> Result<usize> {
    let n = cfg.dim(field)?;
    cfg.require(
        n <= MAX_CONTEXT,
        field,
        format!(
            "{n} tokens is beyond the longest canvas unmask runs ({MAX_CONTEXT}): one attention head's scores alone would take {} MiB",
            (n as u128 * n as u128 * 4) >> 20
        ),
    )?;
    Ok(n)
}

/// A layer count read from the config: at most [`MAX_LAYERS`] (each layer's tensors must
/// exist anyway; this keeps the block list from being sized by a corrupt value).
fn layer_count(cfg: &Config, field: &str) -> Result<usize> {
    let n = cfg.dim(field)?;
    cfg.require(
        n <= MAX_LAYERS,
        field,
        format!("{n} layers is beyond the most unmask builds ({MAX_LAYERS})"),
    )?;
    Ok(n)
}

/// Hidden size and head count that divide into an even head dimension (RoPE needs pairs).
fn head_dim(cfg: &Config, hidden: usize, heads: usize, heads_field: &str) -> Result<usize> {
    cfg.require(
        hidden.is_multiple_of(heads),
        heads_field,
        format!("{heads} heads do not divide the hidden size {hidden}"),
    )?;
    Ok(hidden / heads)
}

/// Key/value heads for grouped-query attention (absent: one per query head). Each kv head
/// serves an equal run of query heads, so the count must divide `heads`.
fn kv_heads(cfg: &Config, field: &str, heads: usize, heads_field: &str) -> Result<usize> {
    let kv = cfg.dim_or(field, heads)?;
    cfg.require(
        kv <= heads && heads.is_multiple_of(kv),
        field,
        format!(
            "{kv} key/value heads do not divide the {heads} query heads (`{heads_field}`): grouped-query attention needs each key/value head to serve the same number of query heads"
        ),
    )?;
    Ok(kv)
}

fn linear(w: &Weights, prefix: &str, out: usize, inp: usize, bias: bool) -> Result<Linear> {
    let weight = w.matrix(&format!("{prefix}.weight"), out, inp)?;
    let bias = if bias {
        Some(w.get(&format!("{prefix}.bias"), &[out])?.data)
    } else {
        None
    };
    Ok(Linear::from_matrix(weight, bias))
}

/// Stacks separate q, k, v projections into one `[q + k + v, in]` linear.
fn fused_qkv(parts: [Linear; 3]) -> Linear {
    let weight = Matrix::stack(&[&parts[0].weight, &parts[1].weight, &parts[2].weight]);
    let bias = parts[0].bias.as_ref().map(|_| {
        parts
            .iter()
            .flat_map(|p| p.bias.iter().flatten().copied())
            .collect()
    });
    Linear::from_matrix(weight, bias)
}

/// Stacks two projections with the same input (a gated FFN's gate and up) into one.
fn stacked(a: Linear, b: Linear) -> Linear {
    Linear::from_matrix(Matrix::stack(&[&a.weight, &b.weight]), None)
}

/// A LayerNorm whose weight (and optional bias) may be stored under new or legacy names.
fn layer_norm(w: &Weights, prefix: &str, dim: usize, bias: bool, eps: f64) -> Result<Norm> {
    let weight = w.get_any(
        &[&format!("{prefix}.weight"), &format!("{prefix}.gamma")],
        &[dim],
    )?;
    let bias = if bias {
        Some(
            w.get_any(
                &[&format!("{prefix}.bias"), &format!("{prefix}.beta")],
                &[dim],
            )?
            .data,
        )
    } else {
        None
    };
    Ok(Norm {
        kind: NormKind::LayerNorm,
        weight: weight.data,
        bias,
        eps: eps as f32,
    })
}

fn rms_norm(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Norm> {
    Ok(Norm {
        kind: NormKind::RmsNorm,
        weight: w.get(name, &[dim])?.data,
        bias: None,
        eps: eps as f32,
    })
}

/// HF activation names → our activations.
fn activation(cfg: &Config, field: &str, default: &str) -> Result<Activation> {
    match cfg.str_or(field, default)? {
        "gelu" => Ok(Activation::GeluErf),
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
        "silu" | "swish" => Ok(Activation::Silu),
        other => Err(Error::config(
            &cfg.path,
            field,
            format!(
                "activation `{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, silu)"
            ),
        )),
    }
}

/// A token id from the config that must fit the vocabulary.
fn token_id(cfg: &Config, field: &str, vocab: usize) -> Result<Option<u32>> {
    match cfg.uint_opt(field)? {
        None => Ok(None),
        Some(id) if id < vocab => Ok(Some(id as u32)),
        Some(id) => Err(Error::config(
            &cfg.path,
            field,
            format!("{id} is outside the vocabulary (size {vocab})"),
        )),
    }
}
