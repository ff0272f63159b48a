//! `didban-agent`: collects host, database and queue metrics and ships them over OTLP.
//! (To be built, see issue 4.)

fn main() {
    println!(
        "didban-agent {}: collectors are not built yet",
        env!("CARGO_PKG_VERSION")
    );
}
