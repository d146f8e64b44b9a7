//! Rebuild when this service's migrations change: `sqlx::migrate!` embeds them.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/auth");
}
