//! Small statistics shared by the feature builder (cross-sectional ranks) and the trainer's
//! report (rank correlations).

/// Average ranks, 1-based: the smallest value gets 1, ties get the mean of their ranks;
/// values are ordered by `f64::total_cmp` (NaN after every number).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_the_mean_rank() {
        assert_eq!(average_ranks(&[0.3, 0.1, 0.3]), vec![2.5, 1.0, 2.5]);
        assert_eq!(
            average_ranks(&[2.0, 2.0, 2.0, 1.0]),
            vec![3.0, 3.0, 3.0, 1.0]
        );
        assert!(average_ranks(&[]).is_empty());
    }
}
