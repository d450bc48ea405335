// Rotary embedding, rotate-half layout, on the q and k parts of fused qkv rows, in place:
// out[:hd/2] = x1·cos − x2·sin, out[hd/2:] = x1·sin + x2·cos. v is never touched.
//
// qkv: [L, (heads + 2·kv_heads)·hd] f32 rows [q | k | v]
// cs:  [L, hd/2, 2] f32 (cos, sin), made on the host in f64 as the CPU path does

struct Params { len: u32, heads: u32, hd: u32, kv_heads: u32 }

// threads per workgroup, set by the dispatcher (backend/gpu/mod.rs WG)
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = p.hd / 2u;
    // one thread per (position, q-or-k head, pair)
    let per_pos = (p.heads + p.kv_heads) * half;
    let idx = gid.x + gid.y * 65535u * 64u;
    if (idx >= p.len * per_pos) { return; }
    let pos = idx / per_pos;
    let rest = idx % per_pos;
    let head = rest / half;      // 0 .. heads + kv_heads: q heads then k heads, adjacent in a row
    let j = rest % half;
    let base = pos * (p.heads + 2u * p.kv_heads) * p.hd + head * p.hd;
    let c = cs[(pos * half + j) * 2u];
    let s = cs[(pos * half + j) * 2u + 1u];
    let a = qkv[base + j];
    let b = qkv[base + half + j];
    qkv[base + j] = a * c - b * s;
    qkv[base + half + j] = a * s + b * c;
}
