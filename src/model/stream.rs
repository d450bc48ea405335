//! A safetensors file read as a stream of chunks (a download, a cached response body, a file
//! read piece by piece). The header is parsed as soon as it has arrived, so a caller can check
//! that the model fits before any tensor comes; each float tensor is widened to f32 as its
//! bytes pass, so memory holds the converted tensors plus a few leftover bytes of one element,
//! never the file itself. This is how the browser loads a checkpoint: the bytes live in the
//! JS heap or the network stream, and wasm memory only ever sees the f32 model.

use std::collections::HashMap;

use safetensors::Dtype;

use super::matrix::{Bytes, Half, Matrix};
use super::weights::{float_size, widen, Weights};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How a device uses a matrix sent to it as it streams in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceUse {
    /// A product's weights: any format the matrix kernel reads (f16 pairs, q8_0, q4_0).
    Product,
    /// The token embedding table: the lookup reads f16 or f32 only.
    Table,
}

/// Where a stream sends the matrices a device should hold instead of this process (a GPU:
/// `backend::gpu::DeviceSink`). `put` gets each one whole, in its stored precision, and
/// returns the matrix the model keeps: [`super::matrix::Storage::Device`] rows.
pub trait MatrixSink {
    fn put(&mut self, name: &str, m: Matrix, used: DeviceUse) -> Result<Matrix>;
}

/// Which of a checkpoint's tensors go to the device, by name and shape (the architecture's
/// rule, `model::arch::device_rule`).
pub type DeviceRule = fn(&str, &[usize]) -> Option<DeviceUse>;

/// The safetensors crate's own bound on a header (100 MB): anything larger is not a real one.
const MAX_HEADER: u64 = 100_000_000;

/// One tensor of the header, in file order.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range in the data section (u64: a header may describe more than a wasm32 usize).
    pub start: u64,
    pub end: u64,
}

impl Entry {
    pub fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }

    fn float_size(&self) -> Option<usize> {
        float_size(self.dtype)
    }

    /// Whether the tensor holds floats (the weights; not integer buffers).
    pub fn is_float(&self) -> bool {
        self.float_size().is_some()
    }
}

/// What the header says, known before any tensor data has been read.
#[derive(Clone, Debug)]
pub struct Header {
    /// 8-byte length + JSON header: where the data section starts.
    pub data_start: u64,
    /// Length of the data section.
    pub data_len: u64,
    /// Tensors by increasing offset.
    pub entries: Vec<Entry>,
}

impl Header {
    /// Parses a header from `bytes`, which hold at least its first `8 + n` bytes. `Ok(None)`:
    /// not enough bytes yet.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Option<Header>> {
        let Some(len) = bytes.get(..8) else {
            return Ok(None);
        };
        let n = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        if n > MAX_HEADER {
            return Err(Error::file(
                path,
                "not a safetensors file: the header length it claims is absurdly large (over 100 MB)",
            ));
        }
        let Some(json) = bytes.get(8..8 + n as usize) else {
            return Ok(None);
        };
        let bad = |msg: String| Error::file(path, format!("corrupt safetensors header: {msg}"));
        let text = std::str::from_utf8(json).map_err(|e| bad(e.to_string()))?;
        // Read with u64 sizes and checked here rather than through the safetensors crate's
        // `Metadata`, whose usize offsets cannot even describe a file over 4 GiB on wasm32:
        // such a file must be refused as too large, not as corrupt.
        let raw: HashMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut entries = Vec::with_capacity(raw.len());
        for (name, v) in raw {
            if name == "__metadata__" {
                continue;
            }
            let info: RawInfo =
                serde_json::from_value(v).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            let shape = info
                .shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<usize>>>();
            let elements = info.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            let (Some(shape), Some(elements)) = (shape, elements) else {
                return Err(bad(format!("tensor `{name}`: its shape is absurdly large")));
            };
            let bytes = elements
                .checked_mul(info.dtype.bitsize() as u64)
                .map(|b| b / 8);
            let (start, end) = info.data_offsets;
            if bytes != end.checked_sub(start) {
                return Err(bad(format!(
                    "tensor `{name}`: {:?} {:?} does not match its byte range {start}..{end}",
                    info.dtype, info.shape
                )));
            }
            entries.push(Entry {
                name,
                dtype: info.dtype,
                shape,
                start,
                end,
            });
        }
        entries.sort_by_key(|e| (e.start, e.end));
        let mut at = 0;
        for e in &entries {
            if e.start != at {
                return Err(bad(format!(
                    "tensor `{}` starts at byte {} of the data, expected {at} (overlap or gap)",
                    e.name, e.start
                )));
            }
            at = e.end;
        }
        Ok(Some(Header {
            data_start: 8 + n,
            data_len: at,
            entries,
        }))
    }

    /// The whole file's length as the header implies it.
    pub fn file_len(&self) -> u64 {
        self.data_start + self.data_len
    }

    /// Bytes the float tensors take once widened to f32, as the model holds them.
    pub fn f32_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.float_size().is_some())
            .map(|e| e.elements().saturating_mul(4))
            .fold(0, u64::saturating_add)
    }
}

/// A tensor as the header describes it.
#[derive(serde::Deserialize)]
struct RawInfo {
    dtype: Dtype,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// Reads a safetensors file chunk by chunk into f32 tensors.
pub struct WeightStream {
    path: String,
    /// Bytes received before the header could be parsed; then those that came after it, until
    /// the data is started on.
    head: Vec<u8>,
    header: Option<Header>,
    /// Whether the data section is being read (the header has been looked at).
    started: bool,
    /// Bytes of the data section consumed.
    at: u64,
    /// Index into `header.entries` of the tensor being read.
    current: usize,
    /// Its values so far.
    filling: Vec<f32>,
    /// The bytes of a partial element split between two chunks.
    carry: Vec<u8>,
    tensors: HashMap<String, Tensor>,
    /// Tensors present in the file that are not floats, kept by name so that a builder asking
    /// for one is told its dtype.
    others: HashMap<String, (Dtype, Vec<usize>)>,
    /// The device the rule's matrices go to, and the rule.
    sink: Option<(Box<dyn MatrixSink>, DeviceRule)>,
    /// How the tensor being read is used there, when it goes.
    sending: Option<DeviceUse>,
    /// Its stored bytes so far (a device's tensor is not widened: it goes up as stored).
    raw: Vec<u8>,
    /// The matrices sent, as the model keeps them.
    sent: HashMap<String, Matrix>,
    /// Bytes of the largest tensor held whole on the way to the device.
    largest_sent: u64,
}

impl WeightStream {
    /// A stream for the file called `path` in messages.
    pub fn new(path: impl Into<String>) -> WeightStream {
        WeightStream {
            path: path.into(),
            head: Vec::new(),
            header: None,
            started: false,
            at: 0,
            current: 0,
            filling: Vec::new(),
            carry: Vec::new(),
            tensors: HashMap::new(),
            others: HashMap::new(),
            sink: None,
            sending: None,
            raw: Vec::new(),
            sent: HashMap::new(),
            largest_sent: 0,
        }
    }

    /// Sends the 2-D float tensors `rule` picks to `sink` as each one completes, instead of
    /// keeping them widened: this process then holds at most one of them at a time.
    pub fn send_to(&mut self, sink: Box<dyn MatrixSink>, rule: DeviceRule) {
        self.sink = Some((sink, rule));
    }

    /// Bytes of the largest tensor held whole so far on its way to the device.
    pub fn largest_sent(&self) -> u64 {
        self.largest_sent
    }

    /// The header, once its bytes have arrived.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Bytes of the file consumed so far.
    pub fn position(&self) -> u64 {
        match &self.header {
            None => self.head.len() as u64,
            Some(h) => h.data_start + self.at + self.head.len() as u64,
        }
    }

    /// Takes the next bytes of the file. The push that completes the header only parses it:
    /// nothing is allocated for the tensors until the next push (or `finish`), so a caller can
    /// look at [`WeightStream::header`] and refuse a model too large before it costs memory.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if self.header.is_none() {
            self.head.extend_from_slice(chunk);
            if let Some(header) = Header::parse(&self.path, &self.head)? {
                self.head.drain(..header.data_start as usize);
                self.header = Some(header);
            }
            return Ok(());
        }
        self.begin()?;
        self.consume(chunk)
    }

    /// Starts on the data once the header has been seen: the first tensor, and the bytes that
    /// came with the header.
    fn begin(&mut self) -> Result<()> {
        if self.started || self.header.is_none() {
            return Ok(());
        }
        self.started = true;
        self.start_tensor()?;
        let rest = std::mem::take(&mut self.head);
        self.consume(&rest)
    }

    /// Allocates the tensor at `current` and finishes any empty ones at this offset. A tensor
    /// this process cannot address is an error, not an allocation failure.
    fn start_tensor(&mut self) -> Result<()> {
        let h = self.header.as_ref().expect("header parsed");
        while let Some(e) = h.entries.get(self.current) {
            if e.end > e.start {
                self.sending = match (&self.sink, e.float_size(), e.shape.len()) {
                    (Some((_, rule)), Some(_), 2) => rule(&e.name, &e.shape),
                    _ => None,
                };
                if self.sending.is_some() {
                    let n = usize::try_from(e.end - e.start).map_err(|_| {
                        Error::TooLarge(format!(
                            "{}: tensor `{}` is larger than this process can address",
                            self.path, e.name
                        ))
                    })?;
                    self.raw = Vec::new();
                    self.raw.try_reserve_exact(n).map_err(|_| {
                        Error::TooLarge(format!(
                            "{}: no memory for tensor `{}` ({n} bytes) on its way to the device",
                            self.path, e.name
                        ))
                    })?;
                    return Ok(());
                }
                let n = if e.float_size().is_some() {
                    e.elements()
                } else {
                    0
                };
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| n.checked_mul(4).is_some_and(|b| b <= isize::MAX as usize))
                    .ok_or_else(|| {
                        Error::TooLarge(format!(
                            "{}: tensor `{}` has {n} elements, more than this process can address",
                            self.path, e.name
                        ))
                    })?;
                self.filling = Vec::new();
                self.filling.try_reserve_exact(n).map_err(|_| {
                    Error::TooLarge(format!(
                        "{}: no memory for tensor `{}` ({n} values)",
                        self.path, e.name
                    ))
                })?;
                return Ok(());
            }
            if e.float_size().is_some() {
                self.tensors
                    .insert(e.name.clone(), Tensor::new(e.shape.clone(), Vec::new()));
            } else {
                self.others
                    .insert(e.name.clone(), (e.dtype, e.shape.clone()));
            }
            self.current += 1;
        }
        Ok(())
    }

    fn consume(&mut self, mut chunk: &[u8]) -> Result<()> {
        while !chunk.is_empty() {
            let h = self.header.as_ref().expect("header parsed");
            let Some(e) = h.entries.get(self.current) else {
                return Err(Error::file(
                    &self.path,
                    format!(
                        "longer than its header says ({} bytes): not a safetensors file, or a corrupt one",
                        h.file_len()
                    ),
                ));
            };
            let take = (e.end - self.at).min(chunk.len() as u64) as usize;
            let (bytes, rest) = chunk.split_at(take);
            chunk = rest;
            self.at += take as u64;
            if self.sending.is_some() {
                self.raw.extend_from_slice(bytes);
            } else if let Some(size) = e.float_size() {
                let dtype = e.dtype;
                let mut bytes = bytes;
                if !self.carry.is_empty() {
                    let need = (size - self.carry.len()).min(bytes.len());
                    self.carry.extend_from_slice(&bytes[..need]);
                    bytes = &bytes[need..];
                    if self.carry.len() == size {
                        widen(dtype, &self.carry, &mut self.filling);
                        self.carry.clear();
                    }
                }
                let whole = bytes.len() / size * size;
                widen(dtype, &bytes[..whole], &mut self.filling);
                self.carry.extend_from_slice(&bytes[whole..]);
            }
            if self.at == e.end {
                let e = &h.entries[self.current];
                if let Some(used) = self.sending.take() {
                    let (name, shape, dtype) = (e.name.clone(), e.shape.clone(), e.dtype);
                    self.largest_sent = self.largest_sent.max(self.raw.len() as u64);
                    let m = stored_matrix(dtype, &shape, std::mem::take(&mut self.raw));
                    let (sink, _) = self.sink.as_mut().expect("sending has a sink");
                    let m = sink.put(&name, m, used)?;
                    self.sent.insert(name, m);
                } else if e.float_size().is_some() {
                    let data = std::mem::take(&mut self.filling);
                    self.tensors
                        .insert(e.name.clone(), Tensor::new(e.shape.clone(), data));
                } else {
                    self.others
                        .insert(e.name.clone(), (e.dtype, e.shape.clone()));
                }
                self.current += 1;
                self.start_tensor()?;
            }
        }
        Ok(())
    }

    /// The weights, once the whole file has been pushed; an error naming the file (and the
    /// tensor it stopped in) when it was cut short.
    pub fn finish(mut self) -> Result<Weights> {
        self.begin()?;
        let Some(h) = &self.header else {
            return Err(Error::file(
                &self.path,
                format!(
                    "truncated: {} bytes, too short for the safetensors header it announces",
                    self.head.len()
                ),
            ));
        };
        if let Some(e) = h.entries.get(self.current) {
            return Err(Error::file(
                &self.path,
                format!(
                    "truncated: the file ends {} bytes into tensor `{}` of {} bytes ({} of {} bytes in all)",
                    self.at - e.start,
                    e.name,
                    e.end - e.start,
                    h.data_start + self.at,
                    h.file_len()
                ),
            ));
        }
        Ok(Weights::from_streamed(
            self.path,
            self.tensors,
            self.others,
            self.sent,
        ))
    }
}

/// A 2-D float tensor's stored bytes as a matrix: f16 and bf16 kept as they are, others
/// widened to f32.
fn stored_matrix(dtype: Dtype, shape: &[usize], raw: Vec<u8>) -> Matrix {
    let (rows, cols) = (shape[0], shape[1]);
    match dtype {
        Dtype::F16 => Matrix::half(rows, cols, Half::F16, Bytes::owned(raw)),
        Dtype::BF16 => Matrix::half(rows, cols, Half::Bf16, Bytes::owned(raw)),
        _ => {
            let mut v = Vec::with_capacity(rows * cols);
            widen(dtype, &raw, &mut v);
            Matrix::f32(rows, cols, v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use safetensors::tensor::TensorView;

    fn file() -> Vec<u8> {
        let a: Vec<u8> = [1.5f32, -2.0, 3.25, 7.0, 0.5, -0.125]
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        let b: Vec<u8> = [0.1f64, -7.5, 1e3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let ids: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let c: Vec<u8> = [4.0f32, 5.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let views = [
            ("a", TensorView::new(Dtype::F16, vec![2, 3], &a).unwrap()),
            ("b", TensorView::new(Dtype::F64, vec![3], &b).unwrap()),
            ("ids", TensorView::new(Dtype::I64, vec![3], &ids).unwrap()),
            ("c", TensorView::new(Dtype::BF16, vec![0], &[]).unwrap()),
            ("d", TensorView::new(Dtype::F32, vec![1, 2], &c).unwrap()),
        ];
        safetensors::serialize(views, None).unwrap()
    }

    fn streamed(bytes: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> Result<Weights> {
        let mut s = WeightStream::new("m.safetensors");
        let mut at = 0;
        while at < bytes.len() {
            let n = sizes.next().unwrap().clamp(1, bytes.len() - at);
            s.push(&bytes[at..at + n])?;
            at += n;
        }
        s.finish()
    }

    #[test]
    fn any_chunking_gives_the_tensors_of_the_whole_file() {
        let bytes = file();
        let whole = Weights::from_bytes("m.safetensors", bytes.clone()).unwrap();
        // one byte at a time, a prime stride that splits elements, and all at once
        for sizes in [vec![1], vec![7, 3, 5], vec![bytes.len()]] {
            let w = streamed(&bytes, &mut sizes.iter().copied().cycle()).unwrap();
            for (name, shape) in [
                ("a", vec![2, 3]),
                ("b", vec![3]),
                ("c", vec![0]),
                ("d", vec![1, 2]),
            ] {
                assert_eq!(
                    w.get(name, &shape).unwrap(),
                    whole.get(name, &shape).unwrap(),
                    "{name} with chunks {sizes:?}"
                );
            }
            let e = w.get("ids", &[3]).unwrap_err().to_string();
            assert!(e.contains("`ids`") && e.contains("I64"), "{e}");
        }
    }

    type Sent = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<f32>, DeviceUse)>>>;

    /// Records what it was sent and hands back device rows keyed by arrival.
    struct Recorder(Sent);

    impl MatrixSink for Recorder {
        fn put(&mut self, name: &str, m: Matrix, used: DeviceUse) -> Result<Matrix> {
            let mut got = self.0.lock().unwrap();
            got.push((name.to_string(), m.to_f32(), used));
            Ok(Matrix {
                rows: m.rows,
                cols: m.cols,
                storage: crate::model::matrix::Storage::Device(crate::model::matrix::DeviceRows {
                    parts: vec![crate::model::matrix::DevicePart {
                        key: got.len() as u64,
                        rows: m.rows,
                    }],
                    dtype: m.dtype(),
                    bytes: m.bytes() as u64,
                }),
            })
        }
    }

    #[test]
    fn a_sink_gets_the_rules_matrices_whole_and_the_host_keeps_the_rest() {
        fn rule(name: &str, _: &[usize]) -> Option<DeviceUse> {
            match name {
                "a" => Some(DeviceUse::Table),
                "d" => Some(DeviceUse::Product),
                _ => None,
            }
        }
        let bytes = file();
        let whole = Weights::from_bytes("m.safetensors", bytes.clone()).unwrap();
        for size in [1, 7, bytes.len()] {
            let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut s = WeightStream::new("m.safetensors");
            s.send_to(Box::new(Recorder(got.clone())), rule);
            for c in bytes.chunks(size) {
                s.push(c).unwrap();
            }
            // the 2x3 f16 `a` is the largest sent: 12 bytes (a file pushed whole is read by
            // `finish`: its first push only parses the header)
            if size < bytes.len() {
                assert_eq!(s.largest_sent(), 12, "chunks of {size}");
            }
            let w = s.finish().unwrap();
            let mut got = got.lock().unwrap().clone();
            got.sort_by(|x, y| x.0.cmp(&y.0));
            let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(names, ["a", "d"], "chunks of {size}");
            // sent in their stored precision, with the same values
            assert_eq!(got[0].1, whole.get("a", &[2, 3]).unwrap().data);
            assert_eq!(got[0].2, DeviceUse::Table);
            assert_eq!(got[1].1, whole.get("d", &[1, 2]).unwrap().data);
            let a = w.matrix("a", 2, 3).unwrap();
            assert!(a.on_device() && a.dtype() == "f16" && a.bytes() == 0);
            // a sent tensor cannot be read back as a host tensor; the others stay
            let e = w.get("a", &[2, 3]).unwrap_err().to_string();
            assert!(e.contains("GPU"), "{e}");
            assert_eq!(w.get("b", &[3]).unwrap(), whole.get("b", &[3]).unwrap());
        }
    }

    #[test]
    fn the_header_is_known_before_the_data() {
        let bytes = file();
        let mut s = WeightStream::new("m.safetensors");
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        s.push(&bytes[..8 + n - 1]).unwrap();
        assert!(s.header().is_none());
        s.push(&bytes[8 + n - 1..8 + n]).unwrap();
        let h = s.header().unwrap();
        assert_eq!(h.file_len(), bytes.len() as u64);
        // a 2x3 f16, a 3-long f64, an empty bf16 and a 1x2 f32, all as f32
        assert_eq!(h.f32_bytes(), (6 + 3 + 2) * 4);
        assert_eq!(s.position(), 8 + n as u64);
    }

    fn header_bytes(json: &str) -> Vec<u8> {
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out
    }

    #[test]
    fn headers_beyond_4_gib_parse_and_bad_offsets_are_named() {
        let big = r#"{"x":{"dtype":"F32","shape":[50000,30000],"data_offsets":[0,6000000000]}}"#;
        let h = Header::parse("m", &header_bytes(big)).unwrap().unwrap();
        assert_eq!(h.f32_bytes(), 6_000_000_000);
        assert_eq!(h.file_len(), 6_000_000_000 + h.data_start);
        let gap = r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}"#;
        let e = Header::parse("m", &header_bytes(gap))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`b`") && e.contains("gap"), "{e}");
        let size = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}"#;
        let e = Header::parse("m", &header_bytes(size))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`a`") && e.contains("byte range"), "{e}");
    }

    #[test]
    fn truncated_and_overlong_files_name_the_file_and_tensor() {
        let bytes = file();
        let cut = bytes.len() - 3;
        let e = streamed(&bytes[..cut], &mut std::iter::repeat(5))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("m.safetensors") && e.contains("truncated") && e.contains("into tensor `a`"),
            "{e}"
        );
        let e = streamed(&bytes[..5], &mut std::iter::repeat(5))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        let mut long = bytes.clone();
        long.push(0);
        let e = streamed(&long, &mut std::iter::repeat(64))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("longer than its header"), "{e}");
        let mut huge = bytes;
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = streamed(&huge, &mut std::iter::repeat(64))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("absurdly large"), "{e}");
    }
}
