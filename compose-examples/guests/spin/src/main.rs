//! Prints `spinning`, then burns CPU forever without any host call (for stop/kill tests).

use std::hint::black_box;

fn main() {
    println!("spinning");
    let mut x: u64 = 0;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}
