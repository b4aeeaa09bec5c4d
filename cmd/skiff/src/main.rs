//! The skiff binary: CLI parsing, tracing setup, dispatch to server/agent/tools.

fn main() {
    println!("skiff");
}
