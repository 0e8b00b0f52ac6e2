//! The smallest shoal container: a banner and a greeting, exit code 0.

const BANNER: [&str; 6] = [
    r"  ____   _   _   ___     _     _",
    r" / ___| | | | | / _ \   / \   | |",
    r" \___ \ | |_| || | | | / _ \  | |",
    r"  ___) ||  _  || |_| |/ ___ \ | |___",
    r" |____/ |_| |_| \___//_/   \_\|_____|",
    r" ~^~^~^~^~^~^~^~^~^~^~^~^~^~^~^~^~^~",
];

fn main() {
    for line in BANNER {
        println!("{line}");
    }
    println!("Hello from a shoal container!");
}
