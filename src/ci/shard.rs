//! Splitting a selection over a CI job matrix.
