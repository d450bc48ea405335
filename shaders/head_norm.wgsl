// Qwen3's q_norm and k_norm: RMSNorm of each query and key head of fused qkv rows, in place,
// before RoPE. One workgroup per (position, q-or-k head); v is never touched.
//
// qkv:    [L, (heads + 2·kv_heads)·hd] f32 rows [q | k | v], head-major
// weight: [2, hd] f32 (q_norm's weight, then k_norm's)
//
// Composed after shared/workgroup_reduce.wgsl (WG, reduce_sum).

struct Params { len: u32, heads: u32, kv_heads: u32, hd: u32, eps: f32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let pos = wg.x + wg.y * 65535u;
    if (pos >= p.len) { return; }
    let head = wg.z; // 0 .. heads + kv_heads: q heads then k heads, adjacent in a row
    let t = lid.x;
    let base = pos * (p.heads + 2u * p.kv_heads) * p.hd + head * p.hd;
    let w_at = select(0u, p.hd, head >= p.heads);
    var q = 0.0;
    for (var i = t; i < p.hd; i += WG) { let v = qkv[base + i]; q += v * v; }
    let inv = inverseSqrt(reduce_sum(q, t) / f32(p.hd) + p.eps);
    for (var i = t; i < p.hd; i += WG) {
        qkv[base + i] = qkv[base + i] * inv * weight[w_at + i];
    }
}
