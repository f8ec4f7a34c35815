//! Placeholder library so the end-to-end test crate is a workspace member; the tests live in `tests/tests/`.
