//! Cutting a nested OTLP list (resources → scopes → items) after its first `k` leaf items,
//! and choosing `k` so that both halves carry about the same number of bytes.

/// Splits `items` after their first `k` leaves. Items entirely before the cut go first, items
/// after it second, and the one item the cut falls inside is split by `split_one(item, k')`
/// with `k'` the leaves of that item that go first (`0 < k' < leaves(item)`).
pub fn cut<T>(
    items: Vec<T>,
    k: usize,
    leaves: impl Fn(&T) -> usize,
    split_one: impl Fn(T, usize) -> (T, T),
) -> (Vec<T>, Vec<T>) {
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut left = k;
    for item in items {
        let n = leaves(&item);
        if left == 0 {
            second.push(item);
        } else if n <= left {
            left -= n;
            first.push(item);
        } else {
            let (a, b) = split_one(item, left);
            left = 0;
            first.push(a);
            second.push(b);
        }
    }
    (first, second)
}

/// The number of leading leaves whose bytes reach half of the total, at least 1 and at most
/// `sizes.len() - 1`; `None` when there are fewer than two leaves.
pub fn middle(sizes: &[usize]) -> Option<usize> {
    if sizes.len() < 2 {
        return None;
    }
    let total: usize = sizes.iter().sum();
    let mut sum = 0;
    let mut k = 0;
    for size in sizes {
        if k > 0 && sum * 2 >= total {
            break;
        }
        sum += size;
        k += 1;
    }
    Some(k.clamp(1, sizes.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middle_halves_bytes_not_counts() {
        assert_eq!(middle(&[]), None);
        assert_eq!(middle(&[5]), None);
        assert_eq!(middle(&[5, 5]), Some(1));
        assert_eq!(middle(&[1, 1, 1, 1]), Some(2));
        assert_eq!(middle(&[100, 1, 1, 1]), Some(1));
        assert_eq!(middle(&[1, 1, 1, 100]), Some(3));
    }

    #[test]
    fn cut_splits_the_straddling_item() {
        let groups = vec![vec![1, 2], vec![3, 4, 5], vec![6]];
        let split = |mut g: Vec<i32>, k: usize| {
            let b = g.split_off(k);
            (g, b)
        };
        let (a, b) = cut(groups.clone(), 3, Vec::len, split);
        assert_eq!(a, vec![vec![1, 2], vec![3]]);
        assert_eq!(b, vec![vec![4, 5], vec![6]]);
        let (a, b) = cut(groups, 2, Vec::len, split);
        assert_eq!(a, vec![vec![1, 2]]);
        assert_eq!(b, vec![vec![3, 4, 5], vec![6]]);
    }
}
