//! trendscore-features (being written).
