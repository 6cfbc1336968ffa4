//! `wasm_bindgen::prelude::wasm_bindgen` as an attribute that leaves its item as it is: the
//! native build compiles the kernels' wasm boundary types as plain Rust.

/// What the kernels import.
pub mod prelude {
    pub use wasm_bindgen_stub_macro::wasm_bindgen;
}
