// Bidirectional multi-head attention with an optional key-padding mask, a sliding window or a
// block-causal mask (keys in the query's block of `window` positions or earlier), and
// grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
// One workgroup per (query, head); keys are visited in slices of 64 with an online softmax, so
// any sequence length runs in constant workgroup memory.
// The queries may be a span of the canvas (positions first .. first + N) whose keys and values
// come from elsewhere: a key/value cache holding the whole canvas (backend/cpu/kv_cache.rs). A
// full pass binds the same qkv rows as both.
//
// qkv:  [N, H + 2·KV] f32 rows [q | k | v], head-major (H = heads·hd, KV = kv_heads·hd); only q
//       is read
// kv:   [L, kv_row] f32, key head g at k_base + g·hd, value head g at k_base + KV + g·hd: the
//       qkv rows themselves (kv_row = H + 2·KV, k_base = H) or a cache (kv_row = 2·KV, k_base = 0)
// keep: [L] u32, 1 = key may be attended (padding mask)
// out:  [N, H] f32

// mode: 0 every key, 1 keys within `window` of the query, 2 keys in blocks of `window` up to the
// query's own
// len counts the keys (L); first is the canvas position of query row 0
struct Params {
    len: u32, heads: u32, hd: u32, window: u32, scale: f32, mode: u32, kv_heads: u32, first: u32,
    kv_row: u32, k_base: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> kv: array<f32>;
@group(0) @binding(2) var<storage, read> keep: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 64u;
const MAX_HD: u32 = 256u;
var<workgroup> q: array<f32, 256>;
var<workgroup> s: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = wg.x;
    // the masks are about canvas positions, not rows of this dispatch
    let at = p.first + i;
    let h = wg.y;
    let t = lid.x;
    let hh = p.heads * p.hd;
    let row = hh + 2u * p.kv_heads * p.hd;
    let kvh = h / (p.heads / p.kv_heads);
    let k_at = p.k_base + kvh * p.hd;
    let v_at = p.k_base + (p.kv_heads + kvh) * p.hd;
    for (var d = t; d < p.hd; d += WG) { q[d] = qkv[i * row + h * p.hd + d]; }
    workgroupBarrier();

    var lo = 0u;
    var hi = p.len;
    if (p.mode == 1u) {
        lo = select(0u, at - p.window, at > p.window);
        hi = min(p.len, at + p.window + 1u);
    } else if (p.mode == 2u) {
        hi = min(p.len, (at / p.window + 1u) * p.window);
    }
    // each thread owns output dims t, t + 64, … (up to MAX_HD / WG = 4 of them)
    var acc: array<f32, 4>;
    for (var e = 0u; e < 4u; e++) { acc[e] = 0.0; }
    var m = -3.0e38;
    var denom = 0.0;
    // a NaN or infinite score (non-finite weights) would be skipped below as a masked key:
    // remember it and write it out, so the output is non-finite as on the CPU. Judged by the
    // exponent bits, which no compiler folds away.
    var bad = false;
    var bad_score = 0.0;
    for (var j0 = lo; j0 < hi; j0 += WG) {
        let j = j0 + t;
        var sc = -3.0e38;
        if (j < hi && keep[j] == 1u) {
            var dot = 0.0;
            for (var d = 0u; d < p.hd; d++) { dot = fma(q[d], kv[j * p.kv_row + k_at + d], dot); }
            sc = dot * p.scale;
        }
        s[t] = sc;
        workgroupBarrier();
        var mx = m;
        let n = min(WG, hi - j0);
        for (var u = 0u; u < n; u++) {
            mx = max(mx, s[u]);
            if ((bitcast<u32>(s[u]) & 0x7f800000u) == 0x7f800000u) { bad = true; bad_score = s[u]; }
        }
        if (mx > -1.0e38) {
            let corr = exp(m - mx);
            denom *= corr;
            for (var e = 0u; e < 4u; e++) { acc[e] *= corr; }
            for (var u = 0u; u < n; u++) {
                if (s[u] <= -1.0e38) { continue; }
                let pj = exp(s[u] - mx);
                denom += pj;
                let vrow = (j0 + u) * p.kv_row + v_at;
                for (var e = 0u; e < 4u; e++) {
                    let d = t + e * WG;
                    if (d < p.hd) { acc[e] = fma(pj, kv[vrow + d], acc[e]); }
                }
            }
            m = mx;
        }
        workgroupBarrier();
    }
    // a row with every key masked has denom 0 and gives 0; a NaN denom (non-finite weights)
    // must stay NaN, so the sampler sees it, as on the CPU: test for 0, not for > 0
    let inv = select(1.0 / denom, 0.0, denom == 0.0);
    for (var e = 0u; e < 4u; e++) {
        let d = t + e * WG;
        if (d < p.hd) { out[i * hh + h * p.hd + d] = select(acc[e] * inv, bad_score, bad); }
    }
}
