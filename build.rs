//! Records the target triple shoal is built for, so that `shoal images compile` defaults to
//! it and errors about a precompiled image for another machine can name this one.
//!
//! For release builds on x86_64 Linux it also hands the linker `build/startup-functions.txt`
//! (`build/startup-functions-lean.txt` without the `compiler` feature: mangled names differ),
//! the functions that run while a stack starts and runs, so that they sit side by side in the
//! binary. The kernel maps code 64 KiB around every page touched; scattered, those functions
//! keep ~7 MB of the binary resident, together ~2 MB. `scripts/startup-order.sh` regenerates
//! the list; `SHOAL_NO_STARTUP_ORDER=1` links without it.

use std::path::Path;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=SHOAL_HOST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/startup-functions.txt");
    println!("cargo:rerun-if-changed=build/startup-functions-lean.txt");
    println!("cargo:rerun-if-env-changed=SHOAL_NO_STARTUP_ORDER");

    version_facts();

    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let wanted = std::env::var_os("SHOAL_NO_STARTUP_ORDER").is_none_or(|v| v.is_empty() || v == "0");
    // rustc links this target with its bundled LLD, which takes the option; other targets
    // link with the system's `ld`, and GNU ld would refuse it.
    // Relative relocations packed (DT_RELR): a PIE Rust binary carries ~29,000 of them,
    // 690 KB of `.rela.dyn` that the loader reads at every start and that stays resident;
    // packed they take a few KB. Needs glibc 2.36 (Debian 12, Raspberry Pi OS bookworm);
    // an older glibc refuses the binary by name (`GLIBC_ABI_DT_RELR`) instead of misrunning.
    if release && target == "x86_64-unknown-linux-gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    if release && wanted && target == "x86_64-unknown-linux-gnu" {
        let name = match std::env::var_os("CARGO_FEATURE_COMPILER") {
            Some(_) => "build/startup-functions.txt",
            None => "build/startup-functions-lean.txt",
        };
        let list = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        if let Ok(text) = std::fs::read_to_string(&list) {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                list.display()
            );
            // A name that no longer exists (the list is older than the code) is skipped.
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
            // The list splits steady-state code from start-up code with two markers
            // (src/startup_code.rs); only then may the server unmap what lies between them.
            let names: Vec<&str> = text.lines().collect();
            let begin = names.iter().position(|n| *n == "shoal_startup_code_begin");
            let end = names.iter().position(|n| *n == "shoal_startup_code_end");
            if matches!((begin, end), (Some(b), Some(e)) if b < e) {
                println!("cargo:rustc-env=SHOAL_STARTUP_ORDERED=1");
            }
        }
    }
}

/// `shoal version`: the commit (from `git` when built in a checkout, else "unknown"), the
/// build features and the wasmtime version locked in `Cargo.lock`.
fn version_facts() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(hash) if git(&["status", "--porcelain", "--untracked-files=no"]).is_some() => format!("{hash}-dirty"),
        Some(hash) => hash,
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=SHOAL_GIT_COMMIT={commit}");
    // A new commit or checkout moves HEAD's reflog: rebuild the version then.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
    let features = if std::env::var_os("CARGO_FEATURE_COMPILER").is_some() {
        "compiler"
    } else {
        "lean (no compiler: precompiled images only)"
    };
    println!("cargo:rustc-env=SHOAL_FEATURES={features}");
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap_or_default();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SHOAL_WASMTIME_VERSION={wasmtime}");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
