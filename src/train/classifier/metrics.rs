//! Held-out evaluation of a binary classifier from its scores: precision,
//! recall and F1 at a threshold, ROC AUC, and the score distribution.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Metrics {
    pub positives: u64,
    pub negatives: u64,
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
    pub roc_auc: f64,
    /// Documents per score decile [0, 0.1), …, [0.9, 1.0], per class.
    pub score_histogram: Histogram,
}

#[derive(Debug, Serialize)]
pub struct Histogram {
    pub positive: Vec<u64>,
    pub negative: Vec<u64>,
}

/// `scored`: (score of the positive label, is it a positive).
pub fn evaluate(scored: &[(f32, bool)], threshold: f64) -> Metrics {
    let (mut tp, mut fp, mut fneg, mut tn) = (0u64, 0u64, 0u64, 0u64);
    let mut hist = Histogram {
        positive: vec![0; 10],
        negative: vec![0; 10],
    };
    for &(s, pos) in scored {
        let yes = s as f64 >= threshold;
        match (yes, pos) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => tn += 1,
        }
        let bin = ((s.clamp(0.0, 1.0) * 10.0) as usize).min(9);
        if pos {
            hist.positive[bin] += 1;
        } else {
            hist.negative[bin] += 1;
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Metrics {
        positives: tp + fneg,
        negatives: fp + tn,
        threshold,
        precision,
        recall,
        f1,
        accuracy: ratio(tp + tn, scored.len() as u64),
        roc_auc: roc_auc(scored),
        score_histogram: hist,
    }
}

/// The probability that a random positive scores above a random negative
/// (ties count one half): the Mann-Whitney form of the ROC AUC.
pub fn roc_auc(scored: &[(f32, bool)]) -> f64 {
    let mut v: Vec<(f32, bool)> = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    // Average ranks (1-based) over runs of equal scores.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_f1() {
        let perfect = [(0.9, true), (0.8, true), (0.2, false), (0.1, false)];
        assert_eq!(roc_auc(&perfect), 1.0);
        let inverted = [(0.1, true), (0.9, false)];
        assert_eq!(roc_auc(&inverted), 0.0);
        let ties = [(0.5, true), (0.5, false)];
        assert_eq!(roc_auc(&ties), 0.5);
        // 0.3 ranks below the negative 0.6: 5 of the 6 pairs are right.
        let mixed = [
            (0.9, true),
            (0.7, true),
            (0.6, false),
            (0.3, true),
            (0.2, false),
        ];
        assert!((roc_auc(&mixed) - 5.0 / 6.0).abs() < 1e-12);
        let m = evaluate(&mixed, 0.5);
        assert_eq!((m.positives, m.negatives), (3, 2));
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.score_histogram.positive[9], 1);
        assert_eq!(m.score_histogram.negative[2], 1);
    }
}
