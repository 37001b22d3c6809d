//! Weight packing: done once when an operator is created.
//!
//! The output channels are cut into blocks of the kernel's `NR`. Each block is stored as
//! `NR` biases (the accumulators' initial values), then for every tap and input channel the `NR`
//! weights of the block's channels, zero-padded past the last output channel so kernels never
//! mask a load. Blocks are contiguous and the buffer is 64-byte aligned.

use aligned_vec::{AVec, ConstAlign};

use crate::error::{checked_product, Result};

/// Packed weights for one microkernel geometry.
#[derive(Debug)]
pub(crate) struct PackedWeights {
    data: AVec<f32, ConstAlign<64>>,
    /// Elements per block: `nr * (1 + taps * k)`.
    block_len: usize,
    /// Number of blocks, `ceil(out_channels / nr)`.
    blocks: usize,
}

impl PackedWeights {
    /// A copy in a new allocation (for a thread's private replica; see `ConvCore::replica`).
    pub(crate) fn copy(&self) -> Self {
        PackedWeights {
            data: AVec::from_slice(64, &self.data),
            block_len: self.block_len,
            blocks: self.blocks,
        }
    }

    /// Packs OHWI `weights` (`out x taps x k`, taps in kh-major order) and `bias` into blocks of `nr`.
    /// The caller has checked the lengths.
    pub(crate) fn new(
        weights: &[f32],
        bias: Option<&[f32]>,
        out_channels: usize,
        taps: usize,
        k: usize,
        nr: usize,
    ) -> Result<Self> {
        let blocks = out_channels.div_ceil(nr);
        let per_channel = checked_product("packed weights per channel", &[taps, k])?;
        let block_len = checked_product("packed weight block", &[nr, per_channel + 1])?;
        let total = checked_product("packed weights", &[blocks, block_len])?;
        let mut data = AVec::from_iter(64, std::iter::repeat_n(0.0f32, total));
        for (b, block) in data.chunks_exact_mut(block_len).enumerate() {
            let (bias_row, rest) = block.split_at_mut(nr);
            for j in 0..nr.min(out_channels - b * nr) {
                let o = b * nr + j;
                bias_row[j] = bias.map_or(0.0, |bias| bias[o]);
                for (p, src) in weights[o * per_channel..(o + 1) * per_channel]
                    .iter()
                    .enumerate()
                {
                    rest[p * nr + j] = *src;
                }
            }
        }
        Ok(PackedWeights {
            data,
            block_len,
            blocks,
        })
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub(crate) fn block_len(&self) -> usize {
        self.block_len
    }

    pub(crate) fn blocks(&self) -> usize {
        self.blocks
    }
}
