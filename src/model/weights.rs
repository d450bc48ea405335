//! Weight storage: safetensors files (single or sharded, memory-mapped natively) or tensors
//! built in memory. Every tensor is checked against the shape the architecture expects
//! before it is read; a weight matrix stays in its stored precision (see [`Weights::matrix`]).

use std::collections::HashMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::sync::Arc;

use half::{bf16, f16};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;

use super::matrix::{self, Half, Matrix, Quant};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The bytes of one safetensors file, shared with the matrices that borrow ranges of it.
enum Source {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
    Static(&'static [u8]),
}

impl matrix::Source for Source {
    fn drop_pages(&self, start: usize, len: usize) {
        #[cfg(all(unix, not(target_arch = "wasm32")))]
        if let Source::Mapped(m) = self {
            // whole pages inside the range only: a neighbour's partial page stays
            let page = 4096;
            let (a, b) = (start.next_multiple_of(page), (start + len) / page * page);
            if a < b {
                // SAFETY: the map is read-only and private to a file nobody writes while the
                // model loads; dropped pages are read again from the file if touched
                let _ = unsafe {
                    m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a)
                };
            }
        }
        let _ = (start, len);
    }
}

impl AsRef<[u8]> for Source {
    fn as_ref(&self) -> &[u8] {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Mapped(m) => m,
            Source::Owned(v) => v,
            Source::Static(s) => s,
        }
    }
}

struct File {
    path: String,
    bytes: Arc<Source>,
    /// Start of the data section (8-byte length + JSON header).
    data_start: usize,
    meta: Metadata,
}

impl File {
    fn parse(path: String, bytes: Source) -> Result<File> {
        let (header_len, meta) = safetensors::SafeTensors::read_metadata(bytes.as_ref())
            .map_err(|e| Error::file(&path, describe_safetensors_error(&e)))?;
        Ok(File {
            path,
            bytes: Arc::new(bytes),
            data_start: 8 + header_len,
            meta,
        })
    }

    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.meta.info(name)
    }

    fn data(&self, info: &TensorInfo) -> &[u8] {
        let (a, b) = info.data_offsets;
        &(*self.bytes).as_ref()[self.data_start + a..self.data_start + b]
    }

    /// The tensor's bytes as a range of the file, not copied.
    fn view(&self, info: &TensorInfo) -> matrix::Bytes {
        let (a, b) = info.data_offsets;
        matrix::Bytes::view(self.bytes.clone(), self.data_start + a, b - a)
    }
}

/// Turns the safetensors crate's terse errors into a sentence a user can act on.
fn describe_safetensors_error(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => "not a safetensors file: shorter than its 8-byte header length".into(),
        E::HeaderTooLarge => {
            "not a safetensors file: the header length it claims is absurdly large (over 100 MB)"
                .into()
        }
        E::InvalidHeaderLength => {
            "truncated or corrupt safetensors file: the header length it claims runs past the end of the file"
                .into()
        }
        E::MetadataIncompleteBuffer => {
            "truncated or corrupt safetensors file: the tensor data does not match the file size the header implies"
                .into()
        }
        E::InvalidHeader(_) | E::InvalidHeaderStart | E::InvalidHeaderDeserialization(_) => {
            format!("corrupt safetensors header: {e}")
        }
        E::ValidationOverflow => {
            "corrupt safetensors header: a tensor's shape is absurdly large (its size overflows)"
                .into()
        }
        other => format!("invalid safetensors file: {other}"),
    }
}

/// All weight tensors of one model, by name.
pub struct Weights {
    /// What to call the source in messages (a folder, a file, "memory").
    origin: String,
    files: Vec<File>,
    /// tensor name -> index into `files`
    index: HashMap<String, usize>,
    memory: HashMap<String, Tensor>,
    /// Tensors read from a stream ([`super::stream::WeightStream`]): each is moved into the
    /// model when the builder asks for it, not copied, so the model never exists twice.
    streamed: std::sync::Mutex<HashMap<String, Tensor>>,
    /// The shape of every streamed tensor, taken or not, and of the non-float ones.
    streamed_shapes: HashMap<String, Vec<usize>>,
    /// Streamed tensors that are not floats (integer buffers), with their dtype.
    streamed_others: HashMap<String, Dtype>,
    /// Streamed matrices sent to a device as they arrived ([`super::stream::MatrixSink`]).
    on_device: HashMap<String, Matrix>,
    /// The names a builder has read, to find the tensors it left unused.
    read: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The names read as weight matrices ([`Weights::matrix`]): what `unmask quantize` quantises.
    matrices: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Weights {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_dir(dir: &Path) -> Result<Weights> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        // anything by these names (a folder, a pipe) is meant as the weights: refused below by
        // name rather than passed over for the other layout
        let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if present(&single) {
            let file = open_mapped(&single)?;
            return Weights::from_files(single.display().to_string(), vec![file]);
        }
        if present(&index_path) {
            regular_file(&index_path)?;
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| Error::io(index_path.display(), e))?;
            let index_name = index_path.display().to_string();
            let map = shard_map(&index_name, &text)?;
            let shards = distinct_shards(&map);
            let mut files = Vec::with_capacity(shards.len());
            for shard in &shards {
                files.push(open_mapped(&dir.join(shard))?);
            }
            let w = Weights::from_files(dir.display().to_string(), files)?;
            // the index is the authority on where each tensor is: a tensor it places in a
            // shard that does not hold it is an error, never read from wherever it turns up
            for (tensor, shard) in &map {
                let at = shards.iter().position(|s| s == shard).expect("listed");
                if w.index.get(tensor) != Some(&at) {
                    let found = match w.index.get(tensor) {
                        Some(&i) => format!(", but it is in `{}`", shards[i]),
                        None => ", but no shard holds it".into(),
                    };
                    return Err(Error::config(
                        &index_name,
                        format!("weight_map.{tensor}"),
                        format!("places the tensor in `{shard}`{found}"),
                    ));
                }
            }
            return Ok(w);
        }
        Err(Error::file(
            dir.display(),
            "no model.safetensors or model.safetensors.index.json in this folder",
        ))
    }

    /// One safetensors file already in memory (the browser, embedded models).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Weights> {
        let file = File::parse(name.to_string(), Source::Owned(bytes))?;
        Weights::from_files(name.to_string(), vec![file])
    }

    /// A safetensors file compiled into the binary (the embedded default model), not copied.
    pub fn from_static(name: &str, bytes: &'static [u8]) -> Result<Weights> {
        let file = File::parse(name.to_string(), Source::Static(bytes))?;
        Weights::from_files(name.to_string(), vec![file])
    }

    /// Shards already in memory, named as in `model.safetensors.index.json` (see [`shard_names`]).
    pub fn from_shard_bytes(origin: &str, shards: Vec<(String, Vec<u8>)>) -> Result<Weights> {
        let files = shards
            .into_iter()
            .map(|(name, bytes)| File::parse(name, Source::Owned(bytes)))
            .collect::<Result<Vec<_>>>()?;
        Weights::from_files(origin.to_string(), files)
    }

    /// Tensors built in memory (benchmarks, tests).
    pub fn from_tensors(tensors: HashMap<String, Tensor>) -> Weights {
        Weights {
            memory: tensors,
            ..Weights::empty("<memory>".into())
        }
    }

    /// Tensors widened as they streamed in, the names and dtypes of non-float ones, and the
    /// matrices a device holds.
    pub(super) fn from_streamed(
        origin: String,
        tensors: HashMap<String, Tensor>,
        others: HashMap<String, (Dtype, Vec<usize>)>,
        on_device: HashMap<String, Matrix>,
    ) -> Weights {
        let mut shapes: HashMap<String, Vec<usize>> = tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.shape.clone()))
            .collect();
        let mut dtypes = HashMap::new();
        for (name, (dtype, shape)) in others {
            shapes.insert(name.clone(), shape);
            dtypes.insert(name, dtype);
        }
        for (name, m) in &on_device {
            shapes.insert(name.clone(), vec![m.rows, m.cols]);
        }
        Weights {
            on_device,
            streamed: std::sync::Mutex::new(tensors),
            streamed_shapes: shapes,
            streamed_others: dtypes,
            ..Weights::empty(origin)
        }
    }

    fn empty(origin: String) -> Weights {
        Weights {
            origin,
            files: Vec::new(),
            index: HashMap::new(),
            memory: HashMap::new(),
            streamed: std::sync::Mutex::new(HashMap::new()),
            streamed_shapes: HashMap::new(),
            streamed_others: HashMap::new(),
            on_device: HashMap::new(),
            read: Default::default(),
            matrices: Default::default(),
        }
    }

    /// The files' tensors, indexed by name. A tensor in two files is an error naming both:
    /// which copy a model would get must not depend on the order the shards were read in.
    fn from_files(origin: String, files: Vec<File>) -> Result<Weights> {
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            for name in f.meta.tensors().keys() {
                if let Some(j) = index.insert(name.clone(), i) {
                    return Err(Error::tensor(
                        &origin,
                        name,
                        format!(
                            "is in two shards, `{}` and `{}`; a tensor must be in one",
                            files[j].path, f.path
                        ),
                    ));
                }
            }
        }
        Ok(Weights {
            files,
            index,
            ..Weights::empty(origin)
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn contains(&self, name: &str) -> bool {
        self.memory.contains_key(name)
            || self.index.contains_key(name)
            || self.streamed_shapes.contains_key(name)
    }

    /// The stored shape of a tensor, if it exists.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(t) = self.memory.get(name) {
            return Some(t.shape.clone());
        }
        if let Some(s) = self.streamed_shapes.get(name) {
            return Some(s.clone());
        }
        let f = &self.files[*self.index.get(name)?];
        f.info(name).map(|i| i.shape.clone())
    }

    /// The names read as weight matrices so far, sorted.
    pub fn matrix_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .matrices
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The dtype and shape of a tensor of a file.
    pub fn info(&self, name: &str) -> Option<(Dtype, Vec<usize>)> {
        let f = &self.files[*self.index.get(name)?];
        f.info(name).map(|i| (i.dtype, i.shape.clone()))
    }

    /// The stored bytes of a tensor of a file, as they are.
    pub fn raw(&self, name: &str) -> Option<&[u8]> {
        let f = &self.files[*self.index.get(name)?];
        f.info(name).map(|i| f.data(i))
    }

    /// Bytes of tensor data in the files.
    pub fn data_bytes(&self) -> usize {
        self.files
            .iter()
            .map(|f| (*f.bytes).as_ref().len() - f.data_start)
            .sum()
    }

    /// Loads a tensor that must exist with exactly this shape.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_opt(name, shape)?.ok_or_else(|| {
            Error::tensor(
                &self.origin,
                name,
                format!("missing (expected shape {shape:?})"),
            )
        })
    }

    /// Loads the first of several names that exists (legacy spellings such as `gamma`/`weight`).
    pub fn get_any(&self, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        for n in names {
            if let Some(t) = self.get_opt(n, shape)? {
                return Ok(t);
            }
        }
        Err(Error::tensor(
            &self.origin,
            names.join("` or `"),
            format!("missing (expected shape {shape:?})"),
        ))
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .memory
            .keys()
            .chain(self.index.keys())
            .chain(self.streamed_shapes.keys())
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The names read so far (by [`get`](Weights::get) and its kin), sorted.
    pub fn read_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .read
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The float tensors nothing has read (integer buffers such as `position_ids` left out):
    /// after a build, the checkpoint's tensors the model does not use.
    pub fn unused(&self) -> Vec<String> {
        let read = self.read_names();
        self.names()
            .into_iter()
            .filter(|n| read.binary_search(n).is_err() && !self.is_integer(n))
            .collect()
    }

    fn is_integer(&self, name: &str) -> bool {
        if let Some(&dtype) = self.streamed_others.get(name) {
            return float_size(dtype).is_none();
        }
        self.index
            .get(name)
            .and_then(|&fi| self.files[fi].info(name))
            .is_some_and(|i| float_size(i.dtype).is_none())
    }

    /// Loads a tensor that may be absent; if present, its shape must match.
    pub fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let got = self.get_opt_unrecorded(name, shape)?;
        if got.is_some() {
            self.record(name);
            return Ok(got);
        }
        // a quantised checkpoint holds every 2-D weight as q8_0 or q4_0, including those a
        // builder reads as a plain tensor (position tables)
        if let [rows, cols] = *shape {
            let quantised = [Quant::Q8, Quant::Q4]
                .iter()
                .any(|&f| self.index.contains_key(&quant_name(name, f)));
            if quantised {
                let m = self.matrix(name, rows, cols)?;
                return Ok(Some(Tensor::new(shape.to_vec(), m.to_f32())));
            }
        }
        Ok(None)
    }

    /// A weight matrix that must exist as `[rows, cols]`, in its stored precision: f16 and bf16
    /// tensors of a file stay where they are (the memory map natively), others become f32.
    /// A quantised checkpoint (`unmask quantize`) holds it as `<name>.q8_0` and
    /// `<name>.q8_0_scale` instead, or `<name>.q4_0` and `<name>.q4_0_scale`.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        self.matrix_opt(name, rows, cols)?.ok_or_else(|| {
            Error::tensor(
                &self.origin,
                name,
                format!("missing (expected shape {:?})", [rows, cols]),
            )
        })
    }

    pub fn matrix_opt(&self, name: &str, rows: usize, cols: usize) -> Result<Option<Matrix>> {
        if let Ok(mut m) = self.matrices.lock() {
            m.insert(name.to_string());
        }
        if let Some(m) = self.on_device.get(name) {
            if m.shape() != [rows, cols] {
                return Err(Error::tensor(
                    &self.origin,
                    name,
                    format!("has shape {:?}, expected {:?}", m.shape(), [rows, cols]),
                ));
            }
            self.record(name);
            // a handle to the device's rows: a second read (a tied head) shares them
            return Ok(Some(m.clone()));
        }
        let in_file = |n: &str| {
            self.index
                .get(n)
                .map(|&fi| (&self.files[fi], self.files[fi].info(n).expect("indexed")))
        };
        if let Some((file, info)) = in_file(name) {
            if let Some(kind) = half_kind(info.dtype) {
                if info.shape != [rows, cols] {
                    return Err(Error::tensor(
                        &file.path,
                        name,
                        format!("has shape {:?}, expected {:?}", info.shape, [rows, cols]),
                    ));
                }
                self.record(name);
                return Ok(Some(Matrix::half(rows, cols, kind, file.view(info))));
            }
        } else {
            for format in [Quant::Q8, Quant::Q4] {
                let values_name = quant_name(name, format);
                let Some((file, q)) = in_file(&values_name) else {
                    continue;
                };
                let scale_name = quant_scale_name(name, format);
                let Some((sfile, s)) = in_file(&scale_name) else {
                    return Err(Error::tensor(
                        &file.path,
                        &scale_name,
                        format!("missing: `{values_name}` has no scales"),
                    ));
                };
                // the same number of blocks for both formats; q4_0 packs two values a byte
                let blocks = Matrix::q8_blocks(cols);
                let (dtype, width) = match format {
                    Quant::Q8 => (Dtype::I8, blocks * matrix::Q8_BLOCK),
                    Quant::Q4 => (Dtype::U8, blocks * matrix::Q4_BYTES),
                };
                for (n, info, dtype, shape) in [
                    (&values_name, q, dtype, [rows, width]),
                    (&scale_name, s, Dtype::F16, [rows, blocks]),
                ] {
                    if info.dtype != dtype || info.shape != shape {
                        return Err(Error::tensor(
                            &file.path,
                            n,
                            format!(
                                "is {:?} {:?}; a {} matrix [{rows}, {cols}] needs {dtype:?} {shape:?}",
                                info.dtype,
                                info.shape,
                                format.name()
                            ),
                        ));
                    }
                }
                self.record(&values_name);
                self.record(&scale_name);
                let (qs, scales) = (file.view(q), sfile.view(s));
                let m = match format {
                    Quant::Q8 => Matrix::q8(rows, cols, qs, scales),
                    Quant::Q4 => Matrix::q4(rows, cols, qs, scales),
                };
                return Ok(Some(m.expect("shapes checked")));
            }
        }
        Ok(self
            .get_opt(name, &[rows, cols])?
            .map(|t| Matrix::f32(rows, cols, t.data)))
    }

    fn record(&self, name: &str) {
        if let Ok(mut r) = self.read.lock() {
            r.insert(name.to_string());
        }
    }

    fn get_opt_unrecorded(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        if let Some(t) = self.memory.get(name) {
            if t.shape != shape {
                return Err(Error::tensor(
                    &self.origin,
                    name,
                    format!("has shape {:?}, expected {shape:?}", t.shape),
                ));
            }
            return Ok(Some(t.clone()));
        }
        if let Some(stored) = self.streamed_shapes.get(name) {
            if stored != shape {
                return Err(Error::tensor(
                    &self.origin,
                    name,
                    format!("has shape {stored:?}, expected {shape:?}"),
                ));
            }
            if self.on_device.contains_key(name) {
                return Err(Error::tensor(
                    &self.origin,
                    name,
                    "went to the GPU as it streamed in, so it cannot be read as a host tensor (the architecture's device rule should leave it out)",
                ));
            }
            if let Some(&dtype) = self.streamed_others.get(name) {
                // the same error a whole-file load gives for a non-float tensor
                return convert_to_f32(&self.origin, name, dtype, &[]).map(|_| None);
            }
            let taken = self.streamed.lock().ok().and_then(|mut m| m.remove(name));
            return match taken {
                Some(t) => Ok(Some(t)),
                // a builder reads each name once; a second read would need a copy
                None => Err(Error::tensor(
                    &self.origin,
                    name,
                    "was read twice from a streamed checkpoint (it has already moved into the model)",
                )),
            };
        }
        let Some(&fi) = self.index.get(name) else {
            return Ok(None);
        };
        let file = &self.files[fi];
        let info = file.info(name).expect("index built from metadata");
        if info.shape != shape {
            return Err(Error::tensor(
                &file.path,
                name,
                format!("has shape {:?}, expected {shape:?}", info.shape),
            ));
        }
        let data = convert_to_f32(&file.path, name, info.dtype, file.data(info))?;
        Ok(Some(Tensor::new(shape.to_vec(), data)))
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn open_mapped(path: &Path) -> Result<File> {
    regular_file(path)?;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path.display(), e))?;
    // SAFETY: the map is read-only and the file is not expected to change while the model is
    // loading; a concurrent writer would only corrupt the weights we read, which the shape and
    // size checks bound.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path.display(), e))?;
    File::parse(path.display().to_string(), Source::Mapped(map))
}

/// Refuses a path that is not a regular file once links are followed: opening a named pipe
/// would wait for a writer that never comes, and a device or a folder is no checkpoint.
#[cfg(not(target_arch = "wasm32"))]
pub fn regular_file(path: &Path) -> Result<()> {
    let m = std::fs::metadata(path).map_err(|e| Error::io(path.display(), e))?;
    if m.is_file() {
        return Ok(());
    }
    let t = m.file_type();
    let kind = if t.is_dir() {
        "a folder"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                "a named pipe"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a file"
            }
        }
        #[cfg(not(unix))]
        {
            "not a file"
        }
    };
    Err(Error::file(
        path.display(),
        format!("is {kind}, not a regular file; unmask reads checkpoints from regular files"),
    ))
}

/// The distinct shard file names of a `model.safetensors.index.json`, in first-seen order.
pub fn shard_names(path: &str, text: &str) -> Result<Vec<String>> {
    Ok(distinct_shards(&shard_map(path, text)?))
}

fn distinct_shards(map: &[(String, String)]) -> Vec<String> {
    let mut shards: Vec<String> = Vec::new();
    for (_, file) in map {
        if !shards.iter().any(|s| s == file) {
            shards.push(file.clone());
        }
    }
    shards
}

/// Every `(tensor, shard)` pair of a `model.safetensors.index.json`'s `weight_map`, checked:
/// each shard a plain file name in the model folder.
pub fn shard_map(path: &str, text: &str) -> Result<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::file(path, format!("not valid JSON: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::config(path, "weight_map", "missing or not an object"))?;
    let mut pairs = Vec::with_capacity(map.len());
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            Error::config(path, format!("weight_map.{tensor}"), "not a file name")
        })?;
        // Shards live next to the index; a path here would let a config read any file.
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(Error::config(
                path,
                format!("weight_map.{tensor}"),
                format!("`{file}` is not a plain file name in the model folder"),
            ));
        }
        pairs.push((tensor.clone(), file.to_string()));
    }
    if pairs.is_empty() {
        return Err(Error::config(path, "weight_map", "lists no tensors"));
    }
    Ok(pairs)
}

fn convert_to_f32(path: &str, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    let Some(size) = float_size(dtype) else {
        return Err(Error::tensor(
            path,
            name,
            format!("has dtype {dtype:?}; weights must be F32, F16, BF16 or F64"),
        ));
    };
    let mut out = Vec::with_capacity(bytes.len() / size);
    widen(dtype, bytes, &mut out);
    Ok(out)
}

/// `<name>.q8_0` or `<name>.q4_0`: the name under which a quantised checkpoint holds the
/// packed values of matrix `name`.
pub fn quant_name(name: &str, format: Quant) -> String {
    format!("{name}.{}", format.name())
}

/// `<name>.q8_0_scale` or `<name>.q4_0_scale`: the f16 scales of its blocks.
pub fn quant_scale_name(name: &str, format: Quant) -> String {
    format!("{name}.{}_scale", format.name())
}

fn half_kind(dtype: Dtype) -> Option<Half> {
    match dtype {
        Dtype::F16 => Some(Half::F16),
        Dtype::BF16 => Some(Half::Bf16),
        _ => None,
    }
}

/// Bytes of one element for the float dtypes a model takes; `None` for the rest (integer
/// buffers some checkpoints carry, such as `position_ids`, which no builder reads).
pub(super) fn float_size(dtype: Dtype) -> Option<usize> {
    match dtype {
        Dtype::F16 | Dtype::BF16 => Some(2),
        Dtype::F32 => Some(4),
        Dtype::F64 => Some(8),
        _ => None,
    }
}

/// Appends the f32 values of whole little-endian `dtype` elements (a float dtype).
pub(super) fn widen(dtype: Dtype, bytes: &[u8], out: &mut Vec<f32>) {
    match dtype {
        Dtype::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        Dtype::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        Dtype::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        Dtype::F64 => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32),
        ),
        _ => unreachable!("only float tensors are widened"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Vec<u8> {
        let view = safetensors::tensor::TensorView::new(dtype, shape, &data).unwrap();
        safetensors::serialize([("w", view)], None).unwrap()
    }

    #[test]
    fn converts_half_precisions_exactly() {
        let vals = [1.5f32, -2.25, 0.0, 65504.0];
        let f16s: Vec<u8> = vals
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16s: Vec<u8> = vals
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect();
        for (dt, bytes) in [(Dtype::F16, f16s), (Dtype::BF16, bf16s)] {
            let w = Weights::from_bytes("t.safetensors", file_with(dt, vec![2, 2], bytes)).unwrap();
            let t = w.get("w", &[2, 2]).unwrap();
            assert_eq!(t.data[..3], vals[..3], "{dt:?}");
        }
    }

    #[test]
    fn rejects_integer_weights_by_name() {
        let w = Weights::from_bytes("t.safetensors", file_with(Dtype::I32, vec![1], vec![0; 4]))
            .unwrap();
        let e = w.get("w", &[1]).unwrap_err().to_string();
        assert!(e.contains("`w`") && e.contains("I32"), "{e}");
    }

    #[test]
    fn index_rejects_paths() {
        let e = shard_names("i.json", r#"{"weight_map":{"a":"../x.safetensors"}}"#).unwrap_err();
        assert!(e.to_string().contains("weight_map.a"), "{e}");
        let ok = shard_names("i.json", r#"{"weight_map":{"a":"s1","b":"s2","c":"s1"}}"#).unwrap();
        assert_eq!(ok, vec!["s1", "s2"]);
    }
}
