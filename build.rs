//! Points the hooks runner at the libpython it was built against.
//!
//! The runner embeds Python (3.10 or newer, built with a shared libpython; pyo3 finds it
//! through `PYO3_PYTHON` or `python3` on PATH and fails the build with its own message when
//! there is none). An rpath to that library's folder makes the runner load the same Python
//! it was compiled for, even when that folder is not on the loader's path (pyenv installs).
//! connector-build itself never links libpython.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg-bin=connector-build-hooks=-Wl,-rpath,{dir}");
    }
}
