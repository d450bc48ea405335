//! How much host memory a checkpoint will take, from its safetensors headers alone, and
//! whether this machine can hold it: a model that cannot fit is refused before anything is
//! read, with the figures and the precision that would fit.

use safetensors::Dtype;

use super::matrix::{Matrix, Precision, Quant, Q4_BYTES, Q8_BLOCK};
use super::weights::Weights;
use crate::error::{Error, Result};

/// Canvas length the working-memory figure assumes: a long infill, far below most contexts.
pub const ESTIMATE_TOKENS: usize = 512;

#[derive(Clone, Debug)]
pub struct Estimate {
    /// Bytes the weights take as held (`precision`).
    pub weights: u64,
    /// Rough working memory of one forward pass at [`ESTIMATE_TOKENS`] tokens.
    pub activations: u64,
    pub precision: Precision,
    /// What the weights are stored as in the files (`bf16`, `f32`, `bf16+f32` …).
    pub stored: String,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.weights + self.activations
    }

    /// One line for the user: "16.1 GB of bf16 weights, used in place; about 17.0 GB in all".
    pub fn describe(&self) -> String {
        let held = match self.precision {
            // f16, bf16, q8_0 and q4_0 files are read where they lie; only f32 tensors are copied
            Precision::Stored if !self.stored.contains("f32") => {
                format!("{} weights, used in place", self.stored)
            }
            Precision::Stored => format!("{} weights", self.stored),
            Precision::F32 => format!("{} weights widened to f32", self.stored),
            Precision::Bf16 => format!("{} weights rounded to bf16", self.stored),
            Precision::Q8 => format!("{} weights quantised to q8_0", self.stored),
            Precision::Q4 => format!("{} weights quantised to q4_0", self.stored),
        };
        format!(
            "{} of {held}; about {} in all with the working memory of {ESTIMATE_TOKENS} tokens",
            human(self.weights),
            human(self.total())
        )
    }
}

/// Bytes a `[rows, cols]` matrix takes once converted to `precision` (`None`: kept as stored).
fn converted_bytes(rows: usize, cols: usize, precision: Precision) -> Option<u64> {
    let (rows, cols) = (rows as u64, cols as u64);
    let blocks = Matrix::q8_blocks(cols as usize) as u64;
    match (precision, precision.quant()) {
        (_, Some(q)) => Some(rows * blocks * q.block_bytes() as u64),
        (Precision::F32, _) => Some(rows * cols * 4),
        (Precision::Bf16, _) => Some(rows * cols * 2),
        _ => None,
    }
}

/// Whether `name` (of `dtype`) is the packed values of a quantised checkpoint's matrix, and in
/// which format.
fn quant_values(name: &str, dtype: Dtype) -> Option<Quant> {
    let q = match dtype {
        Dtype::I8 => Quant::Q8,
        Dtype::U8 => Quant::Q4,
        _ => return None,
    };
    name.strip_suffix(q.name())?.ends_with('.').then_some(q)
}

/// Whether `name` is the f16 scales of a quantised checkpoint's matrix, and in which format.
fn quant_scales(name: &str) -> Option<Quant> {
    [Quant::Q8, Quant::Q4].into_iter().find(|q| {
        name.strip_suffix("_scale")
            .and_then(|n| n.strip_suffix(q.name()))
            .is_some_and(|n| n.ends_with('.'))
    })
}

/// The estimate for the checkpoint behind `w` held in `precision`. Every 2-D float tensor
/// counts as a matrix (held as stored, widened or quantised), and so does a quantised
/// checkpoint's pair of values and scales; the rest is held as f32.
pub fn estimate(w: &Weights, precision: Precision) -> Estimate {
    let mut weights = 0u64;
    let mut stored: Vec<&'static str> = Vec::new();
    let mut dims: Vec<(usize, usize)> = Vec::new();
    for name in w.names() {
        let Some((dtype, shape)) = w.info(&name) else {
            continue;
        };
        let elems: u64 = shape.iter().map(|&d| d as u64).product();
        // a quantised pair is held as it is when asked for as stored or in its own format,
        // and converted from its values otherwise (the scales then take nothing of their own)
        let kept = |q: Quant| precision == Precision::Stored || precision.quant() == Some(q);
        if let (Some(q), [rows, width]) = (quant_values(&name, dtype), shape.as_slice()) {
            if !stored.contains(&q.name()) {
                stored.push(q.name());
            }
            let per_block = match q {
                Quant::Q8 => Q8_BLOCK,
                Quant::Q4 => Q4_BYTES,
            };
            let cols = width / per_block * Q8_BLOCK;
            weights += match converted_bytes(*rows, cols, precision) {
                Some(b) if !kept(q) => b,
                _ => elems,
            };
            dims.push((*rows, cols));
            continue;
        }
        if let (Some(q), Dtype::F16) = (quant_scales(&name), dtype) {
            weights += if kept(q) { elems * 2 } else { 0 };
            continue;
        }
        let (size, label) = match dtype {
            Dtype::F16 => (2, "f16"),
            Dtype::BF16 => (2, "bf16"),
            Dtype::F32 | Dtype::F64 => (4, "f32"),
            _ => continue,
        };
        if !stored.contains(&label) {
            stored.push(label);
        }
        weights += match (shape.as_slice(), precision) {
            ([rows, cols], p) => converted_bytes(*rows, *cols, p).unwrap_or(elems * size),
            // vectors (norms, biases)
            _ => elems * 4,
        };
        if let [rows, cols] = shape.as_slice() {
            dims.push((*rows, *cols));
        }
    }
    // the largest row count is the vocabulary (token table, head); its width the hidden size;
    // the widest other dimension the FFN's inner width
    let (vocab, widest) = dims.iter().copied().max().unwrap_or((0, 0));
    let inner = dims
        .iter()
        .flat_map(|&(r, c)| [r, c])
        .filter(|&d| d < vocab)
        .max()
        .unwrap_or(0);
    let hidden = widest as u64;
    let l = ESTIMATE_TOKENS as u64;
    // hidden states, q/k/v, the FFN's inner width, the head's logits, one L×L score block per
    // thread
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let activations = 4 * l * (8 * hidden + 3 * inner as u64 + vocab as u64) + 4 * l * l * threads;
    stored.sort();
    Estimate {
        weights,
        activations,
        precision,
        stored: stored.join("+"),
    }
}

/// The environment variable that caps the memory unmask assumes this machine has.
pub const MEMORY_VAR: &str = "UNMASK_MEMORY";

/// Total memory of this machine in bytes (`MemTotal`), or the [`MEMORY_VAR`] override that caps
/// what unmask will use (see [`parse_size`]). An override that does not parse is an error naming
/// the variable, never a check switched off.
pub fn memory_limit() -> Result<Option<u64>> {
    if let Some(v) = memory_override()? {
        return Ok(Some(v));
    }
    #[cfg(target_os = "linux")]
    {
        let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
            return Ok(None);
        };
        let kb = text
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok());
        Ok(kb.map(|kb| kb.saturating_mul(1024)))
    }
    #[cfg(not(target_os = "linux"))]
    Ok(None)
}

/// [`memory_limit`] without its error: a bad override reads as no override here, and
/// [`check`] (which every load runs) reports it.
pub fn machine_memory() -> Option<u64> {
    memory_limit().ok().flatten()
}

/// The [`MEMORY_VAR`] override: `None` when the variable is unset.
pub fn memory_override() -> Result<Option<u64>> {
    match std::env::var(MEMORY_VAR) {
        Ok(v) => parse_size(&v).map(Some).map_err(|why| {
            Error::input(format!(
                "{MEMORY_VAR}=`{v}`: {why}; give a size such as 512M, 1G, 1.5GB or 2GiB"
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::input(format!(
            "{MEMORY_VAR}: not UTF-8; give a size such as 512M, 1G, 1.5GB or 2GiB"
        ))),
    }
}

/// A size in bytes: a number (a fraction allowed, as `1.5`) with an optional unit, any case,
/// a space allowed before it: `B` bytes; `K`, `M`, `G`, `T` and `KiB` … `TiB` powers of 1024;
/// `KB` … `TB` powers of 1000. At least 1 byte and at most 2⁶⁴ − 1.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim_start());
    if num.is_empty() || num.matches('.').count() > 1 || num == "." {
        return Err("not a size".into());
    }
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => {
            return Err(format!(
                "`{unit}` is not a unit (B, K, M, G, T, KB … TB, KiB … TiB)"
            ))
        }
    };
    let value: f64 = num.parse().map_err(|_| "not a size".to_string())?;
    let bytes = value * mult;
    if bytes < 1.0 {
        return Err("less than 1 byte".into());
    }
    if bytes >= u64::MAX as f64 {
        return Err("more bytes than a 64-bit count holds".into());
    }
    Ok(bytes as u64)
}

/// Refuses a model whose estimate exceeds `memory` (the machine's total), naming `origin`, the
/// figures, and q8 (or else q4) when that would fit.
/// An [`MEMORY_VAR`] that does not parse is an error here, whatever `memory` says.
pub fn check(origin: &str, w: &Weights, est: &Estimate, memory: Option<u64>) -> Result<()> {
    memory_override()?;
    let Some(limit) = memory else {
        return Ok(());
    };
    if est.total() <= limit {
        return Ok(());
    }
    // the finer format first: q4 only when q8 would not fit (or is what was asked for)
    let smaller = match est.precision {
        Precision::Q4 => &[][..],
        Precision::Q8 => &[Precision::Q4][..],
        _ => &[Precision::Q8, Precision::Q4][..],
    };
    let hint = smaller
        .iter()
        .map(|&p| (p, estimate(w, p)))
        .find(|(_, e)| e.total() <= limit)
        .map(|(p, e)| {
            format!(
                "; with --weights {} it would take about {}",
                p.name(),
                human(e.total())
            )
        })
        .unwrap_or_default();
    Err(Error::TooLarge(format!(
        "{origin}: {}, more than this machine's {} of memory{hint}",
        est.describe(),
        human(limit)
    )))
}

pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint of an f32 matrix [40, 70] with its bias, and a q4_0 pair for a [40, 96]
    /// one, as `unmask quantize --format q4` writes it.
    fn mixed() -> Weights {
        use safetensors::tensor::TensorView;
        let f32s = vec![0u8; 4 * 40 * 70];
        let bias = vec![0u8; 4 * 70];
        let qs = vec![0x88u8; 40 * 3 * 16];
        let scales = vec![0u8; 2 * 40 * 3];
        let views = [
            ("a.weight", Dtype::F32, vec![40, 70], &f32s),
            ("a.bias", Dtype::F32, vec![70], &bias),
            ("b.weight.q4_0", Dtype::U8, vec![40, 48], &qs),
            ("b.weight.q4_0_scale", Dtype::F16, vec![40, 3], &scales),
        ]
        .map(|(n, d, s, b)| (n, TensorView::new(d, s, b).unwrap()));
        let bytes = safetensors::serialize(views, None).unwrap();
        Weights::from_bytes("mixed", bytes).unwrap()
    }

    #[test]
    fn q4_and_q8_are_counted_by_their_blocks() {
        let w = mixed();
        let bias = 4 * 70;
        // a: 40 rows of 3 blocks (70 columns padded to 96); b: 40 rows of 3 blocks
        let cases = [
            (Precision::Stored, 40 * 70 * 4 + 40 * 3 * 18),
            (Precision::Q4, 40 * 3 * 18 * 2),
            (Precision::Q8, 40 * 3 * 34 * 2),
            (Precision::F32, (40 * 70 + 40 * 96) * 4),
            (Precision::Bf16, (40 * 70 + 40 * 96) * 2),
        ];
        for (p, want) in cases {
            let est = estimate(&w, p);
            assert_eq!(est.weights, want + bias, "{p:?}");
            assert_eq!(est.stored, "f32+q4_0");
        }
        assert!(estimate(&w, Precision::Q4)
            .describe()
            .contains("of f32+q4_0 weights quantised to q4_0"));
    }

    #[test]
    fn a_refusal_names_the_block_format_that_would_fit() {
        let w = mixed();
        let [f32s, q8, q4] =
            [Precision::F32, Precision::Q8, Precision::Q4].map(|p| estimate(&w, p));
        assert!(q4.total() < q8.total() && q8.total() < f32s.total());
        let refused =
            |est: &Estimate, limit: u64| check("m", &w, est, Some(limit)).unwrap_err().to_string();
        let e = refused(&f32s, q8.total());
        assert!(e.contains("with --weights q8 it would take"), "{e}");
        let e = refused(&f32s, q4.total());
        assert!(e.contains("with --weights q4 it would take"), "{e}");
        let e = refused(&q8, q4.total());
        assert!(e.contains("with --weights q4 it would take"), "{e}");
        let e = refused(&q4, q4.total() - 1);
        assert!(!e.contains("with --weights"), "{e}");
        assert!(check("m", &w, &q4, Some(q4.total())).is_ok());
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        let ok = |s: &str| parse_size(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("1024"), 1024);
        assert_eq!(ok("3M"), 3 << 20);
        assert_eq!(ok(" 2g "), 2 << 30);
        assert_eq!(ok("1G"), 1 << 30);
        assert_eq!(ok("1GB"), 1_000_000_000);
        assert_eq!(ok("1.5G"), 3 << 29);
        assert_eq!(ok("2GiB"), 2 << 30);
        assert_eq!(ok("512 MiB"), 512 << 20);
        assert_eq!(ok("100b"), 100);
        assert_eq!(ok("1.5tb"), 1_500_000_000_000);
        for bad in [
            "lots",
            "",
            "G",
            "-1G",
            "1e9",
            "1..5G",
            ".",
            "0",
            "0.1",
            "1 G B",
            "1Gx",
            "NaN",
            "inf",
            "99999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }
}
