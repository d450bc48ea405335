//! The `unmask forward` input file (`Batch::from_safetensors_bytes`): a batch whose arrays
//! agree with its shape, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unmask::batch::Batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Batch::from_safetensors_bytes("input.safetensors", data) {
        assert_eq!(b.ids.len(), b.size * b.len);
        for r in 0..b.size {
            let row = b.row(r);
            assert_eq!(row.ids.len(), b.len);
            for i in 0..b.len {
                let _ = b.is_real(r, i);
            }
        }
    }
});
