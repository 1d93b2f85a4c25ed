//! Test-only crash points: with the `crash-points` feature (enabled for the test build only,
//! never in `cargo leptos build`), `NEXUS_TEST_CRASH_AT=<name>` aborts the process right there,
//! so the crash-recovery tests can stop a server at an exact step. Without the feature this is
//! an empty function.

#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    if std::env::var("NEXUS_TEST_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("NEXUS_TEST_CRASH_AT: crash point `{name}` reached, aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
