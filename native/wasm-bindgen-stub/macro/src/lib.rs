//! The identity attribute behind the stub `wasm_bindgen`.

use proc_macro::TokenStream;

/// Returns the item unchanged (its arguments, e.g. `constructor`, are ignored).
#[proc_macro_attribute]
pub fn wasm_bindgen(_arguments: TokenStream, item: TokenStream) -> TokenStream {
    item
}
