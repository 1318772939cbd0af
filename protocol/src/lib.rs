//! Framework interfaces (generated).
