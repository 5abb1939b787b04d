//! `sqlx::migrate!` embeds `migrations/` at compile time; without this, a new migration file
//! leaves the library (and the migrations it applies) as it was.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
