//! trendscore-scorer (being written).
