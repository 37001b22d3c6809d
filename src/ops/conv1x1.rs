//! 1x1 (pointwise) convolution as a GEMM: `out[pixel][o] = bias[o] + sum_i in[pixel][i] * w[o][i]`.
//!
//! The NHWC input already is the GEMM's A matrix (rows = pixels, row stride = pixel stride), so
//! it is read in place, never packed. Loop nest per task (a chunk of whole tiles of pixels):
//! for each packed block of NR output channels (its weights stay in L1), for each tile of MR
//! pixels, one microkernel call does the whole K loop and the epilogue.

use incept_kernels::{run_tile, IsaToken, KernelInfo, Tap, TapSet, Tile};

use super::{tile_error, Epilogue, OpOptions};
use crate::error::{mismatch, Error, ErrorKind, Result};
use crate::isa::{self, Isa};
use crate::pack::PackedWeights;
use crate::parallel::{chunk_pixels, for_each_output_chunk, Parallelism};
use crate::tensor::{check_same_pixels, TensorView, TensorViewMut};

/// A 1x1 convolution with packed weights, ready to run many times (from many threads at once).
#[derive(Debug)]
pub struct Conv1x1 {
    in_channels: usize,
    out_channels: usize,
    epilogue: Epilogue,
    clamp: incept_kernels::Clamp,
    isa: Isa,
    token: IsaToken,
    kernel: &'static KernelInfo,
    packed: PackedWeights,
}

/// The single tap of a 1x1 convolution.
const ONE_TAP: [Tap; 1] = [Tap {
    input_offset: 0,
    weight_offset: 0,
}];

impl Conv1x1 {
    /// Creates the operator from OHWI weights (`[out][in]` for 1x1) and an optional bias `[out]`,
    /// on the best ISA allowed.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
    ) -> Result<Self> {
        Self::with_options(
            in_channels,
            out_channels,
            weights,
            bias,
            epilogue,
            OpOptions::default(),
        )
    }

    /// Like [`Conv1x1::new`], with options (e.g. an ISA cap).
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
        options: OpOptions,
    ) -> Result<Self> {
        if in_channels == 0 || out_channels == 0 {
            return Err(crate::error::invalid(format!(
                "conv1x1 channels must be at least 1, got in_channels {in_channels}, out_channels {out_channels}"
            )));
        }
        let expected =
            crate::error::checked_product("conv1x1 weight count", &[in_channels, out_channels])?;
        if weights.len() != expected {
            return Err(Error::new(
                ErrorKind::BufferTooSmall,
                format!(
                    "conv1x1 weights have {} elements but {out_channels} out x {in_channels} in needs {expected}",
                    weights.len()
                ),
            ));
        }
        if let Some(bias) = bias {
            if bias.len() != out_channels {
                return Err(mismatch(format!(
                    "conv1x1 bias has {} elements but there are {out_channels} output channels",
                    bias.len()
                )));
            }
        }
        let clamp = epilogue.clamp()?;
        let isa = isa::resolve(options.max_isa)?;
        let token = isa.token()?;
        let kernel = incept_kernels::conv_kernel(isa.kernel_isa()).ok_or_else(|| {
            Error::new(
                ErrorKind::UnsupportedIsa,
                format!("no conv kernel for ISA {isa} in this build"),
            )
        })?;
        let packed = PackedWeights::new(weights, bias, out_channels, 1, in_channels, kernel.nr)?;
        Ok(Conv1x1 {
            in_channels,
            out_channels,
            epilogue,
            clamp,
            isa,
            token,
            kernel,
            packed,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// The fused epilogue.
    pub fn epilogue(&self) -> Epilogue {
        self.epilogue
    }

    /// The ISA this operator runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The microkernel's name, e.g. `conv_14x32__avx512f_broadcast`.
    pub fn kernel_name(&self) -> &'static str {
        self.kernel.name
    }

    /// Multiply-adds for an input of `pixels` pixels.
    pub fn macs(&self, pixels: usize) -> usize {
        pixels
            .saturating_mul(self.in_channels)
            .saturating_mul(self.out_channels)
    }

    /// Computes `output = epilogue(conv1x1(input))`. Shapes: input `n x h x w x in_channels`,
    /// output `n x h x w x out_channels`; either may be a channel slice of a wider tensor.
    /// Allocates nothing. The result is bit-identical for every [`Parallelism`].
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        if ishape.c != self.in_channels {
            return Err(mismatch(format!(
                "input channels {} do not match weights' {}",
                ishape.c, self.in_channels
            )));
        }
        if oshape.c != self.out_channels {
            return Err(mismatch(format!(
                "output channels {} do not match weights' {}",
                oshape.c, self.out_channels
            )));
        }
        check_same_pixels(ishape, oshape)?;

        let kernel = self.kernel;
        let pixels = ishape.pixels();
        let chunk = chunk_pixels(par, pixels, kernel.mr, self.macs(pixels));
        let (a, a_base, a_stride) = (input.data(), input.offset(), input.pixel_stride());
        let c_stride = output.pixel_stride();
        let taps = TapSet::new(&ONE_TAP);
        let weights = self.packed.as_slice();
        for_each_output_chunk(par, output.spanned_mut(), c_stride, chunk, |first, c| {
            let count = chunk.min(pixels - first);
            for start in (0..count).step_by(kernel.mr) {
                for block in 0..self.packed.blocks() {
                    let nr = kernel.nr.min(self.out_channels - block * kernel.nr);
                    let tile = Tile {
                        mr: kernel.mr.min(count - start),
                        nr,
                        k: self.in_channels,
                        a_offset: a_base + (first + start) * a_stride,
                        a_pixel_stride: a_stride,
                        w_offset: block * self.packed.block_len(),
                        c_offset: start * c_stride + block * kernel.nr,
                        c_pixel_stride: c_stride,
                        clamp: self.clamp,
                    };
                    run_tile(kernel, &tile, &taps, a, weights, c, self.token)
                        .map_err(|e| tile_error("conv1x1", e))?;
                }
            }
            Ok(())
        })
    }
}
