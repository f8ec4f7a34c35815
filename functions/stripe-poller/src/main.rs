//! Placeholder until its issue lands: fails loudly rather than pretending.
fn main() {
    eprintln!("not implemented yet");
    std::process::exit(2);
}
