//! The `incept` command, run as a user runs it: argument errors (exit code 2, a message on
//! stderr), `incept layer` on `.npy` files checked against the reference, `.npy` and shape
//! errors, `bench --json`, `cost` and `info`.
//!
//! `.npy` files are written and read here with a writer and reader of the test's own, so the
//! format is checked against a second implementation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use incept::reference::{self, Clamp, Layout, Window};
use incept::{inception_reference, isa, ConvParams, InceptionConfig, InceptionWeights, Nhwc};

// ---------------------------------------------------------------------------------------------
// Running the binary

/// `incept` as a command. A cross-compiled test (CI's aarch64 suite under qemu-aarch64) cannot
/// exec the binary directly, so it goes through the runner cargo was given
/// (`CARGO_TARGET_<TRIPLE>_RUNNER`, inherited from cargo's environment), as cargo itself does.
fn command() -> Command {
    let exe = env!("CARGO_BIN_EXE_incept");
    match runner() {
        Some(runner) => {
            let mut parts = runner.split_whitespace();
            let mut cmd = Command::new(parts.next().unwrap_or_default());
            cmd.args(parts).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// The runner of a cross-compiled test run (e.g. `qemu-aarch64 -L ...`), if any.
fn runner() -> Option<String> {
    let prefix = format!("CARGO_TARGET_{}_", std::env::consts::ARCH.to_uppercase());
    std::env::vars()
        .find(|(k, v)| k.starts_with(&prefix) && k.ends_with("_RUNNER") && !v.trim().is_empty())
        .map(|(_, v)| v)
}

fn run(args: &[&str]) -> Output {
    command()
        .args(args)
        .env_remove("INCEPT_MAX_ISA")
        .output()
        .unwrap_or_else(|e| panic!("cannot run incept {args:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `incept ARGS`, expects success, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "incept {args:?} failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `incept ARGS`, expects exit code 2 and every one of `needles` on stderr.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let out = run(args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "incept {args:?}: expected exit code 2, got {}; stderr:\n{stderr}",
        out.status
    );
    assert!(stderr.starts_with("incept: "), "incept {args:?}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "incept {args:?}: stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stderr
}

/// A fresh, empty scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// A tiny .npy writer and reader of the test's own

fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn save(path: &Path, shape: &[usize], data: &[f32]) {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    std::fs::write(path, npy_bytes("<f4", false, shape, &f32_bytes(data))).unwrap();
}

/// Reads a `.npy` file written by incept: checks the magic, the header's fields, the 64-byte
/// alignment and the data length.
fn load(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "data must start 64-byte aligned");
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.ends_with('\n'), "{header:?}");
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let tuple = header.split("'shape': (").nth(1).unwrap();
    let tuple = &tuple[..tuple.find(')').unwrap()];
    let shape: Vec<usize> = tuple
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(bytes.len() - 10 - len, 4 * data.len());
    assert_eq!(shape.iter().product::<usize>(), data.len(), "{header}");
    (shape, data)
}

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// OHWI `[o][kh][kw][i]` weights and their shape in `layout`.
fn to_layout(
    ohwi: &[f32],
    (o, k, i): (usize, usize, usize),
    layout: &str,
) -> (Vec<usize>, Vec<f32>) {
    let mut out = vec![0.0; ohwi.len()];
    for oc in 0..o {
        for y in 0..k {
            for x in 0..k {
                for ic in 0..i {
                    let dst = match layout {
                        "ohwi" => ((oc * k + y) * k + x) * i + ic,
                        "oihw" => ((oc * i + ic) * k + y) * k + x,
                        "hwio" => ((y * k + x) * i + ic) * o + oc,
                        _ => unreachable!(),
                    };
                    out[dst] = ohwi[((oc * k + y) * k + x) * i + ic];
                }
            }
        }
    }
    let shape = match layout {
        "ohwi" => vec![o, k, k, i],
        "oihw" => vec![o, i, k, k],
        _ => vec![k, k, i, o],
    };
    (shape, out)
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{what}: element {i}: got {g}, reference {w}"
        );
    }
}

const NONE: Clamp = Clamp {
    min: f32::NEG_INFINITY,
    max: f32::INFINITY,
};
const RELU: Clamp = Clamp {
    min: 0.0,
    max: f32::INFINITY,
};

/// The reference convolution of a dense NHWC input; returns (output shape, output).
fn ref_conv(
    x: &[f32],
    xs: Nhwc,
    w: &[f32],
    b: Option<&[f32]>,
    (cout, k, stride, pad): (usize, usize, usize, usize),
    clamp: Clamp,
) -> (Nhwc, Vec<f32>) {
    ref_conv_window(x, xs, w, b, cout, &Window::square(k, stride, pad), clamp)
}

fn ref_conv_window(
    x: &[f32],
    xs: Nhwc,
    w: &[f32],
    b: Option<&[f32]>,
    cout: usize,
    window: &Window,
    clamp: Clamp,
) -> (Nhwc, Vec<f32>) {
    let (oh, ow) = window.output_size(xs.h, xs.w);
    let os = Nhwc::new(xs.n, oh, ow, cout);
    let mut y = vec![0.0; os.element_count().unwrap()];
    reference::conv2d(
        x,
        &Layout::dense(xs.n, xs.h, xs.w, xs.c),
        w,
        b,
        window,
        clamp,
        &mut y,
        &Layout::dense(os.n, os.h, os.w, os.c),
    );
    (os, y)
}

fn dims(s: Nhwc) -> Vec<usize> {
    vec![s.n, s.h, s.w, s.c]
}

// ---------------------------------------------------------------------------------------------
// Argument errors

#[test]
fn argument_errors_exit_2_with_a_message() {
    fails(&["frobnicate"], &["unknown command 'frobnicate'", "usage:"]);
    fails(&["info", "extra"], &["unexpected argument 'extra'"]);
    fails(&["cost", "--json"], &["unknown flag '--json'"]);
    fails(&["cost", "--c", "0"], &["--c must be a positive integer"]);
    fails(&["bench", "--frobnicate"], &["unknown flag '--frobnicate'"]);
    fails(
        &["bench", "--workload", "conv7x7"],
        &["unknown workload 'conv7x7'", "conv1x1"],
    );
    fails(
        &["bench", "--workload", "inception-6a"],
        &[
            "unknown workload 'inception-6a'",
            "inception-3a ... inception-5b",
        ],
    );
    fails(&["bench", "--workload"], &["--workload needs a value"]);
    fails(
        &["bench", "--batch", "0"],
        &["--batch must be a positive integer, got '0'"],
    );
    fails(
        &["bench", "--threads", "two"],
        &["--threads must be a positive integer, got 'two'"],
    );
    fails(
        &["bench", "--seconds", "-1"],
        &["--seconds must be a positive number, got '-1'"],
    );
    fails(&["bench", "--isa", "foo"], &["unknown ISA 'foo'"]);
    fails(&["bench", "--conv", "28,28,192"], &["--conv expects"]);
    fails(
        &["bench", "--algorithm", "fft"],
        &["--algorithm must be auto, direct or winograd, got 'fft'"],
    );
    fails(
        &["bench", "--accuracy", "loose"],
        &["--accuracy must be exact or relaxed, got 'loose'"],
    );
    fails(
        &["bench", "--pool-schedule", "fused"],
        &["--pool-schedule must be auto, separate or interleaved, got 'fused'"],
    );
    fails(
        &[
            "bench",
            "--workload",
            "pool-proj",
            "--isa",
            "scalar",
            "--pool-schedule",
            "interleaved",
        ],
        &["the interleaved pool schedule needs AVX-512"],
    );
    fails(
        &["bench", "--conv", "14,14,8,8,7", "--algorithm", "winograd"],
        &["Winograd needs a 3x3 or 5x5 kernel with stride 1, got kernel 7"],
    );
    fails(
        &[
            "layer",
            "conv",
            "--input",
            "x.npy",
            "--weights",
            "w.npy",
            "--output",
            "y.npy",
            "--algorithm",
            "fft",
        ],
        &["layer conv: --algorithm must be auto, direct or winograd, got 'fft'"],
    );
    fails(
        &[
            "layer",
            "inception",
            "--input",
            "x.npy",
            "--dir",
            "d",
            "--output",
            "y.npy",
            "--accuracy",
            "loose",
        ],
        &["layer inception: --accuracy must be exact or relaxed, got 'loose'"],
    );
    // An ISA this CPU lacks is an error, never SIGILL.
    if let Some(missing) = incept::isa::ALL_ISAS
        .iter()
        .find(|i| !isa::available().contains(i))
    {
        fails(
            &["bench", "--isa", missing.name(), "--seconds", "0.01"],
            &["not supported by this CPU"],
        );
    }

    fails(&["layer"], &["missing operator", "incept layer OPERATOR"]);
    fails(&["layer", "frob"], &["unknown operator 'frob'"]);
    fails(
        &["layer", "conv", "--weights"],
        &["--weights needs a value"],
    );
    fails(
        &["layer", "conv", "--bogus", "1"],
        &["layer conv: unknown flag '--bogus'", "--weights"],
    );
    fails(
        &["layer", "conv", "stray"],
        &["unexpected argument 'stray'"],
    );
    fails(
        &["layer", "pool", "--kernel", "3", "--kernel", "3"],
        &["--kernel given twice"],
    );
    fails(
        &["layer", "pool", "--input", "x.npy", "--output", "y.npy"],
        &["--kernel is required"],
    );
    // Flag values are checked before any file is read.
    let io = ["--input", "x.npy", "--output", "y.npy"];
    let layer = |args: &[&str], needles: &[&str]| {
        let mut all = vec!["layer"];
        all.extend(args);
        all.extend(io);
        fails(&all, needles)
    };
    layer(
        &["pool", "--kernel", "0"],
        &["--kernel must be an integer >= 1 or two (ROWS,COLS), got '0'"],
    );
    layer(
        &["pool", "--kernel", "3", "--stride", "x"],
        &["--stride must be an integer >= 1 or two (ROWS,COLS), got 'x'"],
    );
    layer(
        &["pool", "--kernel", "3,0"],
        &["--kernel must be an integer >= 1 or two (ROWS,COLS), got '3,0'"],
    );
    layer(
        &["pool", "--kernel", "3", "--threads", "0"],
        &["--threads must be an integer >= 1, got '0'"],
    );
    layer(
        &["conv", "--weights", "w.npy", "--isa", "foo"],
        &["unknown ISA 'foo'"],
    );
    layer(
        &["conv", "--weights", "w.npy", "--layout", "nchw"],
        &["--layout must be ohwi, oihw or hwio, got 'nchw'"],
    );
    layer(
        &["conv", "--weights", "w.npy", "--pad", "-1"],
        &["--pad must be an integer >= 0 or two (ROWS,COLS), got '-1'"],
    );
    layer(
        &["bottleneck", "--weights", "w.npy"],
        &["--reduce is required"],
    );
    fails(
        &["layer", "inception", "--dir", "d"],
        &["--input is required"],
    );

    // Help goes to stdout with exit code 0.
    assert!(ok(&["help"]).contains("layer OP"));
    let help = ok(&["layer", "--help"]);
    for name in [
        "conv1x1.npy",
        "reduce3x3.npy",
        "pool_proj.npy",
        "conv3x3_bias.npy",
    ] {
        assert!(help.contains(name), "layer --help lacks {name}");
    }
    assert_eq!(ok(&["layer", "conv", "--help"]), help);
}

// ---------------------------------------------------------------------------------------------
// `incept layer` against the reference

#[test]
fn layer_conv_matches_the_reference_in_every_layout() {
    let dir = scratch("conv");
    let xs = Nhwc::new(2, 7, 6, 5);
    let x = values(xs.element_count().unwrap(), 1);
    let xp = dir.join("x.npy");
    save(&xp, &dims(xs), &x);
    let yp = dir.join("y.npy");
    // (cout, k, stride, pad, relu, bias, layout, extra flags)
    type Case = (
        usize,
        usize,
        usize,
        usize,
        bool,
        bool,
        &'static str,
        &'static [&'static str],
    );
    let cases: [Case; 9] = [
        (9, 3, 1, 1, true, true, "ohwi", &[]),
        (9, 3, 1, 1, true, true, "ohwi", &["--algorithm", "winograd"]),
        (
            4,
            5,
            1,
            2,
            false,
            true,
            "oihw",
            &["--algorithm", "winograd"],
        ),
        (16, 3, 1, 1, true, true, "hwio", &["--accuracy", "relaxed"]),
        (9, 3, 2, 1, false, true, "oihw", &["--threads", "1"]),
        (4, 5, 1, 2, true, false, "hwio", &["--threads", "2"]),
        (3, 2, 2, 0, false, true, "oihw", &[]),
        (11, 1, 1, 0, true, true, "hwio", &[]),  // Conv1x1
        (6, 1, 2, 0, false, false, "ohwi", &[]), // 1x1 at stride 2: Conv2d
    ];
    for (i, &(cout, k, stride, pad, relu, with_bias, layout, extra)) in cases.iter().enumerate() {
        let w = values(cout * k * k * xs.c, 10 + i as u64);
        let b = values(cout, 20 + i as u64);
        let (wshape, wdata) = to_layout(&w, (cout, k, xs.c), layout);
        let wp = dir.join(format!("w{i}.npy"));
        save(&wp, &wshape, &wdata);
        let bp = dir.join(format!("b{i}.npy"));
        save(&bp, &[cout], &b);
        let (stride_s, pad_s) = (stride.to_string(), pad.to_string());
        let mut args = vec![
            "layer",
            "conv",
            "--input",
            s(&xp),
            "--weights",
            s(&wp),
            "--layout",
            layout,
            "--stride",
            stride_s.as_str(),
            "--pad",
            pad_s.as_str(),
            "--output",
            s(&yp),
        ];
        if with_bias {
            args.extend(["--bias", s(&bp)]);
        }
        if relu {
            args.push("--relu");
        }
        args.extend(extra);
        let stdout = ok(&args);
        assert!(stdout.contains(&format!("conv {k}x{k}")), "{stdout}");
        // Relaxed picks Winograd only with >= 16 channels each way: not for 5 input channels.
        let winograd = extra.contains(&"winograd");
        assert_eq!(stdout.contains("(Winograd)"), winograd, "{stdout}");
        let (os, want) = ref_conv(
            &x,
            xs,
            &w,
            with_bias.then_some(&b[..]),
            (cout, k, stride, pad),
            if relu { RELU } else { NONE },
        );
        let (shape, got) = load(&yp);
        assert_eq!(shape, dims(os), "case {i}");
        assert_close(&format!("conv case {i}"), &got, &want);
    }

    // A 1x3 kernel (OIHW, as PyTorch saves it) moving 2 rows and 1 column, padded 1 column on
    // each side: ROWS,COLS for the stride and the padding.
    let (cout, kh, kw, c) = (5, 1, 3, xs.c);
    let w = values(cout * kh * kw * c, 40);
    let mut w_oihw = vec![0.0; w.len()];
    for o in 0..cout {
        for y in 0..kh {
            for xk in 0..kw {
                for i in 0..c {
                    w_oihw[((o * c + i) * kh + y) * kw + xk] = w[((o * kh + y) * kw + xk) * c + i];
                }
            }
        }
    }
    let wp = dir.join("w_rect.npy");
    save(&wp, &[cout, c, kh, kw], &w_oihw);
    let stdout = ok(&[
        "layer",
        "conv",
        "--input",
        s(&xp),
        "--weights",
        s(&wp),
        "--layout",
        "oihw",
        "--stride",
        "2,1",
        "--pad",
        "0,1",
        "--output",
        s(&yp),
    ]);
    assert!(stdout.contains("conv 1x3 stride 2,1 pad 0,1"), "{stdout}");
    let window = Window {
        kh,
        kw,
        stride_h: 2,
        stride_w: 1,
        pad_left: 1,
        pad_right: 1,
        ..Window::square(1, 1, 0)
    };
    let (os, want) = ref_conv_window(&x, xs, &w, None, cout, &window, NONE);
    let (shape, got) = load(&yp);
    assert_eq!(shape, dims(os));
    assert_close("1x3 conv", &got, &want);

    // Every ISA this CPU has, through --isa.
    let (cout, k) = (8, 3);
    let w = values(cout * k * k * xs.c, 30);
    let wp = dir.join("w.npy");
    save(&wp, &[cout, k, k, xs.c], &w);
    let (_, want) = ref_conv(&x, xs, &w, None, (cout, k, 1, 1), RELU);
    for &isa in isa::available() {
        let stdout = ok(&[
            "layer",
            "conv",
            "--input",
            s(&xp),
            "--weights",
            s(&wp),
            "--pad",
            "1",
            "--relu",
            "--isa",
            isa.name(),
            "--output",
            s(&yp),
        ]);
        assert!(stdout.contains(&format!("on {isa}")), "{stdout}");
        assert_close(&format!("conv on {isa}"), &load(&yp).1, &want);
    }
}

#[test]
fn layer_pool_matches_the_reference() {
    let dir = scratch("pool");
    let xs = Nhwc::new(2, 9, 8, 10);
    let x = values(xs.element_count().unwrap(), 2);
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    save(&xp, &dims(xs), &x);
    // Square windows as one number, rectangles as ROWS,COLS (the stride and padding too).
    let rect = Window {
        kh: 3,
        kw: 2,
        stride_h: 1,
        stride_w: 2,
        ..Window::square(1, 1, 0)
    };
    let same_1x3 = Window {
        kh: 1,
        kw: 3,
        pad_left: 1,
        pad_right: 1,
        ..Window::square(1, 1, 0)
    };
    let mut cases: Vec<(String, String, String, Window)> =
        [(3, 1, 1), (3, 2, 1), (2, 2, 0), (4, 3, 2), (1, 1, 0)]
            .into_iter()
            .map(|(k, stride, pad)| {
                (
                    k.to_string(),
                    stride.to_string(),
                    pad.to_string(),
                    Window::square(k, stride, pad),
                )
            })
            .collect();
    cases.push(("3,2".into(), "1,2".into(), "0".into(), rect));
    cases.push(("1,3".into(), "1".into(), "0,1".into(), same_1x3));
    for (kernel, stride, pad, window) in &cases {
        let out = ok(&[
            "layer",
            "pool",
            "--input",
            s(&xp),
            "--kernel",
            kernel,
            "--stride",
            stride,
            "--pad",
            pad,
            "--output",
            s(&yp),
        ]);
        let (oh, ow) = window.output_size(xs.h, xs.w);
        let os = Nhwc::new(xs.n, oh, ow, xs.c);
        let mut want = vec![0.0; os.element_count().unwrap()];
        reference::max_pool2d(
            &x,
            &Layout::dense(xs.n, xs.h, xs.w, xs.c),
            window,
            &mut want,
            &Layout::dense(os.n, os.h, os.w, os.c),
        );
        let (shape, got) = load(&yp);
        assert_eq!(shape, dims(os));
        assert_eq!(
            got, want,
            "max-pool {kernel} stride {stride} pad {pad} is exact"
        );
        let (kh, kw) = (window.kh, window.kw);
        assert!(
            out.contains(&format!("max-pool {kh}x{kw} stride {stride} pad {pad}")),
            "{out}"
        );
    }
    // The stride defaults to 1 and the padding to 0.
    ok(&[
        "layer",
        "pool",
        "--input",
        s(&xp),
        "--kernel",
        "3",
        "--output",
        s(&yp),
    ]);
    assert_eq!(load(&yp).0, [2, 7, 6, 10]);
}

#[test]
fn layer_bottleneck_matches_two_reference_layers() {
    let dir = scratch("bottleneck");
    let xs = Nhwc::new(1, 8, 9, 12);
    let x = values(xs.element_count().unwrap(), 3);
    let (r, cout, k) = (5, 7, 3);
    let (w1, b1) = (values(r * xs.c, 4), values(r, 5));
    let (w2, b2) = (values(cout * k * k * r, 6), values(cout, 7));
    let p = |name: &str| dir.join(name);
    save(&p("x.npy"), &dims(xs), &x);
    let (s1, d1) = to_layout(&w1, (r, 1, xs.c), "oihw");
    let (s2, d2) = to_layout(&w2, (cout, k, r), "oihw");
    save(&p("w1.npy"), &s1, &d1);
    save(&p("b1.npy"), &[r], &b1);
    save(&p("w2.npy"), &s2, &d2);
    save(&p("b2.npy"), &[cout], &b2);
    let (xp, w1p, w2p, yp) = (p("x.npy"), p("w1.npy"), p("w2.npy"), p("y.npy"));
    let (b1p, b2p) = (p("b1.npy"), p("b2.npy"));
    let base = [
        "layer",
        "bottleneck",
        "--input",
        s(&xp),
        "--reduce",
        s(&w1p),
        "--layout",
        "oihw",
        "--output",
        s(&yp),
    ];
    let mut args = base.to_vec();
    args.extend([
        "--weights",
        s(&w2p),
        "--reduce-bias",
        s(&b1p),
        "--bias",
        s(&b2p),
    ]);
    args.extend(["--pad", "1", "--relu"]);
    ok(&args);
    let (ms, mid) = ref_conv(&x, xs, &w1, Some(&b1), (r, 1, 1, 0), RELU);
    let (os, want) = ref_conv(&mid, ms, &w2, Some(&b2), (cout, k, 1, 1), RELU);
    let (shape, got) = load(&yp);
    assert_eq!(shape, dims(os));
    assert_close("bottleneck", &got, &want);
    // The bottleneck's convolution is square (a 3x5 OIHW kernel is refused, by name).
    let w35 = p("w35.npy");
    save(&w35, &[cout, r, 3, 5], &values(cout * r * 15, 9));
    let mut args = base.to_vec();
    args.extend(["--weights", s(&w35)]);
    fails(&args, &["w35.npy", "needs a square (KxK) kernel, got 3x5"]);
}

/// Writes a module's weights (OHWI in `layout`) into `dir` under the documented names; the
/// reductions and projection are written only when the config has them, biases when `bias`.
fn write_module(
    dir: &Path,
    cfg: &InceptionConfig,
    layout: &str,
    bias: bool,
) -> Vec<(Vec<f32>, Vec<f32>)> {
    let cin = cfg.in_channels;
    let convs = [
        ("conv1x1", Some(cfg.c1x1), 1, cin),
        ("reduce3x3", cfg.c3x3_reduce, 1, cin),
        ("conv3x3", Some(cfg.c3x3), 3, cfg.c3x3_reduce.unwrap_or(cin)),
        ("reduce5x5", cfg.c5x5_reduce, 1, cin),
        ("conv5x5", Some(cfg.c5x5), 5, cfg.c5x5_reduce.unwrap_or(cin)),
        ("pool_proj", cfg.pool_proj, 1, cin),
    ];
    let mut params = Vec::new();
    for (seed, (name, cout, k, ci)) in convs.into_iter().enumerate() {
        let cout = cout.unwrap_or(0);
        let w = values(cout * k * k * ci, 100 + seed as u64);
        let b = values(cout, 200 + seed as u64);
        if cout > 0 {
            let (shape, data) = to_layout(&w, (cout, k, ci), layout);
            save(&dir.join(format!("{name}.npy")), &shape, &data);
            if bias {
                save(&dir.join(format!("{name}_bias.npy")), &[cout], &b);
            }
        }
        params.push((w, b));
    }
    params
}

#[test]
fn layer_inception_matches_the_reference_module() {
    let root = scratch("inception");
    let xs = Nhwc::new(2, 6, 7, 8);
    let x = values(xs.element_count().unwrap(), 8);
    let (xp, yp) = (root.join("x.npy"), root.join("y.npy"));
    save(&xp, &dims(xs), &x);
    let full = InceptionConfig::googlenet(8, 4, 3, 5, 2, 3, 4);
    // No 5x5 reduction, no projection (the pooled input passes through), no biases.
    let partial = InceptionConfig {
        c5x5_reduce: None,
        pool_proj: None,
        ..full
    };
    for (name, cfg, layout, bias) in [
        ("full", full, "ohwi", true),
        ("partial", partial, "hwio", false),
    ] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let params = write_module(&dir, &cfg, layout, bias);
        let p = |i: usize| ConvParams {
            weights: &params[i].0,
            bias: bias.then_some(&params[i].1[..]),
        };
        let weights = InceptionWeights {
            conv1x1: p(0),
            reduce3x3: cfg.c3x3_reduce.map(|_| p(1)),
            conv3x3: p(2),
            reduce5x5: cfg.c5x5_reduce.map(|_| p(3)),
            conv5x5: p(4),
            pool_proj: cfg.pool_proj.map(|_| p(5)),
        };
        let want = inception_reference(&cfg, &weights, &x, xs).unwrap();
        for threads in ["1", "2"] {
            let stdout = ok(&[
                "layer",
                "inception",
                "--input",
                s(&xp),
                "--dir",
                s(&dir),
                "--layout",
                layout,
                "--threads",
                threads,
                "--output",
                s(&yp),
            ]);
            assert!(stdout.contains("inception"), "{stdout}");
            let (shape, got) = load(&yp);
            assert_eq!(shape, [2, 6, 7, cfg.out_channels()], "{name}");
            assert_close(&format!("inception {name}"), &got, &want);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File and shape errors

#[test]
fn npy_and_shape_errors_name_the_file_and_the_numbers() {
    let dir = scratch("errors");
    let p = |name: &str| dir.join(name);
    let xs = Nhwc::new(1, 5, 5, 4);
    let x = values(xs.element_count().unwrap(), 9);
    save(&p("x.npy"), &dims(xs), &x);
    save(&p("w.npy"), &[6, 3, 3, 4], &values(6 * 9 * 4, 10));
    let conv = |input: &Path, weights: &Path, extra: &[&str], needles: &[&str]| {
        let mut args = vec![
            "layer",
            "conv",
            "--input",
            s(input),
            "--weights",
            s(weights),
            "--output",
        ];
        let out = p("y.npy");
        args.push(s(&out));
        args.extend(extra);
        fails(&args, needles)
    };

    // Wrong dtype, Fortran order, bad magic, truncated and trailing data, a missing file.
    std::fs::write(
        p("f8.npy"),
        npy_bytes("<f8", false, &[1, 5, 5, 4], &[0; 800]),
    )
    .unwrap();
    conv(
        &p("f8.npy"),
        &p("w.npy"),
        &[],
        &["f8.npy", "'<f8' (float64)", "'<f4'"],
    );
    std::fs::write(p("be.npy"), npy_bytes(">f4", false, &[2], &[0; 8])).unwrap();
    conv(
        &p("x.npy"),
        &p("w.npy"),
        &["--bias", s(&p("be.npy"))],
        &["be.npy", "big-endian"],
    );
    std::fs::write(
        p("fortran.npy"),
        npy_bytes("<f4", true, &[1, 5, 5, 4], &f32_bytes(&x)),
    )
    .unwrap();
    conv(
        &p("fortran.npy"),
        &p("w.npy"),
        &[],
        &["fortran.npy", "fortran_order is True"],
    );
    std::fs::write(p("magic.npy"), b"PK\x03\x04 not numpy at all").unwrap();
    conv(
        &p("magic.npy"),
        &p("w.npy"),
        &[],
        &["magic.npy", "bad magic"],
    );
    std::fs::write(
        p("short.npy"),
        npy_bytes("<f4", false, &[1, 5, 5, 4], &[0; 50]),
    )
    .unwrap();
    conv(
        &p("short.npy"),
        &p("w.npy"),
        &[],
        &[
            "short.npy",
            "truncated data",
            "(1, 5, 5, 4)",
            "needs 400 bytes",
            "has 50",
        ],
    );
    std::fs::write(
        p("long.npy"),
        npy_bytes("<f4", false, &[1, 5, 5, 4], &[0; 404]),
    )
    .unwrap();
    conv(
        &p("long.npy"),
        &p("w.npy"),
        &[],
        &["long.npy", "trailing data", "has 404"],
    );
    conv(
        &p("absent.npy"),
        &p("w.npy"),
        &[],
        &["absent.npy", "cannot read"],
    );

    // Shapes: a 3-D input, input channels, a bias, a non-square or non-4-D kernel.
    save(&p("x3.npy"), &[5, 5, 4], &x);
    conv(
        &p("x3.npy"),
        &p("w.npy"),
        &[],
        &["x3.npy", "4-D NHWC", "(5, 5, 4)"],
    );
    save(&p("w5.npy"), &[6, 3, 3, 5], &values(6 * 9 * 5, 11));
    conv(
        &p("x.npy"),
        &p("w5.npy"),
        &[],
        &["w5.npy", "5 input channels", "x.npy", "has 4"],
    );
    // As OIHW the same file is a 3x5 kernel over 3 input channels.
    conv(
        &p("x.npy"),
        &p("w5.npy"),
        &["--layout", "oihw"],
        &["w5.npy", "3 input channels", "x.npy", "has 4"],
    );
    save(&p("b7.npy"), &[7], &values(7, 12));
    conv(
        &p("x.npy"),
        &p("w.npy"),
        &["--bias", s(&p("b7.npy"))],
        &["b7.npy", "bias shape (7,)", "6 output channels", "w.npy"],
    );
    save(&p("w2d.npy"), &[6, 4], &values(24, 13));
    conv(
        &p("x.npy"),
        &p("w2d.npy"),
        &[],
        &["w2d.npy", "4-D", "(6, 4)"],
    );
    // The library's own errors come through too: a kernel larger than the padded input.
    save(&p("w7.npy"), &[2, 7, 7, 4], &values(2 * 49 * 4, 14));
    conv(
        &p("x.npy"),
        &p("w7.npy"),
        &[],
        &["layer conv:", "kernel 7", "5x5"],
    );
    // An output that cannot be written.
    fails(
        &[
            "layer",
            "pool",
            "--input",
            s(&p("x.npy")),
            "--kernel",
            "2",
            "--output",
            s(&p("no/such/dir/y.npy")),
        ],
        &["no/such/dir/y.npy", "cannot write"],
    );

    // Inception: a missing file, a wrong kernel, channels that do not chain, a stray bias.
    let module = p("module");
    std::fs::create_dir_all(&module).unwrap();
    let inception = |needles: &[&str]| {
        fails(
            &[
                "layer",
                "inception",
                "--input",
                s(&p("x.npy")),
                "--dir",
                s(&module),
                "--output",
                s(&p("y.npy")),
            ],
            needles,
        )
    };
    save(&module.join("conv1x1.npy"), &[3, 1, 1, 4], &values(12, 15));
    save(&module.join("conv5x5.npy"), &[2, 5, 5, 4], &values(200, 16));
    inception(&["conv3x3.npy is required"]);
    save(&module.join("conv3x3.npy"), &[2, 5, 5, 4], &values(200, 17));
    inception(&["conv3x3.npy", "must be 3x3", "5x5"]);
    save(
        &module.join("reduce3x3.npy"),
        &[3, 1, 1, 4],
        &values(12, 18),
    );
    save(&module.join("conv3x3.npy"), &[2, 3, 3, 4], &values(72, 19));
    inception(&["conv3x3.npy", "4 input channels", "reduce3x3.npy", "has 3"]);
    std::fs::remove_file(module.join("reduce3x3.npy")).unwrap();
    save(&module.join("pool_proj_bias.npy"), &[2], &[0.0, 0.0]);
    inception(&["pool_proj_bias.npy", "without its weights pool_proj.npy"]);
    std::fs::remove_file(module.join("pool_proj_bias.npy")).unwrap();
    save(&module.join("conv1x1_bias.npy"), &[4], &[0.0; 4]);
    inception(&["conv1x1_bias.npy", "bias shape (4,)", "3 output channels"]);
    std::fs::remove_file(module.join("conv1x1_bias.npy")).unwrap();
    // Now valid: no reductions, no projection; a stray .npy file only warns.
    save(&module.join("conv3x3_biases.npy"), &[2], &[0.0, 0.0]);
    let out = run(&[
        "layer",
        "inception",
        "--input",
        s(&p("x.npy")),
        "--dir",
        s(&module),
        "--output",
        s(&p("y.npy")),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("conv3x3_biases.npy is not one of"));
    assert_eq!(load(&p("y.npy")).0, [1, 5, 5, 3 + 2 + 2 + 4]);
}

// ---------------------------------------------------------------------------------------------
// bench --json, cost, info

/// A JSON value of a flat object.
#[derive(Debug, PartialEq)]
enum Json {
    Str(String),
    Num(f64),
    Null,
}

/// Parses one line holding a flat JSON object (string keys; string, number or null values).
fn parse_flat_json(line: &str) -> Vec<(String, Json)> {
    let bad = |why: &str| -> ! { panic!("not a flat JSON object ({why}): {line}") };
    let body = line
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| bad("braces"));
    let mut fields = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let r = rest.strip_prefix('"').unwrap_or_else(|| bad("key quote"));
        let end = r.find('"').unwrap_or_else(|| bad("key end"));
        let key = r[..end].to_string();
        let r = r[end + 1..]
            .trim_start()
            .strip_prefix(':')
            .unwrap_or_else(|| bad("colon"));
        let r = r.trim_start();
        let (value, r) = if let Some(r) = r.strip_prefix('"') {
            let end = r.find('"').unwrap_or_else(|| bad("string end"));
            assert!(!r[..end].contains('\\'), "no escapes expected: {line}");
            (Json::Str(r[..end].to_string()), &r[end + 1..])
        } else {
            let end = r.find(',').unwrap_or(r.len());
            let token = r[..end].trim();
            let value = if token == "null" {
                Json::Null
            } else {
                Json::Num(token.parse().unwrap_or_else(|_| bad("number")))
            };
            (value, &r[end..])
        };
        assert!(
            fields.iter().all(|(k, _)| *k != key),
            "duplicate key {key}: {line}"
        );
        fields.push((key, value));
        rest = r.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            assert!(!rest.is_empty(), "trailing comma: {line}");
        }
    }
    fields
}

/// Checks one `bench --json` line; returns (workload, fields).
fn check_bench_line(line: &str) -> (String, Vec<(String, Json)>) {
    let fields = parse_flat_json(line);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {k}: {line}"))
    };
    let num = |k: &str| match get(k) {
        Json::Num(n) => *n,
        other => panic!("{k} is {other:?}, not a number: {line}"),
    };
    let Json::Str(workload) = get("workload") else {
        panic!("workload is not a string: {line}")
    };
    let Json::Str(isa_name) = get("isa") else {
        panic!("isa is not a string: {line}")
    };
    assert!(
        isa::available().iter().any(|i| i.name() == isa_name),
        "{line}"
    );
    assert_eq!(num("batch"), 1.0, "{line}");
    assert!(num("threads") >= 1.0, "{line}");
    assert!(num("runs") >= 15.0, "{line}");
    let (median, min) = (num("median_ms"), num("min_ms"));
    assert!(min > 0.0 && min <= median, "{line}");
    let memory_bound = workload == "maxpool";
    let rate = if memory_bound { "gbps" } else { "gflops" };
    let other = if memory_bound { "gflops" } else { "gbps" };
    // Rates are printed to 0.1: a slow (emulated) run may show 0.0.
    assert!(num(rate) >= 0.0, "{line}");
    assert!(fields.iter().all(|(k, _)| k != other), "{line}");
    match get("peak_pct") {
        Json::Null => assert!(memory_bound, "peak_pct null: {line}"),
        Json::Num(p) => assert!(!memory_bound && *p >= 0.0, "{line}"),
        Json::Str(_) => panic!("{line}"),
    }
    (workload.clone(), fields)
}

#[test]
fn bench_json_lines_have_every_key() {
    let stdout = ok(&[
        "bench",
        "--workload",
        "conv1x1",
        "--seconds",
        "0.05",
        "--json",
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let (workload, fields) = check_bench_line(lines[0]);
    assert_eq!(workload, "conv1x1");
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "workload",
            "batch",
            "threads",
            "isa",
            "median_ms",
            "min_ms",
            "runs",
            "gflops",
            "peak_pct"
        ]
    );

    // Algorithm options name the variant.
    let stdout = ok(&[
        "bench",
        "--conv",
        "14,14,16,16,3",
        "--algorithm",
        "winograd",
        "--seconds",
        "0.02",
        "--json",
    ]);
    let (workload, _) = check_bench_line(stdout.trim());
    assert_eq!(workload, "conv:14,14,16,16,3,1,1+winograd");
    // ... but not on workloads they cannot change (a 1x1 has one algorithm).
    for (workload_args, name) in [
        (["--workload", "conv1x1"], "conv1x1"),
        (["--conv", "7,7,8,8,1"], "conv:7,7,8,8,1,1,0"),
    ] {
        let mut args = vec![
            "bench",
            "--algorithm",
            "winograd",
            "--seconds",
            "0.02",
            "--json",
        ];
        args.extend(workload_args);
        let (workload, _) = check_bench_line(ok(&args).trim());
        assert_eq!(workload, name);
    }

    // A forced pool schedule names the variant on workloads with a fused pool branch only.
    for (workload, schedule, name) in [
        ("pool-proj", "separate", "pool-proj+separate"),
        ("maxpool", "separate", "maxpool"),
        ("pool-proj", "auto", "pool-proj"),
    ] {
        let args = [
            "bench",
            "--workload",
            workload,
            "--pool-schedule",
            schedule,
            "--seconds",
            "0.02",
            "--json",
        ];
        let (got, _) = check_bench_line(ok(&args).trim());
        assert_eq!(got, name);
    }

    // Each GoogLeNet module by name, at its own size (the 7x7 5b is the quickest); pool
    // schedules apply to it.
    for (args, name) in [
        (&["--workload", "inception-5b"][..], "inception-5b"),
        (
            &["--workload", "inception-5b", "--pool-schedule", "separate"],
            "inception-5b+separate",
        ),
    ] {
        let mut args = args.to_vec();
        args.extend(["--seconds", "0.02", "--json"]);
        args.insert(0, "bench");
        let (got, _) = check_bench_line(ok(&args).trim());
        assert_eq!(got, name);
    }

    // The table has a peak column.
    let table = ok(&[
        "bench",
        "--workload",
        "conv1x1",
        "--seconds",
        "0.02",
        "--threads",
        "1",
    ]);
    let mut rows = table.lines();
    assert!(rows.next().unwrap().trim_end().ends_with("peak"), "{table}");
    let row = rows.next().unwrap();
    assert!(row.starts_with("conv1x1") && row.ends_with('%'), "{table}");

    // Every workload: a few seconds natively, minutes under an emulator (CI's qemu-aarch64 run,
    // where the conv1x1 run above already checks the format).
    if let Some(runner) = runner() {
        eprintln!("skipping `bench --workload all` under the runner '{runner}'");
        return;
    }
    let stdout = ok(&["bench", "--workload", "all", "--seconds", "0.02", "--json"]);
    let workloads: Vec<String> = stdout.lines().map(|l| check_bench_line(l).0).collect();
    assert_eq!(
        workloads,
        [
            "conv1x1",
            "conv3x3",
            "conv5x5",
            "bottleneck",
            "bottleneck-unfused",
            "maxpool",
            "pool-proj",
            "pool-proj-unfused",
            "inception",
            "inception-unfused"
        ]
    );
}

#[test]
fn cost_prints_the_seed_numbers() {
    let stdout = ok(&["cost"]);
    assert!(stdout.contains("120,422,400"), "{stdout}");
    assert!(stdout.contains("12,443,648"), "{stdout}");
}

#[test]
fn info_runs() {
    let stdout = ok(&["info"]);
    for field in ["cpu:", "isas:", "chosen:", "threads:", "peak"] {
        assert!(stdout.contains(field), "info lacks {field}:\n{stdout}");
    }
    assert!(stdout.contains("scalar"), "{stdout}");
}

/// `incept cost | head -1`: once the reader is gone, the command stops quietly with status 0
/// (no panic message, as `println!` would give).
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::process::Stdio;
    let mut child = command()
        .arg("cost")
        .env_remove("INCEPT_MAX_ISA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run incept cost");
    // Close the read end before the command has written anything.
    drop(child.stdout.take());
    let out = child
        .wait_with_output()
        .expect("incept cost did not finish");
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "");
}
