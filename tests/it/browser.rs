//! The live page in headless Chromium: runs `tests/browser/page.test.mjs`
//! (playwright-core driving Debian's Chromium) against this build's binary.
//! The script itself reports a missing Chromium or `node_modules` as
//! SKIPPED, or fails under `CI=true`.

use std::process::Command;

use crate::nginx::skip_or_fail;

#[test]
fn live_page_in_headless_chromium() {
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("node")
        .arg(format!("{root}/tests/browser/page.test.mjs"))
        .env("TICKSTREAM_BIN", env!("CARGO_BIN_EXE_tickstream"))
        .current_dir(root)
        .status();
    match status {
        Err(e) => skip_or_fail(&format!(
            "node could not be run ({e}); the browser test did not run"
        )),
        Ok(status) => assert!(status.success(), "the browser test failed: {status}"),
    }
}
