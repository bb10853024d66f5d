//! The CUDA backend checked without a GPU (build with `--features cuda`; `.ci/test` runs it):
//! every kernel's launcher against the signature in its `.cu` file; every kernel compiled by
//! NVRTC for sm_80 and sm_90 with warnings as errors, through the backend's own compile path,
//! and assembled by `ptxas` with no spills (registers per kernel printed, and written to
//! `target/cuda-kernels.md`); and the error paths a user meets: no driver library, a driver
//! without a device, no NVRTC, a kernel that does not compile, a layer the backend lacks.
//!
//! NVRTC comes from the PyPI wheel `nvidia-cuda-nvrtc-cu12` (on `LD_LIBRARY_PATH`), `ptxas`
//! from `nvidia-cuda-nvcc-cu12` (on `PATH`), the driver library from Debian's `libcuda1`
//! (unpacked into `STROM_TEST_LIBCUDA_DIR`); `.ci/test` provides all three. Without them the
//! tests that need them say so and pass, except under `CI=1`, where they fail.
#![cfg(feature = "cuda")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use strom::backend::BackendError;
use strom::backend::cuda::kernels::{self, Elem, KERNELS, Kernel, Param, Warnings};

const ARCHS: [u32; 2] = [80, 90];

/// A tool or library the test needs is missing: skip with a message, or fail under CI.
fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} (CI=1: .ci/test installs it)");
    }
    eprintln!("skipped: {what}");
}

/// One parameter of a C signature, e.g. `const unsigned char* in`.
fn parse_param(text: &str) -> Result<(String, Param), String> {
    let text = text.trim();
    let split =
        text.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).ok_or(format!("no type in `{text}`"))?;
    let (ty, name) = (text[..=split].trim(), text[split + 1..].to_string());
    let (constant, ty) = match ty.strip_prefix("const ") {
        Some(rest) => (true, rest.trim()),
        None => (false, ty),
    };
    let (pointer, ty) = match ty.strip_suffix('*') {
        Some(rest) => (true, rest.trim()),
        None => (false, ty),
    };
    let elem = match ty {
        "float" => Elem::F32,
        "int" => Elem::I32,
        "unsigned" | "unsigned int" => Elem::U32,
        "unsigned char" => Elem::U8,
        other => return Err(format!("`{name}`: unknown element type `{other}`")),
    };
    let param = match (pointer, constant) {
        (true, true) => Param::Read(elem),
        (true, false) => Param::Write(elem),
        (false, _) => Param::Scalar(elem),
    };
    Ok((name, param))
}

/// The name and parameters of the one `extern "C" __global__` function in `source`.
fn parse_signature(source: &str) -> Result<(String, Vec<(String, Param)>), String> {
    let marker = "extern \"C\" __global__ void ";
    let starts: Vec<usize> = source.match_indices(marker).map(|(i, _)| i).collect();
    let [start] = starts[..] else {
        return Err(format!("{} kernels in the file, expected one", starts.len()));
    };
    let rest = &source[start + marker.len()..];
    let open = rest.find('(').ok_or("no parameter list")?;
    let close = rest.find(')').ok_or("no end to the parameter list")?;
    let name = rest[..open].trim().to_string();
    let params = rest[open + 1..close]
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_param)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, params))
}

/// Every difference between the launcher's declaration and the kernel's C signature.
fn mismatches(kernel: &Kernel, source: &str) -> Vec<String> {
    let (name, params) = match parse_signature(source) {
        Ok(s) => s,
        Err(e) => return vec![format!("{}: {e}", kernel.file)],
    };
    let mut out = vec![];
    if name != kernel.name {
        out.push(format!("{}: the kernel is `{name}`, the launcher `{}`", kernel.file, kernel.name));
    }
    if params.len() != kernel.params.len() {
        out.push(format!(
            "{}: {} parameters in C, {} in the launcher",
            kernel.file,
            params.len(),
            kernel.params.len()
        ));
    }
    for (i, ((cn, cp), (rn, rp))) in params.iter().zip(kernel.params).enumerate() {
        if cn != rn || cp != rp {
            out.push(format!(
                "{}: parameter {i} is `{cn}` {cp:?} in C, `{rn}` {rp:?} in the launcher",
                kernel.file
            ));
        }
    }
    out
}

fn cuda_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend/cuda")
}

#[test]
fn every_launcher_matches_its_kernels_signature() {
    let mut all = vec![];
    for kernel in KERNELS {
        let on_disk = std::fs::read_to_string(cuda_dir().join(kernel.file)).expect(kernel.file);
        assert_eq!(on_disk, kernel.source, "{} is the file the build includes", kernel.file);
        all.extend(mismatches(kernel, kernel.source));
    }
    assert!(all.is_empty(), "launchers that do not match their kernels:\n{}", all.join("\n"));
    // Every .cu file beside the backend is a kernel the table launches.
    let mut files: Vec<String> = std::fs::read_dir(cuda_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".cu"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = KERNELS.iter().map(|k| k.file.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every .cu file has a launcher and every launcher a file");
}

#[test]
fn the_signature_check_catches_each_kind_of_mismatch() {
    let apply = KERNELS.iter().find(|k| k.name == "apply_quanta").unwrap();
    assert!(mismatches(apply, apply.source).is_empty());
    let cases = [
        ("const unsigned* sel, int m", "const unsigned* sel, int m, int extra", "5 parameters in C"),
        ("const unsigned* sel, int m", "int m, const unsigned* sel", "parameter 1"),
        ("const unsigned* sel", "unsigned* sel", "Write(U32)"),
        ("const unsigned* sel", "const float* sel", "Read(F32)"),
        ("int m", "float m", "Scalar(F32)"),
        ("int m", "int* m", "Write(I32)"),
    ];
    for (from, to, expected) in cases {
        let changed = apply.source.replace(from, to);
        assert_ne!(changed, apply.source, "{from} is in apply_quanta.cu");
        let found = mismatches(apply, &changed).join("\n");
        assert!(found.contains(expected), "{to}: expected `{expected}` in:\n{found}");
    }
}

fn nvrtc() -> bool {
    let present = kernels::nvrtc_present();
    if !present {
        missing("NVRTC (libnvrtc.so.12) is not on LD_LIBRARY_PATH");
    }
    present
}

/// `ptxas` from PATH (the nvidia-cuda-nvcc-cu12 wheel's bin folder).
fn ptxas() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file());
    if found.is_none() {
        missing("ptxas is not on PATH");
    }
    found
}

/// ptxas's `-v` figures for one function: (registers, spill stores + loads in bytes, stack).
fn ptxas_figures(log: &str) -> Option<(u32, u32, u32)> {
    let number_before = |line: &str, unit: &str| -> Option<u32> {
        let at = line.find(unit)?;
        line[..at].split_whitespace().last()?.parse().ok()
    };
    let used = log.lines().find(|l| l.contains("Used") && l.contains("registers"))?;
    let registers = number_before(used, " registers")?;
    let frame = log.lines().find(|l| l.contains("spill stores"))?;
    let spills = number_before(frame, " bytes spill stores")? + number_before(frame, " bytes spill loads")?;
    let stack = number_before(frame, " bytes stack frame")?;
    Some((registers, spills, stack))
}

#[test]
fn every_kernel_compiles_for_sm80_and_sm90_without_warnings_and_assembles_without_spills() {
    if !nvrtc() {
        return;
    }
    let Some(ptxas) = ptxas() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut table = String::from(
        "| kernel | sm_80 registers | sm_90 registers | spills | stack (bytes) |\n|---|---|---|---|---|\n",
    );
    for kernel in KERNELS {
        let mut row = vec![];
        let mut stack_max = 0;
        for arch in ARCHS {
            let ptx = kernels::compile(kernel, &format!("compute_{arch}"), Warnings::Deny)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                ptx.contains(&format!(".entry {}", kernel.name)),
                "{}: no entry point in the PTX",
                kernel.file
            );
            let path = dir.path().join(format!("{}_{arch}.ptx", kernel.name));
            std::fs::write(&path, &ptx).unwrap();
            let out = Command::new(&ptxas)
                .args([&format!("-arch=sm_{arch}"), "-v", "--warn-on-spills", "--warning-as-error", "-o"])
                .arg(dir.path().join("out.cubin"))
                .arg(&path)
                .output()
                .unwrap();
            let log =
                format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "ptxas sm_{arch} on {}:\n{log}", kernel.file);
            let (registers, spills, stack) =
                ptxas_figures(&log).unwrap_or_else(|| panic!("no figures in ptxas's output:\n{log}"));
            assert_eq!(spills, 0, "{} spills on sm_{arch}:\n{log}", kernel.file);
            row.push(registers.to_string());
            stack_max = stack_max.max(stack);
        }
        table.push_str(&format!("| `{}` | {} | {} | 0 | {stack_max} |\n", kernel.name, row[0], row[1]));
    }
    println!("{table}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::write(target.join("cuda-kernels.md"), &table);
}

fn probe_kernel(source: &'static str) -> Kernel {
    Kernel { name: "probe", file: "probe.cu", source, params: &[] }
}

#[test]
fn a_kernel_that_does_not_compile_is_named_with_nvrtcs_log() {
    if !nvrtc() {
        return;
    }
    let broken = probe_kernel("extern \"C\" __global__ void probe(float* a) { a[0] = no_such_name; }\n");
    let e = kernels::compile(&broken, "compute_90", Warnings::Log).unwrap_err();
    assert!(matches!(e, BackendError::KernelCompile { .. }), "{e:?}");
    let m = e.to_string();
    for part in ["CUDA kernel probe (probe.cu)", "compute_90", "probe.cu(1)", "no_such_name"] {
        assert!(m.contains(part), "`{part}` in: {m}");
    }
    // A warning fails CI's compile and is only logged at run time.
    let warns = probe_kernel("extern \"C\" __global__ void probe(float* a) { int unused; a[0] = 1.f; }\n");
    let e = kernels::compile(&warns, "compute_90", Warnings::Deny).unwrap_err().to_string();
    assert!(e.contains("unused") && e.contains("warning"), "{e}");
    assert!(kernels::compile(&warns, "compute_90", Warnings::Log).is_ok());
    // An architecture NVRTC does not know is its error, named too.
    let fine = KERNELS.iter().find(|k| k.name == "scale").unwrap();
    let e = kernels::compile(fine, "compute_1", Warnings::Log).unwrap_err().to_string();
    assert!(e.contains("scale.cu") && e.contains("compute_1"), "{e}");
}

/// Run in a child process without NVRTC by `without_nvrtc_the_error_says_what_to_install`.
#[test]
#[ignore = "run by without_nvrtc_the_error_says_what_to_install in a process without NVRTC"]
fn nvrtc_missing_probe() {
    let e = kernels::compile(&KERNELS[0], "compute_90", Warnings::Log).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, BackendError::CudaUnavailable(_)), "{e:?}");
    assert!(m.contains("libnvrtc.so.12") && m.contains("nvidia-cuda-nvrtc-cu12"), "{m}");
}

#[test]
fn without_nvrtc_the_error_says_what_to_install() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "nvrtc_missing_probe", "--ignored", "--nocapture"])
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && log.contains("1 passed"), "{log}");
}

/// `strom train --device cuda` for one epoch of the demo data, with the driver library from
/// `libcuda` (or none); its exit status and stderr (logs at info level).
fn train_on_cuda(extra: &[&str], libcuda: Option<&Path>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::strom();
    cmd.current_dir(dir.path()).env("RUST_LOG", "info").env_remove("LD_LIBRARY_PATH");
    cmd.args(["train", "--device", "cuda", "--epochs", "1"]).args(extra);
    if let Some(d) = libcuda {
        cmd.env("LD_LIBRARY_PATH", d);
    }
    let (ok, _, err) = common::outcome(&mut cmd);
    (ok, err)
}

#[test]
fn without_a_driver_library_training_on_cuda_stops_with_what_to_do() {
    let (ok, err) = train_on_cuda(&[], None);
    assert!(!ok, "exits non-zero");
    assert!(err.contains("libcuda.so") && err.contains("not installed") && err.contains("cpu"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_driver_without_a_device_is_reported_not_a_crash() {
    let Some(dir) = std::env::var_os("STROM_TEST_LIBCUDA_DIR").map(PathBuf::from) else {
        return missing(
            "STROM_TEST_LIBCUDA_DIR (the NVIDIA driver library, Debian's libcuda1 unpacked) is not set",
        );
    };
    assert!(dir.join("libcuda.so.1").exists(), "{} holds libcuda.so.1", dir.display());
    let (ok, err) = train_on_cuda(&[], Some(&dir));
    assert!(!ok, "exits non-zero");
    assert!(err.contains("CUDA_ERROR_NO_DEVICE") && err.contains("device 0") && err.contains("cpu"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_layer_the_cuda_backend_lacks_is_refused_before_training() {
    let (ok, err) = train_on_cuda(&["--model", "cnn"], None);
    assert!(!ok, "exits non-zero");
    assert!(err.contains("no kernel for layer 0 (conv2d") && err.contains("--device cpu"), "{err}");
    assert!(!err.contains("epoch 1/1"), "refused before the first epoch: {err}");
}
