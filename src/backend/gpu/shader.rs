//! Each kernel's WGSL, composed from its own file in `shaders/` and the shared snippets in
//! `shaders/shared/` it needs, so a helper used by several kernels is written once. The text is
//! embedded at build time and joined when a kernel is first compiled (`Gpu::kernel` caches the
//! pipeline by shader name, so composition happens once per kernel and override constants).

use super::activation;

const ACTIVATION: &str = include_str!("../../../shaders/shared/activation.wgsl");
const WORKGROUP_REDUCE: &str = include_str!("../../../shaders/shared/workgroup_reduce.wgsl");

/// A shader of `shaders/`, one per op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Attention,
    Embed,
    Estimate,
    Gather,
    Glu,
    HeadNorm,
    KvCache,
    Matmul,
    Modulate,
    Norm,
    Reduce,
    Rope,
    VectorUpdate,
}

/// A shared snippet a shader is composed after.
#[derive(Clone, Copy)]
enum Snippet {
    /// `activation.wgsl`, after the code-number constants it switches on.
    Activation,
    WorkgroupReduce,
}

impl Shader {
    /// The file stem in `shaders/` (also the pipeline's label and cache key), the snippets the
    /// shader is composed after, and its own source.
    fn parts(self) -> (&'static str, &'static [Snippet], &'static str) {
        use Snippet::{Activation as Act, WorkgroupReduce as Reduce};
        macro_rules! wgsl {
            ($name:literal) => {
                include_str!(concat!("../../../shaders/", $name, ".wgsl"))
            };
        }
        match self {
            Shader::Attention => ("attention", &[], wgsl!("attention")),
            Shader::Embed => ("embed", &[], wgsl!("embed")),
            Shader::Estimate => ("estimate", &[Reduce], wgsl!("estimate")),
            Shader::Gather => ("gather", &[], wgsl!("gather")),
            Shader::Glu => ("glu", &[Act], wgsl!("glu")),
            Shader::HeadNorm => ("head_norm", &[Reduce], wgsl!("head_norm")),
            Shader::KvCache => ("kv_cache", &[], wgsl!("kv_cache")),
            Shader::Matmul => ("matmul", &[Act], wgsl!("matmul")),
            Shader::Modulate => ("modulate", &[], wgsl!("modulate")),
            Shader::Norm => ("norm", &[Reduce], wgsl!("norm")),
            Shader::Reduce => ("reduce", &[Reduce], wgsl!("reduce")),
            Shader::Rope => ("rope", &[], wgsl!("rope")),
            Shader::VectorUpdate => ("vector_update", &[], wgsl!("vector_update")),
        }
    }

    pub fn name(self) -> &'static str {
        self.parts().0
    }

    /// The complete WGSL module: the snippets in order, then the shader's own file.
    pub fn source(self) -> String {
        let (_, snippets, own) = self.parts();
        let mut src = String::new();
        for s in snippets {
            match s {
                Snippet::Activation => {
                    src.push_str(&activation::wgsl_constants());
                    src.push_str(ACTIVATION);
                }
                Snippet::WorkgroupReduce => src.push_str(WORKGROUP_REDUCE),
            }
            src.push('\n');
        }
        src.push_str(own);
        src
    }
}
