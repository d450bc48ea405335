//! Text: the tokenizer (the `tokenizers` crate over a model's `tokenizer.json`), hole
//! templates, and the canvas they become.

pub mod canvas;
pub mod template;
mod tokenizer;

pub use canvas::{Canvas, CanvasRule};
pub use template::Template;
pub use tokenizer::Tokenizer;
