//! Emits an rpath to libtorch's directory so that the `trainer` binary, its tests, examples and
//! benches run without the user setting `LD_LIBRARY_PATH`.
//!
//! The directory is, in order: `DEP_TCH_LIBTORCH_LIB` (exported by torch-sys to direct
//! dependents), `$LIBTORCH/lib`, or the `lib` folder of the PyTorch that `python3` imports (the
//! `LIBTORCH_USE_PYTORCH=1` set-up of this workspace).
use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(python)
        .args([
            "-c",
            "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    println!("cargo:rerun-if-changed=build.rs");
    match torch_lib_dir() {
        Some(dir) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
            // Keep libtorch_cuda linked even though no symbol of it is referenced directly
            // (the linker's --as-needed would drop it), so that `--device cuda|auto` finds CUDA
            // when the installed torch has it.
            if dir.join("libtorch_cuda.so").exists() {
                println!(
                    "cargo:rustc-link-arg=-Wl,-L{},--push-state,--no-as-needed,-ltorch_cuda,--pop-state",
                    dir.display()
                );
            }
        }
        None => println!(
            "cargo:warning=could not locate libtorch's lib dir; set LD_LIBRARY_PATH at run time"
        ),
    }
}
