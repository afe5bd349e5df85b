// IDX: the container format of MNIST and its look-alikes (Fashion-MNIST, KMNIST).
//
// Layout, all big-endian: a 4-byte magic 0x0000TTDD (TT = element type, DD = number of dims),
// then DD 4-byte dimension sizes, then the elements row-major. We read only the two forms
// these datasets use: 0x00000801 (labels, u8 [N]) and 0x00000803 (images, u8 [N,rows,cols]).
#pragma once
#include <string>

#include "core/tensor.h"

namespace kd {

// Reads a gzip-compressed or plain IDX file (zlib's gzread passes plain files through) into a
// u8 tensor. Every defect — unknown magic, absurd dimensions, too few or too many data bytes,
// a corrupt gzip stream — throws kd::Error naming the file and the defect.
Tensor read_idx(const std::string& path);

// The same from the bytes of a file held in memory (gzip when they start with the gzip magic
// 1f 8b, else plain); `what` names the source in error messages.
Tensor parse_idx(const std::string& bytes, const std::string& what);

}  // namespace kd
