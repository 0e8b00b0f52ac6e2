//! Records the target triple shoal is built for, so that `shoal images compile` defaults to
//! it and errors about a precompiled image for another machine can name this one.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=SHOAL_HOST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
