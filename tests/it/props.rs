//! Property tests of the parsers with generated inputs (issue 5).
