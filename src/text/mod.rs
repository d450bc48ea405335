//! Text: the tokenizer (the `tokenizers` crate over a model's `tokenizer.json`). Hole templates
//! and canvases arrive with the infill issue.

mod tokenizer;

pub use tokenizer::Tokenizer;
