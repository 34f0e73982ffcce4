//! Pages in headless Chromium: runs the scripts of `tests/browser/`
//! (playwright-core driving Debian's Chromium) against this build's binary.
//! Each script itself reports a missing Chromium or `node_modules` as
//! SKIPPED, or fails under `CI=true`.

use std::process::Command;
use std::sync::Mutex;

use crate::nginx::skip_or_fail;

/// One Chromium at a time: the scripts wait for what a person would see
/// within seconds, and several browsers at once beside the fault tests
/// starve each other on two cores.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// Runs `tests/browser/<script>` with node, with `TICKSTREAM_BIN` and these
/// variables set; panics if it fails.
pub fn run_browser_script(script: &str, env: &[(&str, String)]) {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let root = env!("CARGO_MANIFEST_DIR");
    let status = Command::new("node")
        .arg(format!("{root}/tests/browser/{script}"))
        .env("TICKSTREAM_BIN", env!("CARGO_BIN_EXE_tickstream"))
        .envs(env.iter().map(|(name, value)| (name, value)))
        .current_dir(root)
        .status();
    match status {
        Err(e) => skip_or_fail(&format!(
            "node could not be run ({e}); the browser test {script} did not run"
        )),
        Ok(status) => assert!(
            status.success(),
            "the browser test {script} failed: {status}"
        ),
    }
}

/// One `#[test]` per script of `tests/browser/`.
macro_rules! browser_tests {
    ($($name:ident => $script:literal,)*) => {
        $(
            #[test]
            fn $name() {
                run_browser_script($script, &[]);
            }
        )*
    };
}

browser_tests! {
    live_page_in_headless_chromium => "page.test.mjs",
    page_ids_of_both_forms_in_headless_chromium => "ids.test.mjs",
    a_page_written_the_articles_way_in_headless_chromium => "article.test.mjs",
    tokens_interoperate_with_npm_jose => "jose.test.mjs",
    the_page_with_a_token_and_refused_in_headless_chromium => "auth.test.mjs",
}
