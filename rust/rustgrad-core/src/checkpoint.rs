//! Checkpoints in the safetensors format: named tensors plus string metadata, written
//! atomically (a temporary file in the same directory, flushed, then renamed over the target),
//! so a crash or an error mid-write never leaves a broken file behind.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::storage::IntoStorage;
use crate::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// One tensor's bytes, little-endian, row-major.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl safetensors::View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn file_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

fn le_bytes(d: &TensorData) -> Vec<u8> {
    macro_rules! bytes {
        ($t:ty) => {
            d.to_vec::<$t>().iter().flat_map(|v| v.to_le_bytes()).collect()
        };
    }
    match d.dtype() {
        DType::F32 => bytes!(f32),
        DType::F64 => bytes!(f64),
        DType::F16 => bytes!(half::f16),
        DType::BF16 => bytes!(half::bf16),
        DType::I64 => bytes!(i64),
        DType::I32 => bytes!(i32),
        DType::I16 => bytes!(i16),
        DType::I8 => bytes!(i8),
        DType::U8 => bytes!(u8),
        DType::Bool => d.to_vec::<bool>().iter().map(|&v| v as u8).collect(),
    }
}

fn io_error(action: &str, path: &Path, err: impl std::fmt::Display) -> Error {
    Error::runtime(format!("{action} checkpoint {}: {err}", path.display()))
}

/// Writes `tensors` (name, tensor) and `metadata` to `path` in the safetensors format.
pub fn save(tensors: &[(String, Tensor)], metadata: Option<HashMap<String, String>>, path: &Path) -> Result<()> {
    let bytes: Vec<(String, Bytes)> = tensors
        .iter()
        .map(|(name, t)| {
            let d = t.data();
            let b = Bytes { dtype: file_dtype(d.dtype()), shape: d.shape.to_vec(), data: le_bytes(&d) };
            (name.clone(), b)
        })
        .collect();
    let buffer = safetensors::serialize(bytes.iter().map(|(n, b)| (n.as_str(), b)), metadata)
        .map_err(|e| io_error("cannot serialise", path, e))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| io_error("cannot write", path, "not a file path"))?;
    // Unique per process and per call, so concurrent writers of one path never share a file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nr = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}.{nr}.tmp", file_name.to_string_lossy(), std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buffer)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error("cannot write", path, e)
    })
}

fn from_le<T: IntoStorage, const N: usize>(data: &[u8], shape: &[usize], convert: fn([u8; N]) -> T) -> Result<Tensor> {
    let values: Vec<T> = data.chunks_exact(N).map(|c| convert(c.try_into().expect("chunk of N bytes"))).collect();
    Tensor::from_vec(values, shape)
}

fn to_tensor(view: &TensorView, name: &str, path: &Path) -> Result<Tensor> {
    let (data, shape) = (view.data(), view.shape());
    match view.dtype() {
        Dtype::F32 => from_le(data, shape, f32::from_le_bytes),
        Dtype::F64 => from_le(data, shape, f64::from_le_bytes),
        Dtype::F16 => from_le(data, shape, half::f16::from_le_bytes),
        Dtype::BF16 => from_le(data, shape, half::bf16::from_le_bytes),
        Dtype::I64 => from_le(data, shape, i64::from_le_bytes),
        Dtype::I32 => from_le(data, shape, i32::from_le_bytes),
        Dtype::I16 => from_le(data, shape, i16::from_le_bytes),
        Dtype::I8 => from_le(data, shape, i8::from_le_bytes),
        Dtype::U8 => from_le(data, shape, u8::from_le_bytes),
        Dtype::BOOL => Tensor::from_vec(data.iter().map(|&b| b != 0).collect::<Vec<bool>>(), shape),
        other => Err(io_error(
            "cannot load",
            path,
            format!("tensor '{name}' has dtype {other:?}, which rustgrad does not support"),
        )),
    }
}

/// Reads a safetensors file: its tensors (in file order) and its metadata.
pub fn load(path: &Path) -> Result<(Vec<(String, Tensor)>, HashMap<String, String>)> {
    let buffer = std::fs::read(path).map_err(|e| io_error("cannot read", path, e))?;
    let file = SafeTensors::deserialize(&buffer).map_err(|e| {
        io_error("cannot load", path, format!("not a valid safetensors file (truncated or corrupt?): {e:?}"))
    })?;
    let (_, meta) = SafeTensors::read_metadata(&buffer).map_err(|e| io_error("cannot load", path, format!("{e:?}")))?;
    let mut named: Vec<(String, TensorView)> = file.tensors();
    // File order: by data offset (the order they were written in).
    named.sort_by_key(|(name, _)| meta.info(name).map(|i| i.data_offsets.0).unwrap_or(0));
    let tensors = named.iter().map(|(name, v)| Ok((name.clone(), to_tensor(v, name, path)?))).collect::<Result<_>>()?;
    Ok((tensors, meta.metadata().clone().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = std::env::temp_dir().join(format!("rustgrad-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.safetensors");
        let w = Tensor::from_vec(vec![1.5f32, -2.0, 3.25, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let i = Tensor::from_vec(vec![7i64, -8], &[2]).unwrap();
        save(&[("w".into(), w), ("i".into(), i)], None, &path).unwrap();
        let (loaded, _) = load(&path).unwrap();
        let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"w") && names.contains(&"i"));
        let w2 = &loaded.iter().find(|(n, _)| n == "w").unwrap().1;
        assert_eq!(w2.shape().to_vec(), vec![2, 3]);
        assert_eq!(w2.to_vec::<f32>(), vec![1.5, -2.0, 3.25, 4.0, 5.0, 6.0]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
