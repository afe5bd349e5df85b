// Row-major Eigen views over raw float buffers, so GEMMs read our NCHW memory in place.
#pragma once
#include <Eigen/Core>

namespace kd {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMat>;
using CMatMap = Eigen::Map<const RowMat>;
}  // namespace kd
