// Re-embed the migrations when a migration file changes (embed_migrations! does not notice).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
