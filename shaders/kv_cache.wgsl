// cache[first + r, :] = qkv[r, H .. H + 2·KV]: the keys and values of N fused qkv rows (after the
// q/k norms and RoPE) kept at their canvas positions, so a later pass over a span of the canvas
// can attend to every position without recomputing it (backend/cpu/kv_cache.rs).
//
// qkv:   [N, H + 2·KV] f32 rows [q | k | v] (H = heads·hd, KV = kv_heads·hd)
// cache: [L, 2·KV] f32 rows [k | v], L ≥ first + N

struct Params { n: u32, hh: u32, kv: u32, first: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> cache: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    let w = 2u * p.kv;
    if (c >= w || r >= p.n) { return; }
    cache[(p.first + r) * w + c] = qkv[r * (p.hh + w) + p.hh + c];
}
