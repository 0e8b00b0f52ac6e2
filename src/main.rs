fn main() -> std::process::ExitCode {
    shoal::procstat::reexec_without_malloc_cache();
    shoal::cli::main()
}
