//! `sqlx::migrate!` embeds the migrations at compile time but only watches
//! the files that existed then: this makes a new migration file rebuild the
//! crate (see the macro's docs).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
