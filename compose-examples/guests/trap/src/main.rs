//! Prints a line, then executes a wasm `unreachable` (a trap).

fn main() {
    println!("about to trap");
    core::arch::wasm32::unreachable();
}
