// Gated linear unit: y[r, i] = act(u[r, i]) · u[r, inner + i] (GeGLU, SwiGLU).
//
// u: [rows, 2·inner] f32
// y: [rows, inner] f32
//
// Composed after shared/activation.wgsl (ACT, activate); ACT is always one of the GELUs or SiLU.

struct Params { rows: u32, inner: u32, _p0: u32, _p1: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> u: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let r = gid.y;
    if (i >= p.inner || r >= p.rows) { return; }
    let a = u[r * 2u * p.inner + i];
    let g = u[r * 2u * p.inner + p.inner + i];
    y[r * p.inner + i] = activate(a) * g;
}
