//! Writes `Hello World` to `/shared/shared_data.txt` (the article's shared-filesystem writer).

use std::io::Write;
use std::process::exit;

const DIR: &str = "/shared";
const PATH: &str = "/shared/shared_data.txt";
const DATA: &[u8] = b"Hello World";

fn fail(msg: String) -> ! {
    eprintln!("{msg}");
    exit(1);
}

fn main() {
    println!("Shared filesystem writer started");
    match std::fs::metadata(DIR) {
        Ok(m) if m.is_dir() => println!("Directory exists: {DIR}"),
        Ok(_) => fail(format!("Not a directory: {DIR}")),
        Err(e) => fail(format!("Directory missing: {DIR}: {e} (is it mounted?)")),
    }
    let mut f = match std::fs::File::create(PATH) {
        Ok(f) => f,
        Err(e) => fail(format!("fopen failed: {PATH}: {e}")),
    };
    println!("fopen success: {PATH}");
    if let Err(e) = f.write_all(DATA) {
        fail(format!("fwrite failed: {PATH}: {e}"));
    }
    println!("fwrite returned {} bytes", DATA.len());
    if let Err(e) = f.sync_all().or_else(|_| f.flush()) {
        fail(format!("fclose failed: {PATH}: {e}"));
    }
    println!("Writer completed successfully");
}
