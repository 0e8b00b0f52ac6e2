//! Reads `/shared/shared_data.txt` (the article's shared-filesystem reader).

use std::io::Read;
use std::process::exit;

const PATH: &str = "/shared/shared_data.txt";

fn fail(msg: String) -> ! {
    eprintln!("{msg}");
    exit(1);
}

fn main() {
    println!("Shared filesystem reader started");
    let mut f = match std::fs::File::open(PATH) {
        Ok(f) => f,
        Err(e) => fail(format!("fopen failed: {PATH}: {e}")),
    };
    println!("fopen success: {PATH}");
    let mut buf = Vec::new();
    if let Err(e) = f.read_to_end(&mut buf) {
        fail(format!("fread failed: {PATH}: {e}"));
    }
    if buf.is_empty() {
        fail(format!("fread failed: {PATH}: file is empty"));
    }
    println!("buffer read = {}", String::from_utf8_lossy(&buf));
    println!("Reader completed successfully");
}
