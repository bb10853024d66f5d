//! Every CUDA kernel of the backend: its `.cu` file (beside this one, read with
//! `include_str!`), its parameters as Rust declares them, and one typed launcher each. The
//! table below is the single definition: the launchers' argument lists and [`KERNELS`]' parameter
//! lists are generated from the same tokens, and `tests/cuda_kernels.rs` checks those against
//! the C signature parsed from each `.cu` file (count, order, pointer or scalar, element type,
//! const), compiles every kernel with NVRTC through [`compile`] (the path the backend takes at
//! run time) and assembles it with `ptxas`.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, CudaView, CudaViewMut, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::device::cuda_err;
use crate::backend::BackendError;
use crate::sharing::quantum;

/// An element type as a kernel's C signature names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    I32,
    U32,
    U8,
}

impl Elem {
    /// The C spelling, as the `.cu` files write it.
    pub fn c_name(self) -> &'static str {
        match self {
            Elem::F32 => "float",
            Elem::I32 => "int",
            Elem::U32 => "unsigned",
            Elem::U8 => "unsigned char",
        }
    }
}

/// One kernel parameter: a device pointer the kernel only reads (`const T*`), one it writes
/// (`T*`), or a scalar passed by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Read(Elem),
    Write(Elem),
    Scalar(Elem),
}

/// A kernel: its name (the `extern "C"` symbol), file, source and parameters in launch order.
#[derive(Debug)]
pub struct Kernel {
    pub name: &'static str,
    pub file: &'static str,
    pub source: &'static str,
    pub params: &'static [(&'static str, Param)],
}

/// Whether NVRTC's warnings fail the compilation (CI) or are logged (run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warnings {
    Deny,
    Log,
}

macro_rules! elem {
    (f32) => {
        Elem::F32
    };
    (i32) => {
        Elem::I32
    };
    (u32) => {
        Elem::U32
    };
    (u8) => {
        Elem::U8
    };
}

macro_rules! param {
    (read $t:ident) => {
        Param::Read(elem!($t))
    };
    (write $t:ident) => {
        Param::Write(elem!($t))
    };
    (scalar $t:ident) => {
        Param::Scalar(elem!($t))
    };
}

macro_rules! arg_type {
    (read $t:ident) => { &CudaView<'_, $t> };
    (write $t:ident) => { &mut CudaViewMut<'_, $t> };
    (scalar $t:ident) => { $t };
}

macro_rules! push {
    ($b:ident, read, $a:ident) => {
        $b.arg($a)
    };
    ($b:ident, write, $a:ident) => {
        $b.arg($a)
    };
    ($b:ident, scalar, $a:ident) => {
        $b.arg(&$a)
    };
}

macro_rules! kernels {
    ($($name:ident ($($arg:ident: $kind:ident $t:ident),* $(,)?);)*) => {
        /// Every kernel, in the order the backend loads them.
        pub const KERNELS: &[Kernel] = &[$(Kernel {
            name: stringify!($name),
            file: concat!(stringify!($name), ".cu"),
            source: include_str!(concat!(stringify!($name), ".cu")),
            params: &[$((stringify!($arg), param!($kind $t))),*],
        }),*];

        /// The loaded kernels of one device, launched on its stream.
        pub(super) struct Kernels {
            stream: Arc<CudaStream>,
            _modules: Vec<Arc<CudaModule>>,
            $($name: CudaFunction,)*
        }

        impl Kernels {
            /// Compiles every kernel for the device's architecture and loads it.
            pub(super) fn load(ctx: &Arc<CudaContext>, stream: Arc<CudaStream>) -> Result<Self, BackendError> {
                let (major, minor) = ctx.compute_capability().map_err(cuda_err)?;
                let arch = format!("compute_{major}{minor}");
                let mut modules = Vec::with_capacity(KERNELS.len());
                let mut function = |kernel: &Kernel| -> Result<CudaFunction, BackendError> {
                    let ptx = compile(kernel, &arch, Warnings::Log)?;
                    let module = ctx.load_module(Ptx::from_src(ptx)).map_err(cuda_err)?;
                    let f = module.load_function(kernel.name).map_err(cuda_err)?;
                    modules.push(module);
                    Ok(f)
                };
                let mut all = KERNELS.iter();
                $(let $name = function(all.next().ok_or_else(|| BackendError::Cuda("kernel table".into()))?)?;)*
                Ok(Kernels { stream, _modules: modules, $($name,)* })
            }

            $(
            #[allow(clippy::too_many_arguments)]
            pub(super) fn $name(&self, cfg: LaunchConfig, $($arg: arg_type!($kind $t)),*) -> Result<(), BackendError> {
                let mut b = self.stream.launch_builder(&self.$name);
                $(push!(b, $kind, $arg);)*
                // SAFETY: the arguments match the kernel's C signature in count, order, pointer
                // or scalar, and element type (this launcher and the test that parses the `.cu`
                // file share one declaration); every pointer is a live device buffer of this
                // stream's context, borrowed for the launch; each kernel bounds its thread
                // index by the count it is given, and the callers pass counts within the
                // buffers' lengths (the sizes each `.cu` file's header states).
                unsafe { b.launch(cfg) }.map(drop).map_err(cuda_err)
            }
            )*
        }
    };
}

kernels! {
    fill_rows(z: write f32, b: read f32, rows: scalar i32, cols: scalar i32);
    activate(z: read f32, a: write f32, n: scalar i32, kind: scalar i32);
    activate_backward(z: read f32, a: read f32, ga: read f32, gz: write f32, n: scalar i32, kind: scalar i32);
    softmax_xent(z: read f32, a: write f32, labels: read u32, gz: write f32, loss: write f32, rows: scalar i32, cols: scalar i32);
    mse(a: read f32, t: read f32, gz: write f32, loss: write f32, n: scalar i32);
    column_sums(g: read f32, out: write f32, rows: scalar i32, cols: scalar i32);
    bytes_to_floats(bytes: read u8, out: write f32, n: scalar i32, scale: scalar f32);
    add_l2(g: write f32, p: read f32, n: scalar i32, l2: scalar f32);
    updater(g: write f32, m: write f32, v: write f32, n: scalar i32, kind: scalar i32, a: scalar f32, mu: scalar f32, b1: scalar f32, b2: scalar f32, eps: scalar f32);
    subtract(p: write f32, u: read f32, n: scalar i32);
    accumulate(r: write f32, u: read f32, n: scalar i32);
    select_quanta(r: read f32, base: scalar i32, n: scalar i32, tau: scalar f32, out: write u32, count: write u32, norm2: write f32);
    apply_quanta(p: write f32, sel: read u32, m: scalar i32, tau: scalar f32);
    clip(r: write f32, n: scalar i32, limit: scalar f32);
    scale(r: write f32, n: scalar i32, factor: scalar f32);
}

/// One thread per element, in blocks of 256 (at least one block).
pub(super) fn cfg(n: usize) -> LaunchConfig {
    LaunchConfig::for_num_elems(n.max(1) as u32)
}

/// What every kernel sees before its own source: the constants it shares with the host, then
/// a `#line` so that NVRTC's messages name the kernel's file and line.
fn prelude(kernel: &Kernel) -> String {
    format!("#define QUANTUM_NEG {}u\n#line 1 \"{}\"\n", quantum::NEG, kernel.file)
}

/// Whether the CUDA runtime compiler (libnvrtc.so.12) can be loaded; probed once per process
/// (the backend compiles every kernel through [`compile`], which asks each time).
pub fn nvrtc_present() -> bool {
    static PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRESENT.get_or_init(|| {
        // An NVRTC older than the build's CUDA (12.2) lacks functions, which cudarc reports by
        // panicking: that is "not present" here.
        // SAFETY: only tries to load the library and resolve its symbols; no NVRTC call is made.
        std::panic::catch_unwind(|| unsafe { cudarc::nvrtc::sys::is_culib_present() }).unwrap_or(false)
    })
}

/// Compiles one kernel with NVRTC to PTX for `arch` (a virtual architecture such as
/// `compute_90`): the path the backend takes when it starts, and the one CI checks. An error
/// names the kernel, its file and the architecture, with NVRTC's log; with [`Warnings::Deny`]
/// a warning is an error too (NVRTC has no option for that).
pub fn compile(kernel: &Kernel, arch: &str, warnings: Warnings) -> Result<String, BackendError> {
    if !nvrtc_present() {
        return Err(BackendError::CudaUnavailable(
            "the CUDA runtime compiler (libnvrtc.so.12) is not installed or not on LD_LIBRARY_PATH; install the CUDA \
             toolkit, or `pip install nvidia-cuda-nvrtc-cu12` and add its nvidia/cuda_nvrtc/lib folder to LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let failed = |log: String| BackendError::KernelCompile {
        kernel: kernel.name.to_string(),
        file: kernel.file.to_string(),
        arch: arch.to_string(),
        log,
    };
    let source = CString::new(format!("{}{}", prelude(kernel), kernel.source))
        .map_err(|_| failed("the source holds a NUL byte".into()))?;
    let name = CString::new(kernel.file).map_err(|_| failed("the file name holds a NUL byte".into()))?;
    let prog =
        cudarc::nvrtc::result::create_program(&source, Some(&name)).map_err(|e| failed(format!("{e:?}")))?;
    let options = [format!("--gpu-architecture={arch}"), "--std=c++17".to_string()];
    // SAFETY: `prog` was created just above from `source` and `name`, which outlive it, and is
    // destroyed once below, after its log and PTX have been copied out.
    let result = unsafe {
        let compiled = cudarc::nvrtc::result::compile_program(prog, &options);
        let log = cudarc::nvrtc::result::get_program_log(prog).map(|l| c_text(&l)).unwrap_or_default();
        let ptx = compiled.and_then(|_| cudarc::nvrtc::result::get_ptx(prog)).map(|p| c_text(&p));
        let _ = cudarc::nvrtc::result::destroy_program(prog);
        (ptx, log)
    };
    match result {
        (Err(e), log) => Err(failed(format!("{e:?}\n{log}"))),
        (Ok(_), log) if log.contains("warning") && warnings == Warnings::Deny => Err(failed(log)),
        (Ok(ptx), log) => {
            if log.contains("warning") {
                tracing::warn!("CUDA kernel {} ({arch}): {log}", kernel.file);
            }
            Ok(ptx)
        }
    }
}

/// NVRTC's NUL-terminated text (a log, or PTX) as a string.
fn c_text(bytes: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = bytes.iter().map(|&c| c as u8).collect();
    CStr::from_bytes_until_nul(&bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
}
