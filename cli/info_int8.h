// kd info's view of an INT8 model (cli/info_int8.cpp).
#pragma once
#include "quant/int8_model.h"

namespace kd::cli {

void print_int8_info(const quant::Int8Model& q, bool json);

}  // namespace kd::cli
