//! `incept layer`: runs one operator on `.npy` files (NHWC float32 input, OHWI/OIHW/HWIO
//! weights) and writes the result as `.npy`. Every shape error names the file and the numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use incept::{
    to_ohwi, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc,
    ConvAlgorithm, ConvParams, Epilogue, Inception, InceptionConfig, InceptionWeights, Isa,
    MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, Parallelism, TensorView, TensorViewMut,
    WeightLayout, WeightShape,
};

use super::npy::{self, shape_str};

pub const USAGE: &str = "\
usage: incept layer OPERATOR [FLAGS]   run one operator on .npy files (float32 '<f4', C order)

operators:
  conv        --input X --weights W [--bias B] [--layout L] [--stride S] [--pad P] [--relu] --output Y
              a KHxKW convolution, KH and KW from the weights' shape (1x1 at stride 1, pad 0
              runs Conv1x1); S and P: one number for both axes, or ROWS,COLS
  pool        --input X --kernel K [--stride S] [--pad P] --output Y
              a KHxKW max-pool (padding never wins); K, S and P: one number for both axes, or
              ROWS,COLS (e.g. --kernel 1,3 --stride 1,2 --pad 0,1)
  bottleneck  --input X --reduce W1 [--reduce-bias B1] --weights W2 [--bias B2] [--layout L]
              [--stride S] [--pad P] [--relu] --output Y
              fused 1x1 reduction (W1, kernel 1x1) then KxK convolution (W2); --relu after both
  inception   --input X --dir DIR [--layout L] --output Y
              a whole Inception module (GoogLeNet: every conv + bias + ReLU, 3x3/5x5 'same',
              3x3 stride-1 max-pool); DIR holds, by name:
                conv1x1.npy                    1x1 branch (required)
                reduce3x3.npy  conv3x3.npy     3x3 branch: 1x1 reduction (optional), 3x3 (required)
                reduce5x5.npy  conv5x5.npy     5x5 branch: 1x1 reduction (optional), 5x5 (required)
                pool_proj.npy                  1x1 projection after the pool (optional: without it
                                               the pooled input channels pass through)
              and for each, an optional bias NAME_bias.npy (e.g. conv3x3_bias.npy), shape (out,).
              The channel counts come from the weights' shapes; the output is the concatenation
              [1x1 | 3x3 | 5x5 | pool].

flags:
  --input X           NHWC input, 4-D (n, h, w, c)
  --output Y          where to write the NHWC result
  --layout L          weight layout: ohwi (default; incept's), oihw (PyTorch, ONNX),
                      hwio (TensorFlow); weights are 4-D, biases 1-D (out,)
  --stride S          stride (default 1; conv and pool: also ROWS,COLS)
  --pad P             zero padding on every side (default 0; 'same' for odd K is (K-1)/2;
                      conv and pool: also ROWS,COLS, top and bottom then left and right:
                      a 'same' 1x7 is --pad 0,3)
  --relu              ReLU after the convolution(s)
  --algorithm A       conv, bottleneck, inception: auto|direct|winograd (default auto; winograd
                      only for 3x3 and 5x5 at stride 1)
  --accuracy P        exact|relaxed: what auto may use (default exact: direct only; relaxed:
                      Winograd for 3x3 and 5x5 at stride 1 with >= 16 channels)
  --isa I             auto|scalar|avx2|avx512|neon (default auto)
  --threads T         threads (default: all cores)";

const COMMON: [&str; 4] = ["--input", "--output", "--isa", "--threads"];

/// Runs `incept layer ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        return Err(format!("layer: missing operator\n\n{USAGE}"));
    }
    if args[0] == "help" || args.iter().any(|a| a == "-h" || a == "--help") {
        outln!("{USAGE}");
        return Ok(());
    }
    let rest = &args[1..];
    // Flags of a convolution with weights (`conv`; `bottleneck` adds its reduction's).
    let conv_flags = [
        "--weights",
        "--bias",
        "--layout",
        "--stride",
        "--pad",
        "--algorithm",
        "--accuracy",
    ];
    match args[0].as_str() {
        "conv" => conv(&Flags::parse("conv", rest, &conv_flags, &["--relu"])?),
        "pool" => pool(&Flags::parse(
            "pool",
            rest,
            &["--kernel", "--stride", "--pad"],
            &[],
        )?),
        "bottleneck" => bottleneck(&Flags::parse(
            "bottleneck",
            rest,
            &[&["--reduce", "--reduce-bias"][..], &conv_flags].concat(),
            &["--relu"],
        )?),
        "inception" => inception(&Flags::parse(
            "inception",
            rest,
            &["--dir", "--layout", "--algorithm", "--accuracy"],
            &[],
        )?),
        other => Err(format!(
            "layer: unknown operator '{other}' (expected conv, pool, bottleneck or inception)\n\n{USAGE}"
        )),
    }
}

/// The flags of one operator: `--flag value` pairs and switches, each at most once.
struct Flags {
    op: &'static str,
    values: BTreeMap<&'static str, String>,
    switches: BTreeSet<&'static str>,
}

impl Flags {
    fn parse(
        op: &'static str,
        args: &[String],
        value_flags: &[&'static str],
        switch_flags: &[&'static str],
    ) -> Result<Flags, String> {
        let mut flags = Flags {
            op,
            values: BTreeMap::new(),
            switches: BTreeSet::new(),
        };
        let known = || {
            let all: Vec<&str> = COMMON
                .iter()
                .chain(value_flags)
                .chain(switch_flags)
                .copied()
                .collect();
            all.join(", ")
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let arg = arg.as_str();
            if let Some(&flag) = COMMON.iter().chain(value_flags).find(|&&f| f == arg) {
                let value = it
                    .next()
                    .ok_or_else(|| format!("layer {op}: {flag} needs a value"))?;
                if flags.values.insert(flag, value.clone()).is_some() {
                    return Err(format!("layer {op}: {flag} given twice"));
                }
            } else if let Some(&flag) = switch_flags.iter().find(|&&f| f == arg) {
                if !flags.switches.insert(flag) {
                    return Err(format!("layer {op}: {flag} given twice"));
                }
            } else if arg.starts_with('-') {
                return Err(format!(
                    "layer {op}: unknown flag '{arg}' (expected {})",
                    known()
                ));
            } else {
                return Err(format!("layer {op}: unexpected argument '{arg}'"));
            }
        }
        Ok(flags)
    }

    fn get(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(String::as_str)
    }

    fn required(&self, flag: &str) -> Result<&str, String> {
        self.get(flag).ok_or_else(|| {
            format!(
                "layer {}: {flag} is required (see incept layer --help)",
                self.op
            )
        })
    }

    /// Checks that every one of `flags` was given (before any file is read).
    fn require_all(&self, flags: &[&str]) -> Result<(), String> {
        flags.iter().try_for_each(|f| self.required(f).map(|_| ()))
    }

    fn switch(&self, flag: &str) -> bool {
        self.switches.contains(flag)
    }

    /// An integer flag `>= min`, or `default` when absent.
    fn number(&self, flag: &str, default: usize, min: usize) -> Result<usize, String> {
        let Some(text) = self.get(flag) else {
            return Ok(default);
        };
        match text.parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!(
                "layer {}: {flag} must be an integer >= {min}, got '{text}'",
                self.op
            )),
        }
    }

    /// `N` (both axes) or `ROWS,COLS`, each `>= min`; `default` on both axes when absent.
    fn pair(&self, flag: &str, default: usize, min: usize) -> Result<[usize; 2], String> {
        let Some(text) = self.get(flag) else {
            return Ok([default; 2]);
        };
        let parse = |t: &str| t.parse::<usize>().ok().filter(|&n| n >= min);
        let pair = match text.split_once(',') {
            None => parse(text).map(|n| [n, n]),
            Some((a, b)) => parse(a).zip(parse(b)).map(|(a, b)| [a, b]),
        };
        pair.ok_or_else(|| {
            format!(
                "layer {}: {flag} must be an integer >= {min} or two (ROWS,COLS), got '{text}'",
                self.op
            )
        })
    }

    fn options(&self) -> Result<OpOptions, String> {
        let max_isa = match self.get("--isa") {
            None | Some("auto") => None,
            Some(v) => Some(
                v.parse::<Isa>()
                    .map_err(|e| format!("layer {}: --isa: {e}", self.op))?,
            ),
        };
        let mut options = OpOptions::with_max_isa(max_isa);
        let named = |e: String| format!("layer {}: {e}", self.op);
        if let Some(v) = self.get("--algorithm") {
            options.algorithm = super::parse_algorithm(v).map_err(named)?;
        }
        if let Some(v) = self.get("--accuracy") {
            options.accuracy = super::parse_accuracy(v).map_err(named)?;
        }
        Ok(options)
    }

    fn layout(&self) -> Result<WeightLayout, String> {
        match self.get("--layout").unwrap_or("ohwi") {
            "ohwi" | "OHWI" => Ok(WeightLayout::Ohwi),
            "oihw" | "OIHW" => Ok(WeightLayout::Oihw),
            "hwio" | "HWIO" => Ok(WeightLayout::Hwio),
            other => Err(format!(
                "layer {}: --layout must be ohwi, oihw or hwio, got '{other}'",
                self.op
            )),
        }
    }

    /// Runs `f` with the parallelism `--threads` asks for (all cores by default).
    fn with_threads<R>(&self, f: impl FnOnce(Parallelism<'_>) -> R) -> Result<R, String> {
        match self.number("--threads", 0, 1)? {
            0 => Ok(f(Parallelism::Global)),
            1 => Ok(f(Parallelism::Sequential)),
            threads => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| format!("layer {}: {threads} threads: {e}", self.op))?;
                Ok(f(Parallelism::Pool(&pool)))
            }
        }
    }
}

/// An NHWC input read from `--input`.
struct Input {
    file: String,
    shape: Nhwc,
    data: Vec<f32>,
}

fn read_input(flags: &Flags) -> Result<Input, String> {
    let file = flags.required("--input")?.to_string();
    let array = npy::read(Path::new(&file))?;
    let &[n, h, w, c] = array.shape.as_slice() else {
        return Err(format!(
            "{file}: the input must be 4-D NHWC (n, h, w, c), got shape {}",
            shape_str(&array.shape)
        ));
    };
    if array.shape.contains(&0) {
        return Err(format!(
            "{file}: input shape {} has a zero dimension",
            shape_str(&array.shape)
        ));
    }
    Ok(Input {
        file,
        shape: Nhwc::new(n, h, w, c),
        data: array.data,
    })
}

/// Convolution weights converted to OHWI, with their shape and file.
struct Weights {
    file: String,
    shape: WeightShape,
    ohwi: Vec<f32>,
}

impl Weights {
    fn read(file: &str, layout: WeightLayout) -> Result<Weights, String> {
        let array = npy::read(Path::new(file))?;
        let (name, dims) = match layout {
            WeightLayout::Ohwi => ("OHWI", "(out, kh, kw, in)"),
            WeightLayout::Oihw => ("OIHW", "(out, in, kh, kw)"),
            WeightLayout::Hwio => ("HWIO", "(kh, kw, in, out)"),
        };
        let &[a, b, c, d] = array.shape.as_slice() else {
            return Err(format!(
                "{file}: weights must be 4-D, {name} {dims}, got shape {}",
                shape_str(&array.shape)
            ));
        };
        let (out_channels, kh, kw, in_channels) = match layout {
            WeightLayout::Ohwi => (a, b, c, d),
            WeightLayout::Oihw => (a, c, d, b),
            WeightLayout::Hwio => (d, a, b, c),
        };
        if array.shape.contains(&0) {
            return Err(format!(
                "{file}: weight shape {} has a zero dimension",
                shape_str(&array.shape)
            ));
        }
        let shape = WeightShape {
            out_channels,
            kh,
            kw,
            in_channels,
        };
        let ohwi = match layout {
            WeightLayout::Ohwi => array.data,
            _ => to_ohwi(&array.data, layout, shape).map_err(|e| format!("{file}: {e}"))?,
        };
        Ok(Weights {
            file: file.to_string(),
            shape,
            ohwi,
        })
    }

    /// The kernel side of square weights, or an error naming `what` needs them square.
    fn square_kernel(&self, what: &str) -> Result<usize, String> {
        let WeightShape { kh, kw, .. } = self.shape;
        if kh != kw {
            return Err(format!(
                "{}: {what} needs a square (KxK) kernel, got {kh}x{kw}",
                self.file
            ));
        }
        Ok(kh)
    }

    /// Checks that these weights read `channels` channels, produced by `source`.
    fn expect_in(&self, channels: usize, source: &str) -> Result<(), String> {
        if self.shape.in_channels != channels {
            return Err(format!(
                "{}: the weights have {} input channels but {source} has {channels}",
                self.file, self.shape.in_channels
            ));
        }
        Ok(())
    }

    fn expect_kernel(&self, kernel: usize, what: &str) -> Result<(), String> {
        let WeightShape { kh, kw, .. } = self.shape;
        if (kh, kw) != (kernel, kernel) {
            return Err(format!(
                "{}: {what} must be {kernel}x{kernel}, got a {kh}x{kw} kernel",
                self.file
            ));
        }
        Ok(())
    }

    /// The bias in `file` (1-D, one per output channel), if given.
    fn bias(&self, file: Option<&str>) -> Result<Option<Vec<f32>>, String> {
        let Some(file) = file else {
            return Ok(None);
        };
        let array = npy::read(Path::new(file))?;
        if array.shape != [self.shape.out_channels] {
            return Err(format!(
                "{file}: bias shape {} does not match the {} output channels of {} (expected ({},))",
                shape_str(&array.shape),
                self.shape.out_channels,
                self.file,
                self.shape.out_channels
            ));
        }
        Ok(Some(array.data))
    }
}

fn epilogue(flags: &Flags) -> Epilogue {
    if flags.switch("--relu") {
        Epilogue::Relu
    } else {
        Epilogue::None
    }
}

fn lib_err(op: &str) -> impl Fn(incept::Error) -> String + '_ {
    move |e| format!("layer {op}: {e}")
}

/// Writes the result and reports it on stdout.
fn write_output(flags: &Flags, shape: Nhwc, data: &[f32], what: &str) -> Result<(), String> {
    let file = flags.required("--output")?;
    let dims = [shape.n, shape.h, shape.w, shape.c];
    npy::write(Path::new(file), &dims, data)?;
    outln!("{file}: {} float32 ({what})", shape_str(&dims));
    Ok(())
}

/// Runs `f` on views of `input` and a new output of `out_shape`, returns the output.
fn compute(
    flags: &Flags,
    input: &Input,
    out_shape: Nhwc,
    f: impl FnOnce(&TensorView<'_>, &mut TensorViewMut<'_>, Parallelism<'_>) -> incept::Result<()>,
) -> Result<Vec<f32>, String> {
    let err = lib_err(flags.op);
    let mut out = vec![0.0; out_shape.element_count().map_err(&err)?];
    let x = TensorView::new(&input.data, input.shape).map_err(&err)?;
    let mut y = TensorViewMut::new(&mut out, out_shape).map_err(&err)?;
    flags
        .with_threads(|par| f(&x, &mut y, par))?
        .map_err(&err)?;
    Ok(out)
}

fn conv(flags: &Flags) -> Result<(), String> {
    let err = lib_err("conv");
    flags.require_all(&["--input", "--weights", "--output"])?;
    let options = flags.options()?;
    let layout = flags.layout()?;
    let stride = flags.pair("--stride", 1, 1)?;
    let pad = flags.pair("--pad", 0, 0)?;
    let epilogue = epilogue(flags);
    flags.number("--threads", 0, 1)?;
    let input = read_input(flags)?;
    let weights = Weights::read(flags.required("--weights")?, layout)?;
    weights.expect_in(input.shape.c, &input.file)?;
    let bias = weights.bias(flags.get("--bias"))?;
    let (kernel, cout) = (
        [weights.shape.kh, weights.shape.kw],
        weights.shape.out_channels,
    );
    // A forced Winograd goes to Conv2d, which refuses a 1x1 with a clear message.
    let pointwise = kernel == [1, 1] && stride == [1, 1] && pad == [0, 0];
    let (out_shape, out, isa, winograd) =
        if pointwise && options.algorithm != ConvAlgorithm::Winograd {
            let op = Conv1x1::with_options(
                input.shape.c,
                cout,
                &weights.ohwi,
                bias.as_deref(),
                epilogue,
                options,
            )
            .map_err(&err)?;
            let out_shape = Nhwc {
                c: cout,
                ..input.shape
            };
            let out = compute(flags, &input, out_shape, |x, y, par| op.run(x, y, par))?;
            (out_shape, out, op.isa(), false)
        } else {
            let desc = Conv2dDesc {
                in_channels: input.shape.c,
                out_channels: cout,
                kernel,
                stride,
                padding: padding_of(pad),
                epilogue,
            };
            let op = Conv2d::with_options(&desc, &weights.ohwi, bias.as_deref(), options)
                .map_err(&err)?;
            let out_shape = op.output_shape(input.shape).map_err(&err)?;
            let out = compute(flags, &input, out_shape, |x, y, par| op.run(x, y, par))?;
            let winograd = op.algorithm() == ConvAlgorithm::Winograd;
            (out_shape, out, op.isa(), winograd)
        };
    let algorithm = if winograd { " (Winograd)" } else { "" };
    let relu = if epilogue == Epilogue::Relu {
        " + ReLU"
    } else {
        ""
    };
    write_output(
        flags,
        out_shape,
        &out,
        &format!(
            "conv {}x{} stride {} pad {}{relu}{algorithm} on {isa}",
            kernel[0],
            kernel[1],
            axes(stride),
            axes(pad)
        ),
    )
}

/// `[rows, cols]` padding: `rows` above and below, `cols` left and right.
fn padding_of([rows, cols]: [usize; 2]) -> Padding {
    Padding {
        top: rows,
        left: cols,
        bottom: rows,
        right: cols,
    }
}

/// `a` if both axes agree, else `a,b` (as the flags take them).
fn axes([a, b]: [usize; 2]) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a},{b}")
    }
}

fn pool(flags: &Flags) -> Result<(), String> {
    let err = lib_err("pool");
    flags.require_all(&["--input", "--kernel", "--output"])?;
    let options = flags.options()?;
    let kernel = flags.pair("--kernel", 0, 1)?;
    let stride = flags.pair("--stride", 1, 1)?;
    let pad = flags.pair("--pad", 0, 0)?;
    flags.number("--threads", 0, 1)?;
    let input = read_input(flags)?;
    let desc = MaxPool2dDesc {
        kernel,
        stride,
        padding: padding_of(pad),
    };
    let op = MaxPool2d::with_options(&desc, options).map_err(&err)?;
    let out_shape = op.output_shape(input.shape).map_err(&err)?;
    let out = compute(flags, &input, out_shape, |x, y, par| op.run(x, y, par))?;
    write_output(
        flags,
        out_shape,
        &out,
        &format!(
            "max-pool {}x{} stride {} pad {} on {}",
            kernel[0],
            kernel[1],
            axes(stride),
            axes(pad),
            op.isa()
        ),
    )
}

fn bottleneck(flags: &Flags) -> Result<(), String> {
    let err = lib_err("bottleneck");
    flags.require_all(&["--input", "--reduce", "--weights", "--output"])?;
    let options = flags.options()?;
    let layout = flags.layout()?;
    let stride = flags.number("--stride", 1, 1)?;
    let pad = flags.number("--pad", 0, 0)?;
    let epilogue = epilogue(flags);
    flags.number("--threads", 0, 1)?;
    let input = read_input(flags)?;
    let reduce = Weights::read(flags.required("--reduce")?, layout)?;
    reduce.expect_kernel(1, "the reduction (--reduce)")?;
    reduce.expect_in(input.shape.c, &input.file)?;
    let conv = Weights::read(flags.required("--weights")?, layout)?;
    conv.expect_in(
        reduce.shape.out_channels,
        &format!("the reduction {}", reduce.file),
    )?;
    let reduce_bias = reduce.bias(flags.get("--reduce-bias"))?;
    let conv_bias = conv.bias(flags.get("--bias"))?;
    let k = conv.square_kernel("the bottleneck's convolution (--weights)")?;
    let desc = BottleneckDesc {
        in_channels: input.shape.c,
        reduce_channels: reduce.shape.out_channels,
        out_channels: conv.shape.out_channels,
        kernel: k,
        stride,
        padding: Padding::uniform(pad),
        reduce_epilogue: epilogue,
        epilogue,
    };
    let wts = BottleneckWeights {
        reduce: &reduce.ohwi,
        reduce_bias: reduce_bias.as_deref(),
        conv: &conv.ohwi,
        conv_bias: conv_bias.as_deref(),
    };
    let op = Bottleneck::with_options(&desc, &wts, options).map_err(&err)?;
    let out_shape = op.output_shape(input.shape).map_err(&err)?;
    let out = compute(flags, &input, out_shape, |x, y, par| op.run(x, y, par))?;
    write_output(
        flags,
        out_shape,
        &out,
        &format!(
            "bottleneck 1x1 {} -> {} then {k}x{k} -> {} stride {stride} pad {pad} on {}",
            desc.in_channels,
            desc.reduce_channels,
            desc.out_channels,
            op.isa()
        ),
    )
}

/// The weight files of an Inception module, in `--dir`.
const INCEPTION_FILES: [&str; 6] = [
    "conv1x1",
    "reduce3x3",
    "conv3x3",
    "reduce5x5",
    "conv5x5",
    "pool_proj",
];

/// One convolution of a module: its weights and optional bias.
type ModuleConv = (Weights, Option<Vec<f32>>);

fn params((w, b): &ModuleConv) -> ConvParams<'_> {
    ConvParams {
        weights: &w.ohwi,
        bias: b.as_deref(),
    }
}

/// One convolution of the module: weights and optional bias from `DIR/NAME.npy` and
/// `DIR/NAME_bias.npy`; `None` if the weights file is absent.
fn module_conv(dir: &Path, name: &str, layout: WeightLayout) -> Result<Option<ModuleConv>, String> {
    let path = |file: String| -> Result<Option<String>, String> {
        let p: PathBuf = dir.join(file);
        if !p.exists() {
            return Ok(None);
        }
        p.to_str()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| format!("{}: the path is not valid UTF-8", p.display()))
    };
    let weights = path(format!("{name}.npy"))?;
    let bias = path(format!("{name}_bias.npy"))?;
    match (weights, bias) {
        (Some(w), bias) => {
            let w = Weights::read(&w, layout)?;
            let b = w.bias(bias.as_deref())?;
            Ok(Some((w, b)))
        }
        (None, None) => Ok(None),
        (None, Some(b)) => Err(format!(
            "{b}: a bias without its weights {name}.npy in {}",
            dir.display()
        )),
    }
}

fn inception(flags: &Flags) -> Result<(), String> {
    let err = lib_err("inception");
    flags.require_all(&["--input", "--dir", "--output"])?;
    let options = flags.options()?;
    let layout = flags.layout()?;
    flags.number("--threads", 0, 1)?;
    let input = read_input(flags)?;
    let dir = Path::new(flags.required("--dir")?);
    if !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    warn_unknown_files(dir);
    let mut convs = Vec::new();
    for name in INCEPTION_FILES {
        convs.push(module_conv(dir, name, layout)?);
    }
    let [conv1, reduce3, conv3, reduce5, conv5, proj]: [_; 6] =
        convs.try_into().map_err(|_| "internal".to_string())?;
    let required = |c: Option<_>, name: &str| {
        c.ok_or_else(|| format!("{}: {name}.npy is required", dir.display()))
    };
    let conv1 = required(conv1, "conv1x1")?;
    let conv3 = required(conv3, "conv3x3")?;
    let conv5 = required(conv5, "conv5x5")?;
    let cin = input.shape.c;
    for (c, what) in [
        (Some(&conv1), "the 1x1 branch"),
        (reduce3.as_ref(), "the 3x3 reduction"),
        (reduce5.as_ref(), "the 5x5 reduction"),
        (proj.as_ref(), "the pool projection"),
    ] {
        if let Some((w, _)) = c {
            w.expect_kernel(1, what)?;
            w.expect_in(cin, &input.file)?;
        }
    }
    for (reduce, conv, k) in [(&reduce3, &conv3, 3), (&reduce5, &conv5, 5)] {
        let what = format!("the {k}x{k} branch");
        conv.0.expect_kernel(k, &what)?;
        match reduce {
            Some((r, _)) => conv
                .0
                .expect_in(r.shape.out_channels, &format!("the reduction {}", r.file))?,
            None => conv.0.expect_in(cin, &input.file)?,
        }
    }
    let out = |c: &Option<ModuleConv>| c.as_ref().map(|(w, _)| w.shape.out_channels);
    let config = InceptionConfig {
        in_channels: cin,
        c1x1: conv1.0.shape.out_channels,
        c3x3_reduce: out(&reduce3),
        c3x3: conv3.0.shape.out_channels,
        c5x5_reduce: out(&reduce5),
        c5x5: conv5.0.shape.out_channels,
        pool_proj: out(&proj),
    };
    let weights = InceptionWeights {
        conv1x1: params(&conv1),
        reduce3x3: reduce3.as_ref().map(params),
        conv3x3: params(&conv3),
        reduce5x5: reduce5.as_ref().map(params),
        conv5x5: params(&conv5),
        pool_proj: proj.as_ref().map(params),
    };
    let op = Inception::with_options(&config, &weights, options).map_err(&err)?;
    let out_shape = op.output_shape(input.shape);
    let out = compute(flags, &input, out_shape, |x, y, par| op.run(x, y, par))?;
    let opt = |c: Option<usize>| c.map_or("-".to_string(), |c| c.to_string());
    write_output(
        flags,
        out_shape,
        &out,
        &format!(
            "inception: 1x1 {}, 3x3 {}->{}, 5x5 {}->{}, pool proj {} on {}",
            config.c1x1,
            opt(config.c3x3_reduce),
            config.c3x3,
            opt(config.c5x5_reduce),
            config.c5x5,
            opt(config.pool_proj),
            op.isa()
        ),
    )
}

/// Warns about `.npy` files in `dir` that are none of the module's names (a typo would
/// otherwise silently drop a bias or a reduction).
fn warn_unknown_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".npy")) else {
            continue;
        };
        let base = stem.strip_suffix("_bias").unwrap_or(stem);
        if !INCEPTION_FILES.contains(&base) {
            eprintln!(
                "incept: warning: {} is not one of the module's files ({}, each with an optional _bias); ignored",
                entry.path().display(),
                INCEPTION_FILES.join(", ")
            );
        }
    }
}
