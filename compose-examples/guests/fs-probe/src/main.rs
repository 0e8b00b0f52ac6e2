//! Tries file operations given as arguments and prints what happened, one line each:
//! `fs-probe: OP PATH: ok ...` or `fs-probe: OP PATH: refused: <error>`. For shoal's
//! filesystem confinement and "nothing lost" tests. Exits 0 once every argument ran.
//!
//! | argument | does |
//! |---|---|
//! | `read:PATH` | reads the file |
//! | `write:PATH` | creates or truncates the file and writes `probe` |
//! | `ls:PATH` | lists the folder |
//! | `symlink:TARGET:LINK` | creates a symlink LINK pointing at TARGET |
//! | `append:PATH:N` | appends `line I` (I from 0) N times, one `write` per line, 20 ms apart |
//! | `fill:PATH` | writes 4 KiB blocks until a write fails, then says how far it got |
//! | `sleep:MS` | sleeps |
//! | `hoard:PATH` | opens PATH again and again, keeping every handle, until an open fails; says how many it got and why it stopped, and keeps them until the guest ends |
//! | `stat:PATH` | reads the file's metadata (type and size) |

use std::fs;
use std::io::Write;

fn report(op: &str, path: &str, result: std::io::Result<String>) {
    match result {
        Ok(what) => println!("fs-probe: {op} {path}: ok {what}"),
        Err(e) => println!("fs-probe: {op} {path}: refused: {e}"),
    }
}

fn append(path: &str, count: u32) -> std::io::Result<String> {
    let mut failures = 0;
    for i in 0..count {
        let written = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut f| f.write_all(format!("line {i}\n").as_bytes()));
        if let Err(e) = written {
            failures += 1;
            println!("fs-probe: append {path}: line {i} failed: {e}");
        }
        let _ = shoal_guest::sleep(20);
    }
    Ok(format!("{count} lines, {failures} failed"))
}

fn fill(path: &str) -> std::io::Result<String> {
    let mut file = fs::File::create(path)?;
    let block = [b'f'; 4096];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(0) => return Ok(format!("{written} bytes, then a write of 0")),
            Ok(n) => written += n as u64,
            Err(e) => return Ok(format!("{written} bytes, then: {e}")),
        }
    }
}

/// Open `path` until an open fails; the handles go to `held` so they stay open.
fn hoard(path: &str, held: &mut Vec<fs::File>) -> std::io::Result<String> {
    let before = held.len();
    loop {
        match fs::File::open(path) {
            Ok(file) => held.push(file),
            Err(e) => return Ok(format!("{} handles, then: {e}", held.len() - before)),
        }
    }
}

fn main() {
    let mut held = Vec::new();
    for arg in std::env::args().skip(1) {
        let mut parts = arg.splitn(3, ':');
        let op = parts.next().unwrap_or_default();
        let path = parts.next().unwrap_or_default();
        let extra = parts.next().unwrap_or_default();
        let result = match op {
            "read" => fs::read(path).map(|b| format!("{} bytes", b.len())),
            "write" => fs::write(path, b"probe").map(|_| "5 bytes".to_string()),
            "ls" => fs::read_dir(path).map(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                format!("[{}]", names.join(", "))
            }),
            // `soft_link` is the stable way to make a symlink on WASI.
            #[allow(deprecated)]
            "symlink" => fs::soft_link(path, extra).map(|_| format!("-> {path}")),
            "append" => append(path, extra.parse().unwrap_or(10)),
            "fill" => fill(path),
            "hoard" => hoard(path, &mut held),
            "stat" => fs::metadata(path).map(|m| format!("{:?}, {} bytes", m.file_type(), m.len())),
            "sleep" => {
                let _ = shoal_guest::sleep(path.parse().unwrap_or(100));
                Ok(String::new())
            }
            other => Err(std::io::Error::other(format!("unknown operation `{other}`"))),
        };
        report(op, path, result);
    }
}
