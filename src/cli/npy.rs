//! A small `.npy` reader and writer: format versions 1.0 and 2.0, little-endian float32
//! (`'<f4'`) only, C order. Anything else is refused with an error naming the file and what was
//! found (dtype, order, version, byte counts), never guessed at.
//!
//! The format: the magic `\x93NUMPY`, a version (major, minor byte), the header length (u16 LE in
//! 1.0, u32 LE in 2.0), then the header, a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 28, 28, 192), }` padded with spaces and
//! a newline so that the data starts on a multiple of 64 bytes, then the raw data.

use std::path::Path;

/// A float32 array read from or written to a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Data starts on a multiple of this many bytes (numpy's alignment).
const ALIGN: usize = 64;

/// `(1, 28, 28, 192)`, `(64,)`, `()`: a shape written as Python (and numpy) writes it.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// Reads `path`; every error starts with the path.
pub fn read(path: &Path) -> Result<Array, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `data` of `shape` to `path` as a version 1.0 `.npy` file (2.0 if the header needs it).
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), String> {
    let bytes = encode(shape, data).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// The bytes of a `.npy` file holding `data` of `shape`.
pub fn encode(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    let count = element_count(shape)?;
    if count != data.len() {
        return Err(format!(
            "shape {} holds {count} elements but {} were given",
            shape_str(shape),
            data.len()
        ));
    }
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}",
        shape_str(shape)
    );
    // Version 1.0 has a 10-byte prefix and a u16 header length; 2.0 a 12-byte one and a u32.
    let padded = |prefix: usize| (prefix + dict.len() + 1).div_ceil(ALIGN) * ALIGN - prefix;
    let (major, prefix) = if padded(10) <= usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let header_len = padded(prefix);
    let mut out = Vec::with_capacity(prefix + header_len + 4 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        let len = u32::try_from(header_len).map_err(|_| "header too long".to_string())?;
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(prefix + header_len - 1, b' ');
    out.push(b'\n');
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    Ok(out)
}

fn element_count(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| n.checked_mul(4).is_some())
        .ok_or_else(|| format!("shape {} is too large", shape_str(shape)))
}

/// Parses the bytes of a `.npy` file (errors do not name the file; [`read`] adds it).
pub fn parse(bytes: &[u8]) -> Result<Array, String> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        let start = &bytes[..bytes.len().min(MAGIC.len())];
        return Err(format!(
            "not a .npy file: bad magic {}, expected \\x93NUMPY",
            escape(start)
        ));
    }
    if bytes.len() < 8 {
        return Err(format!(
            "truncated: {} bytes, not even a version",
            bytes.len()
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_bytes = match major {
        1 => 2,
        2 => 4,
        _ => {
            return Err(format!(
                "format version {major}.{minor} is not supported (1.0 and 2.0 are)"
            ))
        }
    };
    let prefix = 8 + len_bytes;
    if bytes.len() < prefix {
        return Err(format!(
            "truncated: {} bytes, the version {major}.{minor} prefix needs {prefix}",
            bytes.len()
        ));
    }
    let header_len = if major == 1 {
        usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = prefix + header_len;
    if bytes.len() < data_start {
        return Err(format!(
            "truncated header: {header_len} bytes announced, {} present",
            bytes.len() - prefix
        ));
    }
    let header = std::str::from_utf8(&bytes[prefix..data_start])
        .map_err(|_| "header is not ASCII text".to_string())?;
    let header = Header::parse(header)?;
    if header.descr != "<f4" {
        return Err(format!(
            "dtype '{}'{} is not supported: only little-endian float32 ('<f4') is; \
             convert with a.astype('<f4')",
            header.descr,
            describe_dtype(&header.descr)
        ));
    }
    if header.fortran_order {
        return Err(
            "fortran_order is True (column-major); only C order is supported: \
             save np.ascontiguousarray(a)"
                .to_string(),
        );
    }
    let count = element_count(&header.shape)?;
    let need = count * 4;
    let have = bytes.len() - data_start;
    if have != need {
        let what = if have < need {
            "truncated data"
        } else {
            "trailing data"
        };
        return Err(format!(
            "{what}: shape {} of float32 needs {need} bytes after the {data_start}-byte header, \
             the file has {have}",
            shape_str(&header.shape)
        ));
    }
    let data = bytes[data_start..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Array {
        shape: header.shape,
        data,
    })
}

/// ` (float64)`, ` (big-endian float32)`... for the common numpy dtypes, else nothing.
fn describe_dtype(descr: &str) -> String {
    let name = match descr.get(1..) {
        Some("f2") => "float16",
        Some("f4") => "float32",
        Some("f8") => "float64",
        Some("i1") => "int8",
        Some("i2") => "int16",
        Some("i4") => "int32",
        Some("i8") => "int64",
        Some("u1") => "uint8",
        Some("b1") => "bool",
        _ => return String::new(),
    };
    let order = if descr.starts_with('>') {
        "big-endian "
    } else {
        ""
    };
    format!(" ({order}{name})")
}

fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| b.escape_ascii())
        .map(char::from)
        .collect()
}

/// The three keys of a `.npy` header.
#[derive(Debug)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A value of the header dict.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl Header {
    /// Parses the dict literal: string keys; values a string, `True`/`False` or a tuple of
    /// non-negative integers.
    fn parse(text: &str) -> Result<Header, String> {
        let bad = |why: &str| format!("malformed header ({why}): {:?}", text.trim_end());
        let mut p = Cursor {
            s: text.as_bytes(),
            i: 0,
        };
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        p.expect(b'{').map_err(|_| bad("no '{'"))?;
        loop {
            if p.eat(b'}') {
                break;
            }
            let key = p.string().ok_or_else(|| bad("expected a quoted key"))?;
            p.expect(b':').map_err(|_| bad("expected ':'"))?;
            let value = p.value().map_err(|why| bad(&why))?;
            match (key.as_str(), value) {
                ("descr", Value::Str(s)) => descr = Some(s),
                ("fortran_order", Value::Bool(b)) => fortran_order = Some(b),
                ("shape", Value::Tuple(t)) => shape = Some(t),
                ("descr" | "fortran_order" | "shape", _) => {
                    return Err(bad(&format!("'{key}' has the wrong type")))
                }
                _ => {}
            }
            if !p.eat(b',') {
                p.expect(b'}').map_err(|_| bad("expected ',' or '}'"))?;
                break;
            }
        }
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(bad("text after '}'"));
        }
        let missing = |k: &str| bad(&format!("no '{k}'"));
        Ok(Header {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    /// Skips whitespace; consumes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(())
        }
    }

    /// A string in single or double quotes (no escapes: numpy writes none in these keys).
    fn string(&mut self) -> Option<String> {
        self.skip_ws();
        let quote = *self.s.get(self.i).filter(|&&q| q == b'\'' || q == b'"')?;
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&b| b == quote)?;
        self.i = start + len + 1;
        Some(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn word(&mut self, w: &str) -> bool {
        self.skip_ws();
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.s.get(self.i) {
            Some(b'\'' | b'"') => self
                .string()
                .map(Value::Str)
                .ok_or_else(|| "unterminated string".to_string()),
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    dims.push(self.integer()?);
                    if !self.eat(b',') {
                        self.expect(b')')
                            .map_err(|_| "expected ',' or ')' in the shape".to_string())?;
                        break;
                    }
                }
                Ok(Value::Tuple(dims))
            }
            Some(b'[') => Err("a structured dtype (a list); only '<f4' is supported".to_string()),
            _ if self.word("True") => Ok(Value::Bool(true)),
            _ if self.word("False") => Ok(Value::Bool(false)),
            _ => Err("unexpected value".to_string()),
        }
    }

    /// A non-negative integer (Python 2's `L` suffix allowed).
    fn integer(&mut self) -> Result<usize, String> {
        self.skip_ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        let n = digits
            .parse::<usize>()
            .map_err(|_| "expected a non-negative integer in the shape".to_string())?;
        if self.s.get(self.i) == Some(&b'L') {
            self.i += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_and_alignment() {
        for shape in [vec![], vec![3], vec![2, 3], vec![1, 4, 5, 6], vec![0, 7]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let bytes = encode(&shape, &data).unwrap();
            assert_eq!((bytes.len() - 4 * n) % ALIGN, 0, "{shape:?}");
            assert_eq!(bytes[bytes.len() - 4 * n - 1], b'\n');
            assert_eq!(parse(&bytes).unwrap(), Array { shape, data });
        }
        assert_eq!(shape_str(&[3]), "(3,)");
        assert_eq!(shape_str(&[]), "()");
        assert_eq!(shape_str(&[1, 2]), "(1, 2)");
    }

    #[test]
    fn version_2_and_numpy_spellings() {
        let data = 1.5f32.to_le_bytes().repeat(6);
        let dict = "{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \"<f4\"}  \n";
        let a = parse(&with_header(2, dict, &data)).unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.data, [1.5; 6]);
    }

    #[test]
    fn errors_name_the_numbers() {
        let f8 = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        let e = parse(&with_header(1, f8, &[0; 16])).unwrap_err();
        assert!(e.contains("'<f8' (float64)"), "{e}");
        let fortran = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n";
        let e = parse(&with_header(1, fortran, &[0; 16])).unwrap_err();
        assert!(e.contains("fortran_order is True"), "{e}");
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
        let e = parse(&with_header(1, ok, &[0; 20])).unwrap_err();
        assert!(
            e.contains("truncated data") && e.contains("needs 24 bytes") && e.contains("has 20"),
            "{e}"
        );
        let e = parse(&with_header(1, ok, &[0; 28])).unwrap_err();
        assert!(e.contains("trailing data"), "{e}");
        let e = parse(b"PK\x03\x04 a zip file").unwrap_err();
        assert!(e.contains("bad magic PK\\x03\\x04"), "{e}");
        let e = parse(&with_header(3, ok, &[0; 24])).unwrap_err();
        assert!(e.contains("version 3.0"), "{e}");
        let e = parse(&with_header(1, "{'descr': '<f4', 'shape': (2,)}", &[0; 8])).unwrap_err();
        assert!(e.contains("no 'fortran_order'"), "{e}");
        let e = parse(&with_header(1, "{'descr': [('a', '<f4')]}", &[])).unwrap_err();
        assert!(e.contains("structured"), "{e}");
        let mut cut = encode(&[4], &[1.0; 4]).unwrap();
        cut.truncate(40);
        assert!(parse(&cut).unwrap_err().contains("truncated header"));
        assert!(encode(&[2, 2], &[0.0; 3]).unwrap_err().contains("holds 4"));
    }
}
