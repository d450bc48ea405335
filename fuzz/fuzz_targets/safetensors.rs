//! Safetensors: a whole file (`Weights::from_bytes` and every tensor view), the same bytes
//! streamed in chunks (`WeightStream`), its header alone, and a sharded index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unmask::model::stream::{Header, WeightStream};
use unmask::model::weights::shard_names;
use unmask::model::Weights;

fuzz_target!(|data: &[u8]| {
    // first byte: the chunk size of the stream
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(w) = Weights::from_bytes("model.safetensors", bytes.to_vec()) {
        for name in w.names() {
            let shape = w.shape(&name).unwrap();
            let _ = w.get(&name, &shape);
            let _ = w.get_opt(&name, &[1]);
        }
        let _ = w.unused();
    }
    let _ = Header::parse("model.safetensors", bytes);
    let mut s = WeightStream::new("model.safetensors");
    let mut ok = true;
    for c in bytes.chunks(usize::from(chunk).max(1)) {
        if s.push(c).is_err() {
            ok = false;
            break;
        }
    }
    if ok {
        if let Ok(w) = s.finish() {
            for name in w.names() {
                let shape = w.shape(&name).unwrap();
                let _ = w.get(&name, &shape);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(names) = shard_names("model.safetensors.index.json", text) {
            for n in &names {
                assert!(
                    !n.contains('/') && !n.contains('\\') && !n.starts_with('.'),
                    "{n}"
                );
            }
            let shards = names.into_iter().map(|n| (n, bytes.to_vec())).collect();
            let _ = Weights::from_shard_bytes("model", shards);
        }
    }
});
