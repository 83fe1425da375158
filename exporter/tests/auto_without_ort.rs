//! `auto` on a machine where ONNX Runtime cannot be loaded runs tract, and the explicit
//! `ort-cpu` names the library it could not load. A test binary of its own: ONNX Runtime is
//! loaded once per process, and here the only library offered is not one.

use trendscore_exporter::checkpoint::Checkpoint;
use trendscore_exporter::{export, ExportOptions};
use trendscore_infer::{load_model, BackendChoice, BackendKind, InferError, LoadOptions};

mod common;
use common::make_checkpoint;

#[test]
fn auto_runs_tract_when_the_onnx_runtime_library_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    make_checkpoint(&ckpt, "unidirectional", None);
    let model = dir.path().join("m.onnx");
    export(&ckpt, &model, &ExportOptions::default()).unwrap();
    // A file that exists (so the search stops there) but is no shared library.
    let not_a_library = dir.path().join("libonnxruntime.so.1.99");
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    let opts = |backend| LoadOptions {
        backend,
        ort_dylib_path: Some(not_a_library.clone()),
        intra_threads: Some(1),
    };

    let m = load_model(&model, &opts(BackendChoice::Auto)).unwrap();
    assert_eq!(m.backend(), BackendKind::Tract);
    let probe = Checkpoint::load(&ckpt).unwrap().probe;
    let out = m.predict(&probe.features.data, probe.len()).unwrap();
    let want = &probe.outputs["7day_trend"].data;
    for (i, w) in want.iter().enumerate().take(out.batch) {
        let got = out.trend_7d[i];
        assert!(
            (got - w).abs() <= 1e-5,
            "window {i}: tract {got} vs reference {w}"
        );
    }

    for backend in [BackendChoice::OrtCpu, BackendChoice::OrtCuda] {
        let err = load_model(&model, &opts(backend))
            .err()
            .expect("no usable ONNX Runtime library");
        assert!(matches!(err, InferError::OrtLibrary(_)), "{backend}: {err}");
        assert!(
            err.to_string().contains("libonnxruntime.so.1.99"),
            "{backend}: the error names the library: {err}"
        );
    }
}
