//! Links the `weir` binary as a position-dependent executable on Linux.
//!
//! A position-independent executable has every pointer in its read-only
//! data relocated at start-up: for `weir` (DataFusion's tables included)
//! that is 5.8 MB of relocation records read and 4 MB of data pages made
//! private, about 10 MB of resident memory in every process before it does
//! anything, the agent on each monitored node included. Linked without
//! PIE those pages stay shared and clean and are only read in when used;
//! the executable's own code then sits at a fixed address (shared
//! libraries, heap and stack are still randomised), as Go binaries such as
//! node_exporter usually do.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
