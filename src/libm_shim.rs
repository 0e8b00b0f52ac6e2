//! The three C math functions shoal's code calls, from the `libm` crate instead of the C
//! library's `libm.so.6`.
//!
//! Why: with glibc, loading `libm.so.6` at all costs every shoal process ~0.55 MB of RSS
//! (measured on a detached `shoal up`: 348 KB of its code and 208 KB of its read-only data
//! resident), because the loader runs its IFUNC resolvers and reads its symbol tables at
//! start. shoal's only imports from it were `pow` (tokio's scheduler statistics, indicatif),
//! `log` (`bytesize`'s display, `shoal stats`) and `log10` (the benches' plots). Defined
//! here, the linker resolves them in the binary and, since rustc links with `--as-needed`,
//! no longer records `libm.so.6` as needed.
//!
//! The `libm` crate is the Rust port of musl's; both it and glibc stay within an ulp of the
//! exact result, which none of these callers (estimates, display, plots) can tell apart.
//! A new call to another libm function (`exp`, `sin`, `fmod`, ...) brings `libm.so.6` back
//! silently; `scripts/startup-order.sh --check BINARY` says so.
//!
//! These are the executable's own definitions: an executable exports no symbols to the
//! shared libraries it loads, so no library's own `pow` calls are redirected here.

/// `pow(3)`.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// `log(3)`, the natural logarithm.
#[no_mangle]
pub extern "C" fn log(x: f64) -> f64 {
    libm::log(x)
}

/// `log10(3)`.
#[no_mangle]
pub extern "C" fn log10(x: f64) -> f64 {
    libm::log10(x)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_callers_get_the_same_figures() {
        // What the callers compute: an EWMA factor, a unit's exponent, a plot's decade.
        assert_eq!(super::pow(0.5, 3.0), 0.125);
        assert!((super::pow(0.9, 61.0) - 0.9f64.powi(61)).abs() < 1e-15);
        assert_eq!(super::log10(1000.0), 3.0);
        assert_eq!(super::log(1.0), 0.0);
        assert!((super::log(1024.0) / super::log(2.0) - 10.0).abs() < 1e-12);
        assert!(super::log(0.0).is_infinite() && super::log(-1.0).is_nan());
    }
}
