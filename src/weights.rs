//! Weight layouts. incept's operators take OHWI weights (`[out][kh][kw][in]`) and a bias
//! `[out]`; these conversions bring PyTorch/ONNX (OIHW) and TensorFlow/TFLite (HWIO) weights
//! into that layout.

use crate::error::{checked_product, Error, ErrorKind, Result};

/// A convolution weight layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// `[out][kh][kw][in]`, incept's own.
    Ohwi,
    /// `[out][in][kh][kw]`, PyTorch and ONNX.
    Oihw,
    /// `[kh][kw][in][out]`, TensorFlow and TFLite.
    Hwio,
}

/// The dimensions of a convolution's weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeightShape {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Input channels.
    pub in_channels: usize,
}

impl WeightShape {
    /// Number of weights, checked for overflow.
    pub fn element_count(&self) -> Result<usize> {
        checked_product(
            "weight count",
            &[self.out_channels, self.kh, self.kw, self.in_channels],
        )
    }
}

/// Converts `data`, laid out as `from`, into a new OHWI vector.
pub fn to_ohwi(data: &[f32], from: WeightLayout, shape: WeightShape) -> Result<Vec<f32>> {
    let len = shape.element_count()?;
    if data.len() != len {
        return Err(Error::new(
            ErrorKind::BufferTooSmall,
            format!(
                "weights have {} elements but {}x{}x{}x{} (out x kh x kw x in) needs {len}",
                data.len(),
                shape.out_channels,
                shape.kh,
                shape.kw,
                shape.in_channels
            ),
        ));
    }
    let WeightShape {
        out_channels: o_n,
        kh: h_n,
        kw: w_n,
        in_channels: i_n,
    } = shape;
    let mut out = vec![0.0; len];
    for o in 0..o_n {
        for y in 0..h_n {
            for x in 0..w_n {
                for i in 0..i_n {
                    let src = match from {
                        WeightLayout::Ohwi => ((o * h_n + y) * w_n + x) * i_n + i,
                        WeightLayout::Oihw => ((o * i_n + i) * h_n + y) * w_n + x,
                        WeightLayout::Hwio => ((y * w_n + x) * i_n + i) * o_n + o,
                    };
                    out[((o * h_n + y) * w_n + x) * i_n + i] = data[src];
                }
            }
        }
    }
    Ok(out)
}
