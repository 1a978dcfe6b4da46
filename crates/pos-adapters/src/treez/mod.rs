//! Treez. Written next.
