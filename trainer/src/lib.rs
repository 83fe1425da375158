//! trendscore-trainer (being written).
