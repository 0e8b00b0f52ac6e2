//! Exits with the code given as the first argument (default 3).

fn main() {
    let code: i32 = match std::env::args().nth(1) {
        None => 3,
        Some(a) => match a.parse() {
            Ok(c) => c,
            Err(_) => {
                eprintln!("exit-code: not an integer: {a}");
                std::process::exit(2);
            }
        },
    };
    println!("exiting with {code}");
    std::process::exit(code);
}
