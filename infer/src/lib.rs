//! trendscore-infer (being written).
