//! Typed reads of `config.json`. Every accessor names the file and the field when the value is
//! missing, of the wrong type or out of range, so a broken config never becomes a panic or an
//! absurd allocation later.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Upper bound for any size field; the tensors' shapes are checked against the file anyway,
/// this only keeps arithmetic on config values far from overflow.
const MAX_DIM: usize = 1 << 24;

pub struct Config {
    pub path: String,
    map: Map<String, Value>,
}

impl Config {
    pub fn parse(path: impl Into<String>, text: &str) -> Result<Config> {
        let path = path.into();
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
        match v {
            Value::Object(map) => Ok(Config { path, map }),
            _ => Err(Error::file(&path, "expected a JSON object")),
        }
    }

    /// The value of `field`: a top-level key, or a dotted path into nested objects
    /// (`model.hidden_size` in SEDD's config, which is its training config).
    fn value(&self, field: &str) -> Option<&Value> {
        if let Some(v) = self.map.get(field) {
            return Some(v);
        }
        let mut parts = field.split('.');
        let mut v = self.map.get(parts.next()?)?;
        for p in parts {
            v = v.as_object()?.get(p)?;
        }
        Some(v)
    }

    pub fn has(&self, field: &str) -> bool {
        self.value(field).is_some_and(|v| !v.is_null())
    }

    pub fn str(&self, field: &str) -> Result<&str> {
        match self.value(field) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(Error::config(
                &self.path,
                field,
                format!("expected a string, found {v}"),
            )),
            None => Err(Error::config(&self.path, field, "missing")),
        }
    }

    /// A positive size (dimension, count).
    pub fn dim(&self, field: &str) -> Result<usize> {
        let n = self.uint(field)?;
        if n == 0 || n > MAX_DIM {
            return Err(Error::config(
                &self.path,
                field,
                format!("{n} is out of range (expected 1..={MAX_DIM})"),
            ));
        }
        Ok(n)
    }

    pub fn dim_or(&self, field: &str, default: usize) -> Result<usize> {
        if self.has(field) {
            self.dim(field)
        } else {
            Ok(default)
        }
    }

    pub fn uint(&self, field: &str) -> Result<usize> {
        match self.value(field) {
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Error::config(
                        &self.path,
                        field,
                        format!("expected a non-negative integer, found {v}"),
                    )
                }),
            None => Err(Error::config(&self.path, field, "missing")),
        }
    }

    pub fn uint_opt(&self, field: &str) -> Result<Option<usize>> {
        if self.has(field) {
            self.uint(field).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn float(&self, field: &str) -> Result<f64> {
        match self.value(field) {
            Some(v) => v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                Error::config(&self.path, field, format!("expected a number, found {v}"))
            }),
            None => Err(Error::config(&self.path, field, "missing")),
        }
    }

    pub fn float_or(&self, field: &str, default: f64) -> Result<f64> {
        if self.has(field) {
            self.float(field)
        } else {
            Ok(default)
        }
    }

    /// A strictly positive number (an epsilon, a RoPE base), or `default` when absent.
    pub fn positive_or(&self, field: &str, default: f64) -> Result<f64> {
        let x = self.float_or(field, default)?;
        if x > 0.0 {
            Ok(x)
        } else {
            Err(Error::config(
                &self.path,
                field,
                format!("{x} must be greater than 0"),
            ))
        }
    }

    pub fn bool(&self, field: &str) -> Result<bool> {
        match self.value(field) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(Error::config(
                &self.path,
                field,
                format!("expected true or false, found {v}"),
            )),
            None => Err(Error::config(&self.path, field, "missing")),
        }
    }

    pub fn bool_or(&self, field: &str, default: bool) -> Result<bool> {
        if self.has(field) {
            self.bool(field)
        } else {
            Ok(default)
        }
    }

    pub fn str_or<'a>(&'a self, field: &str, default: &'a str) -> Result<&'a str> {
        if self.has(field) {
            self.str(field)
        } else {
            Ok(default)
        }
    }

    /// Fails with a message naming the field when `ok` is false.
    pub fn require(&self, ok: bool, field: &str, msg: impl Into<String>) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(Error::config(&self.path, field, msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_fields_read_nested_objects_and_name_the_path() {
        let c = Config::parse(
            "config.json",
            r#"{"model": {"hidden_size": 64, "n": "x"}, "a.b": 1, "tokens": 5}"#,
        )
        .unwrap();
        assert_eq!(c.dim("model.hidden_size").unwrap(), 64);
        assert_eq!(c.dim("a.b").unwrap(), 1, "a key with a dot is read first");
        assert!(!c.has("model.missing") && !c.has("tokens.x"));
        let e = c.dim("model.n").unwrap_err().to_string();
        assert!(e.contains("field `model.n`"), "{e}");
        let e = c.dim("model.cond_dim").unwrap_err().to_string();
        assert!(e.contains("field `model.cond_dim`: missing"), "{e}");
    }
}
