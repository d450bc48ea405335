// Per-row reductions of the head's logits, so only a few KB come back per step:
// max, log-sum-exp at temperature 1 and at the sampling temperature, Σ p·log p, a flag for a
// non-finite allowed logit, the K largest logits with their ids (ties to the lower id), the
// logits of a few ids the host names, and one draw from the tail (the allowed tokens after the
// K candidates) at the sampling temperature, so that a sampled token that falls outside the
// candidates needs no row on the host either. Suppressed tokens (allowed = 0) are left out of
// everything but the named ids. One workgroup of 64 threads per row, workgroup-memory
// reductions.
//
// logits:  [R, V] f32
// allowed: [V] u32 (1 = may be proposed)
// stats:   [R, 5] f32 — max, lse(x), lse(x / T), Σ p log p, non-finite (1.0 when some
//          allowed logit is NaN or ±inf, judged by its exponent bits: compilers may fold x != x)
// top_ids: [R, K] u32;  top_val: [R, K] f32 (raw logits, descending)
// ask:     [1 + R·P] u32 (written by the host each step) — ask[0] seeds the tail draws;
//          then P ids per row (P = p.probes, 0 or 2) whose logits are wanted
// extra:   [R, 2] u32, then [R, P] u32 — per row the tail draw's id (0xffffffff when the tail
//          is empty or underflows) and its raw logit (f32 bits); then the P named ids' raw
//          logits (f32 bits; −inf past the vocabulary; allowed or not: the host decides what a
//          suppressed id means)
//
// Composed after shared/workgroup_reduce.wgsl (WG, wg_val, reduce_sum, reduce_max).

override K: u32 = 16u;

struct Params { rows: u32, v: u32, inv_t: f32, probes: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> allowed: array<u32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> top_ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> top_val: array<f32>;
@group(0) @binding(5) var<storage, read> ask: array<u32>;
@group(0) @binding(6) var<storage, read_write> extra: array<u32>;
@group(0) @binding(7) var<uniform> p: Params;

const NONE: f32 = -3.0e38;
// the ids beside wg_val in the top-K tree
var<workgroup> wg_id: array<u32, WG>;

// (value, id) ordering: larger value first, then smaller id
fn before(v: f32, i: u32, w: f32, j: u32) -> bool {
    return v > w || (v == w && i < j);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x;
    let t = lid.x;
    if (r >= p.rows) { return; }
    let base = r * p.v;
    if (t < p.probes) {
        let id = ask[1u + r * p.probes + t];
        // −inf's bits (a const bitcast to inf is refused by Tint)
        var x = 0xff800000u;
        if (id < p.v) { x = bitcast<u32>(logits[base + id]); }
        extra[p.rows * 2u + r * p.probes + t] = x;
    }

    var mx = NONE;
    var bad = 0.0;
    for (var i = t; i < p.v; i += WG) {
        if (allowed[i] == 1u) {
            let x = logits[base + i];
            mx = max(mx, x);
            if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { bad = 1.0; }
        }
    }
    mx = reduce_max(mx, t);
    bad = reduce_max(bad, t);
    var s1 = 0.0;
    var st = 0.0;
    for (var i = t; i < p.v; i += WG) {
        if (allowed[i] == 1u) {
            let x = logits[base + i];
            s1 += exp(x - mx);
            st += exp((x - mx) * p.inv_t);
        }
    }
    let lse1 = mx + log(reduce_sum(s1, t));
    let lset = mx * p.inv_t + log(reduce_sum(st, t));
    var ent = 0.0;
    for (var i = t; i < p.v; i += WG) {
        if (allowed[i] == 1u) {
            let lp = logits[base + i] - lse1;
            ent += exp(lp) * lp;
        }
    }
    ent = reduce_sum(ent, t);
    if (t == 0u) {
        stats[r * 5u] = mx;
        stats[r * 5u + 1u] = lse1;
        stats[r * 5u + 2u] = lset;
        stats[r * 5u + 3u] = ent;
        stats[r * 5u + 4u] = bad;
    }

    // K rounds: each finds the best (value, id) strictly after the previous pick
    var last_v = 3.0e38;
    var last_i = 0u;
    for (var k = 0u; k < K; k++) {
        var bv = NONE;
        var bi = 0xffffffffu;
        for (var i = t; i < p.v; i += WG) {
            if (allowed[i] != 1u) { continue; }
            let x = logits[base + i];
            if (before(last_v, last_i, x, i) && before(x, i, bv, bi)) { bv = x; bi = i; }
        }
        wg_val[t] = bv;
        wg_id[t] = bi;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (t < s && before(wg_val[t + s], wg_id[t + s], wg_val[t], wg_id[t])) {
                wg_val[t] = wg_val[t + s];
                wg_id[t] = wg_id[t + s];
            }
            workgroupBarrier();
        }
        last_v = wg_val[0];
        last_i = wg_id[0];
        workgroupBarrier();
        if (t == 0u) {
            top_val[r * K + k] = last_v;
            top_ids[r * K + k] = last_i;
        }
    }

    // The tail draw: the allowed tokens after the K-th pick, weighted exp((x − max)/T), the CDF
    // inverted in id order at u = hash(seed, row). Each thread sums a contiguous chunk; thread 0
    // walks the chunk sums, then the chunk that holds u.
    let chunk = (p.v + WG - 1u) / WG;
    let lo = min(t * chunk, p.v);
    let hi = min(lo + chunk, p.v);
    var part = 0.0;
    for (var i = lo; i < hi; i++) {
        let x = logits[base + i];
        if (allowed[i] == 1u && before(last_v, last_i, x, i)) { part += exp((x - mx) * p.inv_t); }
    }
    wg_val[t] = part;
    workgroupBarrier();
    if (t == 0u) {
        var total = 0.0;
        for (var c = 0u; c < WG; c++) { total += wg_val[c]; }
        let goal = uniform01(ask[0], r) * total;
        var id = 0xffffffffu;
        var acc = 0.0;
        for (var c = 0u; c < WG && total > 0.0; c++) {
            if (acc + wg_val[c] <= goal && c + 1u < WG) { acc += wg_val[c]; continue; }
            let c_hi = min(c * chunk + chunk, p.v);
            for (var i = min(c * chunk, p.v); i < c_hi; i++) {
                let x = logits[base + i];
                if (allowed[i] == 1u && before(last_v, last_i, x, i)) {
                    id = i;
                    acc += exp((x - mx) * p.inv_t);
                    if (goal < acc) { break; }
                }
            }
            break;
        }
        extra[r * 2u] = id;
        extra[r * 2u + 1u] = select(0u, bitcast<u32>(logits[base + min(id, p.v - 1u)]), id < p.v);
    }
}

// PCG hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020)
fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

// A uniform in [0, 1) with 24 bits, from the step's seed and the row.
fn uniform01(seed: u32, r: u32) -> f32 {
    return f32(pcg(seed ^ pcg(r)) >> 8u) * (1.0 / 16777216.0);
}
