//! Fault injection at the socket level (issue 5).
