//! Token, position and token-type embedding lookup (the sum, before any embedding norm).

use crate::model::plan::{Embeddings, PositionIds};

/// Position ids of one row. RoBERTa counts only real tokens, starting after the pad id.
pub fn position_ids(kind: PositionIds, ids: &[u32]) -> Vec<usize> {
    match kind {
        PositionIds::FromZero => (0..ids.len()).collect(),
        PositionIds::AfterPadding { pad_id } => {
            let mut count = 0usize;
            ids.iter()
                .map(|&t| {
                    if t == pad_id {
                        pad_id as usize
                    } else {
                        count += 1;
                        pad_id as usize + count
                    }
                })
                .collect()
        }
    }
}

/// `[len, hidden]` sum of the embeddings of one row. Ids were range-checked by the caller.
pub fn embed(e: &Embeddings, ids: &[u32], token_types: Option<&[u32]>) -> Vec<f32> {
    let h = e.tokens.cols;
    let mut x = vec![0.0; ids.len() * h];
    for (row, &t) in x.chunks_exact_mut(h).zip(ids) {
        e.tokens.rows_f32(t as usize, t as usize + 1, row);
    }
    if let Some((table, kind)) = &e.positions {
        for (row, p) in x.chunks_exact_mut(h).zip(position_ids(*kind, ids)) {
            row.iter_mut().zip(table.row(p)).for_each(|(a, b)| *a += b);
        }
    }
    if let Some(table) = &e.token_types {
        for (i, row) in x.chunks_exact_mut(h).enumerate() {
            let t = token_types.map_or(0, |tt| tt[i]) as usize;
            row.iter_mut().zip(table.row(t)).for_each(|(a, b)| *a += b);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roberta_positions_start_after_padding() {
        let p = position_ids(PositionIds::AfterPadding { pad_id: 1 }, &[0, 5, 6, 2, 1, 1]);
        assert_eq!(p, vec![2, 3, 4, 5, 1, 1]);
        assert_eq!(position_ids(PositionIds::FromZero, &[7, 7]), vec![0, 1]);
    }
}
