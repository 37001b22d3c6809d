//! Weight layouts. incept's operators take OHWI weights (`[out][kh][kw][in]`) and a bias
//! `[out]`; these conversions bring PyTorch/ONNX (OIHW) and TensorFlow/TFLite (HWIO) weights
//! into that layout.

use crate::error::{checked_product, Error, ErrorKind, Result};

/// A convolution weight layout: the order of the four weight axes in memory, outermost first.
///
/// # Examples
///
/// ```
/// use incept::{to_ohwi, WeightLayout, WeightShape};
///
/// // Converting from incept's own layout is a plain copy.
/// let shape = WeightShape { out_channels: 2, kh: 1, kw: 1, in_channels: 2 };
/// assert_eq!(to_ohwi(&[1.0, 2.0, 3.0, 4.0], WeightLayout::Ohwi, shape)?, [1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// `[out][kh][kw][in]`, incept's own.
    Ohwi,
    /// `[out][in][kh][kw]`, PyTorch and ONNX.
    Oihw,
    /// `[kh][kw][in][out]`, TensorFlow and TFLite.
    Hwio,
}

/// The dimensions of a convolution's weights, whatever their layout.
///
/// # Examples
///
/// ```
/// use incept::WeightShape;
///
/// // GoogLeNet 3a's 5x5 branch: 32 filters of 5x5 over 16 reduced channels.
/// let shape = WeightShape { out_channels: 32, kh: 5, kw: 5, in_channels: 16 };
/// assert_eq!(shape.element_count()?, 12_800);
/// # Ok::<(), incept::Error>(())
/// ```
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
    /// Number of weights, `out_channels * kh * kw * in_channels`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Overflow`] if the product does not fit in `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ErrorKind, WeightShape};
    ///
    /// let shape = WeightShape { out_channels: 64, kh: 3, kw: 3, in_channels: 32 };
    /// assert_eq!(shape.element_count()?, 64 * 9 * 32);
    /// let huge = WeightShape { out_channels: usize::MAX, ..shape };
    /// assert_eq!(huge.element_count().unwrap_err().kind(), ErrorKind::Overflow);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn element_count(&self) -> Result<usize> {
        checked_product(
            "weight count",
            &[self.out_channels, self.kh, self.kw, self.in_channels],
        )
    }
}

/// Converts `data`, laid out as `from`, into a new OHWI vector, ready for an operator's
/// constructor.
///
/// # Errors
///
/// [`ErrorKind::BufferTooSmall`] if `data.len()` is not `shape`'s element count;
/// [`ErrorKind::Overflow`] if that count overflows `usize`.
///
/// # Examples
///
/// A TensorFlow (HWIO) 1x1 weight with 2 inputs and 3 outputs: `[in][out]` in memory.
///
/// ```
/// use incept::{to_ohwi, Conv1x1, Epilogue, WeightLayout, WeightShape};
///
/// let hwio = [1.0, 2.0, 3.0, /* input channel 1: */ 4.0, 5.0, 6.0];
/// let shape = WeightShape { out_channels: 3, kh: 1, kw: 1, in_channels: 2 };
/// let ohwi = to_ohwi(&hwio, WeightLayout::Hwio, shape)?;
/// assert_eq!(ohwi, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]); // [out][in]
/// let conv = Conv1x1::new(2, 3, &ohwi, None, Epilogue::None)?;
/// assert_eq!(conv.out_channels(), 3);
/// # Ok::<(), incept::Error>(())
/// ```
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
