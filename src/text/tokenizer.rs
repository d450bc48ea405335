//! A thin wrapper over `tokenizers::Tokenizer` that keeps the file name for error messages.

use crate::error::{Error, Result};

/// Cheap to clone: the vocabulary is shared.
#[derive(Clone)]
pub struct Tokenizer {
    path: String,
    inner: std::sync::Arc<tokenizers::Tokenizer>,
}

impl Tokenizer {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_file(path: &std::path::Path) -> Result<Tokenizer> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        Tokenizer::from_bytes(&path.display().to_string(), &bytes)
    }

    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer {
            path: name.to_string(),
            msg: format!("cannot load: {e}"),
        })?;
        Ok(Tokenizer {
            path: name.to_string(),
            inner: std::sync::Arc::new(inner),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// A copy with `token` added as a special token, and its id. The id follows the
    /// `tokenizers` rule that Hugging Face's `add_special_tokens` goes through: one past the
    /// largest added id, or the model's own vocabulary size when no added id reaches it — i.e.
    /// `len(tokenizer)` for a tokenizer whose ids have no gaps.
    pub fn with_special_token(&self, token: &str) -> (Tokenizer, u32) {
        let mut inner = (*self.inner).clone();
        inner.add_special_tokens(&[tokenizers::AddedToken::from(token.to_string(), true)]);
        let id = inner
            .token_to_id(token)
            .expect("a token just added has an id");
        (
            Tokenizer {
                path: self.path.clone(),
                inner: std::sync::Arc::new(inner),
            },
            id,
        )
    }

    /// Ids of the added tokens marked special (`[CLS]`, `<|endoftext|>` …).
    pub fn special_ids(&self) -> Vec<u32> {
        self.inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// One past the largest id, added tokens included: the rows a model needs for it.
    pub fn id_bound(&self) -> usize {
        let vocab = self.inner.get_vocab(true);
        vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0)
    }

    /// Token ids of `text`; with `special`, the post-processor's template (`[CLS] … [SEP]`).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        self.inner
            .encode(text, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.err(format!("cannot encode {text:?}: {e}")))
    }

    /// Ids and token type ids of a sentence pair (`[CLS] a [SEP] b [SEP]` for BERT).
    pub fn encode_pair(&self, a: &str, b: &str, special: bool) -> Result<(Vec<u32>, Vec<u32>)> {
        let e = self
            .inner
            .encode((a, b), special)
            .map_err(|e| self.err(format!("cannot encode the pair ({a:?}, {b:?}): {e}")))?;
        Ok((e.get_ids().to_vec(), e.get_type_ids().to_vec()))
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| self.err(format!("cannot decode: {e}")))
    }

    fn err(&self, msg: String) -> Error {
        Error::Tokenizer {
            path: self.path.clone(),
            msg,
        }
    }
}
