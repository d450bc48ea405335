// The continuous families' clean estimate x̂0 and readout from the head's output, one workgroup
// of WG threads per row, so a step reads back x̂0, a token and its probability per position
// instead of the logits. The reference is backend/cpu/continuous.rs `estimate`: the same terms,
// here summed by per-thread partial sums and the fixed 64-wide tree.
//
// Softmax (Plaid, MODE 0): x̂0 = Σ_v softmax(ℓ)_v·table[v] over every column; the token is the
//   argmax over allowed ids (ties to the lower id, as the CPU's strict `>` scan in id order);
//   p = exp(ℓ_token − max) / Σ_v exp(ℓ_v − max).
// Bits (Analog Bits, MODE 1): x̂0_b = tanh(ℓ_b/2)·scale; the token is the bits above 0, MSB
//   first, or, when that id is not allowed, the allowed id of highest Σ_b log σ(±ℓ_b) (ties to
//   the lower id); p = exp of that sum.
// rounded = 1: x̂0 = table[token] (Diffusion-LM's clamp).
// A row with no allowed id reads token 0 with p = 0 (Softmax), as the CPU.
//
// logits:  [rows, cols] f32 (cols = V for Softmax, w for Bits)
// table:   [V, w] f32, each id's clean vector (w <= MAX_W)
// allowed: [V] u32 (1 = a readout may name it)
// x0:      [rows, w] f32
// tokens:  [rows] u32
// prob:    [rows] f32
//
// Composed after shared/workgroup_reduce.wgsl (WG, wg_val, reduce_sum, reduce_max).

struct Params { rows: u32, cols: u32, v: u32, w: u32, mode: u32, rounded: u32, scale: f32, _p0: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> allowed: array<u32>;
@group(0) @binding(3) var<storage, read_write> x0: array<f32>;
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(5) var<storage, read_write> prob: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

const MAX_W: u32 = 32u;
// below every logit and log-probability the kernel compares (no inf constants: Tint refuses
// them, and WGSL lets a compiler assume none at run time)
const NONE: f32 = -3.0e38;
const NO_ID: u32 = 0xffffffffu;

// the ids beside wg_val in the (value, id) tree
var<workgroup> wg_id: array<u32, WG>;

struct Best { v: f32, i: u32 }

// (value, id) ordering: a found id first, then the larger value, then the smaller id
fn better(v: f32, i: u32, w: f32, j: u32) -> bool {
    if (i == NO_ID) { return false; }
    if (j == NO_ID) { return true; }
    return v > w || (v == w && i < j);
}

fn reduce_best(b: Best, t: u32) -> Best {
    wg_val[t] = b.v;
    wg_id[t] = b.i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (t < s && better(wg_val[t + s], wg_id[t + s], wg_val[t], wg_id[t])) {
            wg_val[t] = wg_val[t + s];
            wg_id[t] = wg_id[t + s];
        }
        workgroupBarrier();
    }
    let r = Best(wg_val[0], wg_id[0]);
    workgroupBarrier();
    return r;
}

fn ok(id: u32) -> bool {
    return id < p.v && allowed[id] == 1u;
}

// log(1 + x) for x in [0, 1], accurate where 1 + x rounds away x's digits
fn log1p(x: f32) -> f32 {
    if (x < 1e-3) { return x * (1.0 - x * (0.5 - x / 3.0)); }
    return log(1.0 + x);
}

// log σ(s) = −softplus(−s), without overflow
fn log_sigmoid(s: f32) -> f32 {
    return -(max(-s, 0.0) + log1p(exp(-abs(s))));
}

// Σ_b log σ(±ℓ_b): the log-probability of `id` under independent bits, MSB first
fn bits_logp(base: u32, id: u32) -> f32 {
    var s = 0.0;
    for (var b = 0u; b < p.cols; b++) {
        let a = logits[base + b];
        let on = ((id >> (p.cols - 1u - b)) & 1u) == 1u;
        s += log_sigmoid(select(-a, a, on));
    }
    return s;
}

fn softmax_row(r: u32, t: u32) {
    let base = r * p.cols;
    var mx = logits[base];
    var best = Best(NONE, NO_ID);
    for (var i = t; i < p.cols; i += WG) {
        let a = logits[base + i];
        mx = max(mx, a);
        // ids rise along a thread's columns, so a strict `>` keeps the lowest of equal ones
        if (ok(i) && a > NONE && (best.i == NO_ID || a > best.v)) { best = Best(a, i); }
    }
    mx = reduce_max(mx, t);
    best = reduce_best(best, t);
    var acc: array<f32, MAX_W>;
    var sum = 0.0;
    for (var i = t; i < p.cols; i += WG) {
        let e = exp(logits[base + i] - mx);
        sum += e;
        for (var k = 0u; k < p.w; k++) { acc[k] += e * table[i * p.w + k]; }
    }
    sum = reduce_sum(sum, t);
    let found = best.i != NO_ID;
    let tok = select(0u, best.i, found);
    for (var k = 0u; k < p.w; k++) {
        let s = reduce_sum(acc[k], t);
        if (t == 0u) {
            x0[r * p.w + k] = select(s / sum, table[tok * p.w + k], p.rounded == 1u);
        }
    }
    if (t == 0u) {
        tokens[r] = tok;
        prob[r] = select(0.0, exp(best.v - mx) / sum, found);
    }
}

fn bits_row(r: u32, t: u32) {
    let base = r * p.cols;
    // every thread spells the same id
    var id = 0u;
    for (var b = 0u; b < p.cols; b++) {
        id = (id << 1u) | select(0u, 1u, logits[base + b] > 0.0);
    }
    // the maximum-likelihood allowed id, used when the spelt one is not allowed
    var best = Best(NONE, NO_ID);
    if (!ok(id)) {
        for (var v = t; v < p.v; v += WG) {
            if (!ok(v)) { continue; }
            let lp = bits_logp(base, v);
            if (lp > NONE && (best.i == NO_ID || lp > best.v)) { best = Best(lp, v); }
        }
    }
    best = reduce_best(best, t);
    if (!ok(id)) { id = select(0u, best.i, best.i != NO_ID); }
    for (var b = t; b < p.w; b += WG) {
        // tanh saturates to ±1 in f32 well before ±20; clamped so no driver's exp overflows
        let e = tanh(clamp(0.5 * logits[base + b], -20.0, 20.0)) * p.scale;
        x0[r * p.w + b] = select(e, table[id * p.w + b], p.rounded == 1u);
    }
    if (t == 0u) {
        tokens[r] = id;
        prob[r] = exp(bits_logp(base, id));
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x;
    if (r >= p.rows) { return; }
    if (p.mode == 0u) {
        softmax_row(r, lid.x);
    } else {
        bits_row(r, lid.x);
    }
}
