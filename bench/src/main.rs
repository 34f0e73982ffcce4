//! Load generator for tickstream (placeholder until the bench crate lands).
fn main() {}
