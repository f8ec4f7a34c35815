//! `stripe-brevo`: local runner and operator tool (filled by the CLI issue).
fn main() {
    eprintln!("not implemented yet");
    std::process::exit(2);
}
