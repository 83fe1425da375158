//! trendscore-exporter (being written).
