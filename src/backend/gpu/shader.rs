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
    Gather,
    Glu,
    Matmul,
    Modulate,
    Norm,
    Reduce,
    Rope,
}

/// A shared snippet a shader is composed after.
#[derive(Clone, Copy)]
enum Snippet {
    /// `activation.wgsl`, after the code-number constants it switches on.
    Activation,
    WorkgroupReduce,
}

impl Shader {
    /// The file stem in `shaders/`, also the pipeline's label and cache key.
    pub fn name(self) -> &'static str {
        match self {
            Shader::Attention => "attention",
            Shader::Embed => "embed",
            Shader::Gather => "gather",
            Shader::Glu => "glu",
            Shader::Matmul => "matmul",
            Shader::Modulate => "modulate",
            Shader::Norm => "norm",
            Shader::Reduce => "reduce",
            Shader::Rope => "rope",
        }
    }

    fn parts(self) -> (&'static [Snippet], &'static str) {
        match self {
            Shader::Attention => (&[], include_str!("../../../shaders/attention.wgsl")),
            Shader::Embed => (&[], include_str!("../../../shaders/embed.wgsl")),
            Shader::Gather => (&[], include_str!("../../../shaders/gather.wgsl")),
            Shader::Glu => (
                &[Snippet::Activation],
                include_str!("../../../shaders/glu.wgsl"),
            ),
            Shader::Matmul => (
                &[Snippet::Activation],
                include_str!("../../../shaders/matmul.wgsl"),
            ),
            Shader::Modulate => (&[], include_str!("../../../shaders/modulate.wgsl")),
            Shader::Norm => (
                &[Snippet::WorkgroupReduce],
                include_str!("../../../shaders/norm.wgsl"),
            ),
            Shader::Reduce => (
                &[Snippet::WorkgroupReduce],
                include_str!("../../../shaders/reduce.wgsl"),
            ),
            Shader::Rope => (&[], include_str!("../../../shaders/rope.wgsl")),
        }
    }

    /// The complete WGSL module: the snippets in order, then the shader's own file.
    pub fn source(self) -> String {
        let (snippets, own) = self.parts();
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
